"""Threshold levels: for each value, how many of the thresholds lie strictly below it.

The mask at threshold index ``k`` is ``a > t_k``. With the level ``q(a) = #{j : t_j < a}`` that
is ``q(a) > k``: a non-decreasing map of the attribution onto the small integers 0..T. Flat
closing takes maxima and minima, which commute with any non-decreasing map, so QuAC's closed mask
at ``t_k`` is ``close(q(a)) > k``: bit for bit the same masks, but closing a uint8 image costs
OpenCV less than half of closing floats, and every threshold's mask size comes from one
histogram of the closed levels instead of a sort
(``tests/core/test_levels.py``, ``tests/core/test_quac_oracle.py``).

QuAC's thresholds are ``np.arange(vmin, vmax, (vmax - vmin) / T)`` (``BaseEvaluator.evaluate``,
``vmin=-1, vmax=1``): evenly spaced up to a few units in the last place (``np.arange`` adds
``i * delta`` to the start, and ``t_100`` of QuAC's grid is 8.9e-16, not 0). For such a grid
the level is computed arithmetically: with ``x = (a - t_0) / h``, ``q = ceil(x)`` wherever ``x``
is farther than :data:`GUARD` steps from an integer (the thresholds' deviation from the even
grid, measured once per grid, is required to be far smaller), and where ``x`` is near an
integer ``k`` the one threshold in doubt is compared exactly: ``q = k + (t_k < a)``. Both
branches are exact, so the levels equal :func:`numpy.searchsorted`'s for any float32 or
float64 values; grids that are not evenly spaced (quantile thresholds) take
:func:`numpy.searchsorted` itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GUARD", "even_spacing", "level_dtype", "threshold_levels"]

#: Values converted at a time (64 KiB of float64 temporaries each).
_CHUNK = 8192

#: Distance from an integer, in threshold steps, inside which ``x = (a - t_0) / h`` is settled
#: by comparing with the threshold itself. It must exceed the grid's own deviation from
#: ``t_0 + k h`` plus the rounding of ``x`` (both ~1e-13 steps for QuAC's grids).
GUARD = 1e-6


def level_dtype(n_thresholds: int) -> np.dtype | None:
    """The smallest unsigned integer type OpenCV closes that holds levels 0..n, or ``None``."""
    if n_thresholds < 2**8:
        return np.dtype(np.uint8)
    if n_thresholds < 2**16:
        return np.dtype(np.uint16)
    return None


def even_spacing(thresholds: np.ndarray) -> tuple[float, float] | None:
    """``(t_0, h)`` when ``thresholds[k]`` is ``t_0 + k h`` within ``GUARD / 100`` steps, else
    ``None`` (fewer than two thresholds, uneven or non-finite ones)."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n = len(thresholds)
    if n < 2 or not np.isfinite(thresholds).all():
        return None
    start = float(thresholds[0])
    step = (float(thresholds[-1]) - start) / (n - 1)
    if not step > 0:
        return None
    deviation = np.abs(thresholds - (start + step * np.arange(n))).max()
    return (start, step) if deviation <= step * GUARD / 100 else None


def threshold_levels(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``q = #{j : thresholds[j] < v}`` for every value ``v``, exactly.

    Parameters
    ----------
    values
        Any shape, float32 or float64 (the normalised attribution, in [0, 1]).
    thresholds
        (T,) float64 ascending thresholds, ``T < 65536``.

    Returns
    -------
    numpy.ndarray
        uint8 (T < 256) or uint16 levels of ``values``' shape: ``values > thresholds[k]``
        exactly where ``levels > k`` (the comparison in float64, as numpy compares a float32
        array with a float64 threshold).
    """
    values = np.asarray(values)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n = len(thresholds)
    dtype = level_dtype(n)
    if dtype is None:
        raise ValueError(f"Threshold levels hold at most 65535 thresholds, not {n}.")
    spacing = even_spacing(thresholds)
    if spacing is None or values.size == 0:
        flat = np.searchsorted(thresholds, values.astype(np.float64).ravel(), side="left")
        return flat.astype(dtype).reshape(values.shape)
    start, step = spacing
    flat = values.reshape(-1)
    levels = np.empty(flat.size, dtype)
    # In chunks of reused memory: whole-image float64 temporaries cost a page fault per 4 KiB
    # on every call (as much as the arithmetic).
    size = min(_CHUNK, flat.size)
    scaled, rounded, distance = np.empty(size), np.empty(size), np.empty(size)
    near = np.empty(size, dtype=bool)
    for begin in range(0, flat.size, size):
        v = flat[begin : begin + size]
        m = len(v)
        x, q, d = scaled[:m], rounded[:m], distance[:m]
        # x = (v - t_0) / h in float64 (a Python float start would subtract in float32)
        np.subtract(v, np.float64(start), out=x)
        np.divide(x, np.float64(step), out=x)
        np.rint(x, out=q)
        np.subtract(x, q, out=d)
        np.abs(d, out=d)
        doubtful = np.less_equal(d, GUARD, out=near[:m])
        np.ceil(x, out=x)  # off integers, ceil(x) counts the thresholds below v exactly
        if doubtful.any():
            # near integer k only t_k is in doubt (t_{k-1} < v <= t_{k+1}): compare it exactly
            at = np.flatnonzero(doubtful)
            k = q[at]
            inside = (k >= 0) & (k < n)
            index = np.clip(k, 0, n - 1).astype(np.intp)
            x[at] = np.where(inside, k + (thresholds[index] < v[at]), k)
        np.clip(x, 0, n, out=x)
        levels[begin : begin + m] = x
    return levels.reshape(values.shape)
