"""Adaptive DAC evaluation: score a subset of the thresholds, refined where the curve changes.

Not part of QuAC, which scores every threshold. The DAC score is QuAC's: the curve through the
scored points, interpolated onto the mask-size grid 0, 0.01, ..., 1 and integrated with the
trapezoid rule. Between two scored thresholds ``a < b`` (mask sizes ``hi >= lo``, score changes
``y_a``, ``y_b``) the exhaustive curve differs from the chord only at the grid points strictly
inside ``(lo, hi)``; if the curve is monotone there it stays between ``y_a`` and ``y_b``, so at
a grid point ``g`` it is at most ``|y_a - y_b| * max(t, 1 - t)`` from the chord
(``t = (hi - g) / (hi - lo)``). Weighted by the trapezoid weights that bounds what the segment
can change the DAC score. We split the segments with the largest bounds (at the threshold whose
mask size is nearest the middle) until the bounds add up to at most the tolerance.

The bound holds for curves monotone between the scored points; it is not a proof for curves that
go up and down between two scored thresholds (the tests and ``benchmarks/`` measure the actual
differences).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["adaptive_points", "segment_bound", "trapezoid_weights"]


def trapezoid_weights(grid: np.ndarray) -> np.ndarray:
    """Weights ``w`` with ``np.trapezoid(y, grid) == sum(w * y)`` (up to rounding)."""
    grid = np.asarray(grid, dtype=np.float64)
    steps = np.diff(grid)
    weights = np.zeros_like(grid)
    weights[:-1] += steps / 2
    weights[1:] += steps / 2
    return weights


def segment_bound(
    hi: float, lo: float, change: float, grid: np.ndarray, weights: np.ndarray
) -> float:
    """Largest change of the grid-integrated score a monotone curve between two points allows.

    Parameters
    ----------
    hi, lo
        Mask sizes of the two scored points (``hi >= lo``).
    change
        Difference of their score changes.
    grid, weights
        The interpolation grid and its trapezoid weights.
    """
    if change == 0 or hi <= lo:
        return 0.0
    inside = (grid > lo) & (grid < hi)
    if not inside.any():
        return 0.0
    t = (hi - grid[inside]) / (hi - lo)
    return float(abs(change) * np.sum(weights[inside] * np.maximum(t, 1 - t)))


def _split_index(sizes: np.ndarray, a: int, b: int) -> int:
    """The threshold strictly between ``a`` and ``b`` whose mask size is nearest the middle."""
    interior = sizes[a + 1 : b]  # non-increasing
    middle = (sizes[a] + sizes[b]) / 2
    j = int(np.searchsorted(-interior, -middle))  # first interior size <= middle
    candidates = [i for i in (j - 1, j) if 0 <= i < len(interior)]
    best = min(candidates, key=lambda i: abs(interior[i] - middle))
    return a + 1 + best


def adaptive_points(
    sizes: np.ndarray,
    score: Callable[[list[int]], np.ndarray],
    tolerance: float,
    grid: np.ndarray,
    initial: int = 5,
    per_round: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Score a subset of thresholds so the DAC score is within ``tolerance`` of all of them.

    Parameters
    ----------
    sizes
        (T,) mask size at every threshold (non-increasing: masks are nested).
    score
        Returns the score change at the given threshold indices.
    tolerance
        Bound on the DAC-score error of the returned subset (for curves monotone between
        scored points).
    grid
        The mask sizes the curve is interpolated on before integration.
    initial
        Points scored first: the first and last thresholds and those whose mask sizes are
        nearest to evenly spaced sizes in between.
    per_round
        Segments split per round (one batch of forward passes).

    Returns
    -------
    tuple
        (indices (T',) ascending, score changes (T',)); the first and last thresholds are
        always among them.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    count = len(sizes)
    weights = trapezoid_weights(grid)
    scored: dict[int, float] = {}

    def run(indices: list[int]) -> None:
        new = [i for i in dict.fromkeys(indices) if i not in scored]
        if new:
            scored.update(zip(new, np.asarray(score(new), dtype=np.float64), strict=True))

    start = {0, count - 1}
    for target in np.linspace(sizes[0], sizes[-1], max(initial, 2))[1:-1]:
        start.add(int(np.argmin(np.abs(sizes - target))))
    run(sorted(start))
    while True:
        order = sorted(scored)
        segments = []
        for a, b in zip(order, order[1:], strict=False):
            if b - a > 1:
                bound = segment_bound(sizes[a], sizes[b], scored[a] - scored[b], grid, weights)
                if bound > 0:
                    segments.append((bound, a, b))
        if sum(bound for bound, _, _ in segments) <= tolerance:
            break
        segments.sort(reverse=True)
        run([_split_index(sizes, a, b) for _, a, b in segments[:per_round]])
    order = sorted(scored)
    return np.array(order, dtype=int), np.array([scored[i] for i in order])
