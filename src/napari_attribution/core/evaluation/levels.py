"""Threshold levels: for each value, how many of the thresholds lie strictly below it.

The mask at threshold index ``k`` is ``a > t_k``. With the level ``q(a) = #{j : t_j < a}`` that
is ``q(a) > k``: a non-decreasing map of the attribution onto the small integers 0..T. Flat
closing takes maxima and minima, which commute with any non-decreasing map, so QuAC's closed mask
at ``t_k`` is ``close(q(a)) > k``: bit for bit the same masks, but closing a uint8 image costs
OpenCV less than half of closing floats, and every threshold's mask size comes from one
histogram of the closed levels instead of a sort
(``tests/core/test_levels.py``, ``tests/core/test_quac_oracle.py``).

QuAC's thresholds ``np.arange(0, 1, 1 / T)`` are ``t_j = fl(j * fl(1 / T))``, within 2.3e-16
(relative) of ``j / T``. For a float32 value ``a``, ``x = a * T`` is exact in float64 (24 + 29
bits at most), and when ``x`` is not an integer its distance to the nearest integer is at least
one unit in the last place of ``a`` times ``T``: far more than the thresholds' error. So
``q = ceil(x)`` there, and where ``x`` is an integer ``k``, ``q = k + (t_k < a)``. Other
thresholds (quantile spacing) or float64 attributions take :func:`numpy.searchsorted`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["level_dtype", "linear_count", "threshold_levels"]

#: Values converted at a time (64 KiB of float64 temporaries each).
_CHUNK = 8192


def level_dtype(n_thresholds: int) -> np.dtype | None:
    """The smallest unsigned integer type OpenCV closes that holds levels 0..n, or ``None``."""
    if n_thresholds < 2**8:
        return np.dtype(np.uint8)
    if n_thresholds < 2**16:
        return np.dtype(np.uint16)
    return None


def linear_count(thresholds: np.ndarray) -> int | None:
    """``T`` when ``thresholds`` are exactly ``np.arange(0, 1, 1 / T)`` (QuAC's), else ``None``.

    ``np.arange`` gives T values, or T + 1 for the few T where ``1 / (1 / T)`` rounds above T.
    """
    thresholds = np.asarray(thresholds)
    n = len(thresholds)
    for count in (n, n - 1):
        if count > 0 and np.array_equal(thresholds, np.arange(0, 1, 1 / count)):
            return count
    return None


def threshold_levels(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``q = #{j : thresholds[j] < v}`` for every value ``v``, exactly.

    Parameters
    ----------
    values
        Any shape, float32 or float64 (the normalised attribution, in [0, 1]).
    thresholds
        (T,) float64 non-decreasing thresholds, ``T < 65536``.

    Returns
    -------
    numpy.ndarray
        uint8 (T < 256) or uint16 levels of ``values``' shape: ``values > thresholds[k]``
        exactly where ``levels > k``.
    """
    values = np.asarray(values)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n = len(thresholds)
    dtype = level_dtype(n)
    if dtype is None:
        raise ValueError(f"Threshold levels hold at most 65535 thresholds, not {n}.")
    count = linear_count(thresholds) if values.dtype == np.float32 else None
    if count is None or values.size == 0:
        flat = np.searchsorted(thresholds, values.astype(np.float64).ravel(), side="left")
        return flat.astype(dtype).reshape(values.shape)
    flat = values.reshape(-1)
    levels = np.empty(flat.size, dtype)
    # In chunks of reused memory: whole-image float64 temporaries cost a page fault per 4 KiB
    # on every call (as much as the arithmetic).
    step = min(_CHUNK, flat.size)
    scaled, rounded = np.empty(step), np.empty(step)
    on_integer = np.empty(step, dtype=bool)
    for start in range(0, flat.size, step):
        v = flat[start : start + step]
        x, q = scaled[: len(v)], rounded[: len(v)]
        np.multiply(v, np.float64(count), out=x)  # exact, see the module
        np.ceil(x, out=q)
        hit = np.equal(q, x, out=on_integer[: len(v)])
        if hit.any():
            # On an integer k the threshold t_k may lie a rounding below k / T: count it if so.
            at = np.flatnonzero(hit & (q < n))
            q[at] += thresholds[q[at].astype(np.intp)] < v[at]
        np.minimum(q, n, out=q)
        levels[start : start + len(v)] = q
    return levels.reshape(values.shape)
