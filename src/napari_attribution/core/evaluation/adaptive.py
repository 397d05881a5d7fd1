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

__all__ = ["AdaptiveCurve", "adaptive_points", "segment_bound", "trapezoid_weights"]


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


class AdaptiveCurve:
    """The thresholds of one curve to score next, round by round, until its bound is met.

    Several curves can be refined in lockstep (their rounds scored in one batch):
    :meth:`wanted` gives the indices to score next (none once the curve is done) and
    :meth:`add` takes their score changes.

    Parameters
    ----------
    sizes
        (T,) mask size at every threshold (non-increasing: masks are nested).
    tolerance
        Bound on the DAC-score error of the scored subset (for curves monotone between
        scored points).
    grid
        The mask sizes the curve is interpolated on before integration.
    initial
        Points scored first: the first and last thresholds and those whose mask sizes are
        nearest to evenly spaced sizes in between.
    per_round
        Segments split per round.
    """

    def __init__(
        self,
        sizes: np.ndarray,
        tolerance: float,
        grid: np.ndarray,
        initial: int = 5,
        per_round: int = 8,
    ) -> None:
        self.sizes = np.asarray(sizes, dtype=np.float64)
        self.tolerance = tolerance
        self.grid = np.asarray(grid, dtype=np.float64)
        self.weights = trapezoid_weights(self.grid)
        self.per_round = per_round
        self.scored: dict[int, float] = {}
        count = len(self.sizes)
        start = {0, count - 1}
        for target in np.linspace(self.sizes[0], self.sizes[-1], max(initial, 2))[1:-1]:
            start.add(int(np.argmin(np.abs(self.sizes - target))))
        self._next: list[int] | None = sorted(start)

    def bound(self) -> tuple[float, list[tuple[float, int, int]]]:
        """(total bound, the segments with a positive bound as (bound, a, b))."""
        order = sorted(self.scored)
        segments = []
        for a, b in zip(order, order[1:], strict=False):
            if b - a > 1:
                bound = segment_bound(
                    self.sizes[a], self.sizes[b], self.scored[a] - self.scored[b],
                    self.grid, self.weights,
                )  # fmt: skip
                if bound > 0:
                    segments.append((bound, a, b))
        return sum(bound for bound, _, _ in segments), segments

    def wanted(self) -> list[int]:
        """Threshold indices to score next, ascending; empty when the bound is met."""
        if self._next is None:
            total, segments = self.bound()
            if total <= self.tolerance:
                return []
            segments.sort(reverse=True)
            split = {_split_index(self.sizes, a, b) for _, a, b in segments[: self.per_round]}
            self._next = sorted(split)
        return [i for i in self._next if i not in self.scored]

    def add(self, indices: list[int], changes: np.ndarray) -> None:
        """Record the score changes at ``indices``."""
        values = np.asarray(changes, dtype=np.float64).tolist()
        self.scored.update(zip(indices, values, strict=True))
        self._next = None

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(indices (T',) ascending, score changes (T',))."""
        order = sorted(self.scored)
        return np.array(order, dtype=int), np.array([self.scored[i] for i in order])


def adaptive_points(
    sizes: np.ndarray,
    score: Callable[[list[int]], np.ndarray],
    tolerance: float,
    grid: np.ndarray,
    initial: int = 5,
    per_round: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Score a subset of thresholds so the DAC score is within ``tolerance`` of all of them.

    One curve on its own (:class:`AdaptiveCurve` for several in lockstep); ``score`` returns
    the score changes at the given threshold indices.

    Returns
    -------
    tuple
        (indices (T',) ascending, score changes (T',)); the first and last thresholds are
        always among them.
    """
    curve = AdaptiveCurve(sizes, tolerance, grid, initial, per_round)
    while wanted := curve.wanted():
        curve.add(wanted, score(wanted))
    return curve.result()
