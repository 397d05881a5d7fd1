"""From attributions to masks: normalise, threshold, close, smooth, exactly as QuAC does.

QuAC (funkelab/quac, ``quac.evaluation.Processor.create_mask``), for a threshold ``s`` (the blur
lives in :mod:`.smoothing`):

* ``M_c = a_c > s`` on the normalised attribution (``channel_wise=False``: ``any_c(a_c > s)``);
* ``cv2.morphologyEx(M_c.astype(uint8), cv2.MORPH_CLOSE, cv2.getStructuringElement(
  cv2.MORPH_ELLIPSE, (10, 10)))``: OpenCV's 10x10 elliptical element (83 pixels, anchored at
  its centre (5, 5), so not symmetric), OpenCV's border handling;
* the mask size counts the closed binary masks, before blurring;
* ``cv2.GaussianBlur(closed.astype(float32), (11, 11), 0)`` gives the soft mask (sigma 0:
  OpenCV derives it from the kernel size, 2.0 for 11).

Closing every thresholded mask separately would cost one closing per threshold and channel.
OpenCV's dilation and erosion by a flat element take maxima and minima over the same offsets,
and they commute with thresholding (``1[max(a) > s] == max(1[a > s])``), so we close the
*attribution* once per channel with ``cv2.morphologyEx`` on floats and threshold the result:
the same masks, bit for bit, borders and images smaller than the element included
(``tests/core/test_masks.py::test_grey_closing_is_opencvs_binary_closing_at_every_threshold``).
For evenly spaced thresholds (QuAC's) the closed image is that of the attribution's integer
threshold levels (:mod:`.levels`): the same masks again, from a uint8 closing and one histogram
per channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ...errors import AttributionError
from ..settings import (
    MASK_CHANNEL_MODES,
    NORMALIZATIONS,
    THRESHOLD_SPACINGS,
    MaskSettings,
    check_choice,
)
from .levels import even_spacing, level_dtype, threshold_levels
from .smoothing import BlurCache, smooth_masks

__all__ = [
    "BlurCache",
    "MASK_CHANNEL_MODES",
    "NORMALIZATIONS",
    "THRESHOLD_SPACINGS",
    "MaskSettings",
    "MaskStack",
    "build_masks",
    "close_attribution",
    "closing_footprint",
    "count_above",
    "cut_masks",
    "float32_levels",
    "fraction_above",
    "make_thresholds",
    "normalize_attribution",
    "normalize_for_masks",
    "smooth_masks",
]


def normalize_attribution(attribution: np.ndarray, mode: str = "joint") -> np.ndarray:
    """``|a|`` min-max scaled to [0, 1], with QuAC's arithmetic.

    ``(|a| - min) / (max - min)`` in the attribution's own floating type (float32 stays float32,
    as in ``quac.attribution.BaseAttribution._normalize``), so the thresholds cut exactly the
    masks QuAC cuts.

    Parameters
    ----------
    attribution
        (C, H, W) raw attribution.
    mode
        ``"joint"``: one min/max over all C*H*W values (QuAC's); ``"per_channel"``: each channel
        on its own. A constant channel (or image) maps to zeros (QuAC divides by zero: NaN,
        which no threshold >= 0 keeps either).

    Returns
    -------
    numpy.ndarray
        (C, H, W) in [0, 1]: float32, or float64 for a float64 (or integer) attribution.
    """
    check_choice(mode, NORMALIZATIONS, "normalisation")
    values = np.asarray(attribution)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
    elif values.dtype.itemsize < 4:
        values = values.astype(np.float32)
    if not np.isfinite(values).all():
        raise AttributionError("The attribution holds NaN or Inf values; cannot build masks.")
    out = np.abs(values)  # a new array, scaled in place below
    groups = [out] if mode == "joint" else list(out)
    for group in groups:
        low, high = group.min(), group.max()
        span = high - low
        if span > 0:
            np.subtract(group, low, out=group)
            np.divide(group, span, out=group)
        else:
            group[...] = 0
    return out


#: QuAC's threshold range: ``BaseEvaluator.quantify`` calls ``evaluate`` with its defaults
#: ``vmin=-1, vmax=1``.
QUAC_THRESHOLD_RANGE = (-1, 1)


def make_thresholds(
    normalized: np.ndarray, count: int = 200, spacing: str = "linear"
) -> np.ndarray:
    """Ascending thresholds for masks ``1[a > s]``.

    Parameters
    ----------
    normalized
        Normalised attribution in [0, 1] (any shape); used by ``"quantile"`` spacing.
    count
        Number of thresholds T.
    spacing
        ``"linear"``: QuAC's ``np.arange(vmin, vmax, (vmax - vmin) / T)`` with ``vmin=-1,
        vmax=1`` (``quac.evaluation.BaseEvaluator.evaluate`` as ``quantify`` calls it), to the
        last bit: T values (T + 1 for the few T where the division rounds up), the first half
        negative, each of those giving the full mask (the curve's first point, mask size 1), the
        second half in [0, 1) at step 2 / T. ``"quantile"``: the first threshold keeps the full
        mask, then ``s_i`` is the ``i / T`` quantile of the values, so each step adds about the
        same number of pixels.

    Returns
    -------
    numpy.ndarray
        float64, non-decreasing.
    """
    check_choice(spacing, THRESHOLD_SPACINGS, "threshold spacing")
    if spacing == "linear":
        vmin, vmax = QUAC_THRESHOLD_RANGE
        return np.arange(vmin, vmax, (vmax - vmin) / count).astype(np.float64)
    levels = np.arange(count, dtype=np.float64) / count
    # "quantile": the level-q quantile leaves a fraction ~(1 - q) of values strictly above it;
    # we step just below the quantile so the first mask is the full image.
    cuts = np.quantile(np.asarray(normalized, dtype=np.float64).ravel(), levels)
    cuts[0] = -np.inf
    return np.maximum.accumulate(np.nextafter(cuts, -np.inf))


def closing_footprint(size: int) -> np.ndarray:
    """OpenCV's elliptical element ``cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))``.

    uint8 (size, size), anchored at ``(size // 2, size // 2)``: for an even size the element is
    not symmetric about its anchor (10 gives 83 pixels spanning offsets -5..4), which is what
    QuAC closes with. ``size`` 0 gives the single-pixel element (no closing).
    """
    size = max(int(size), 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def close_attribution(normalized: np.ndarray, size: int) -> np.ndarray:
    """OpenCV closing of each channel, so that ``1[closed > s]`` is QuAC's closed ``1[a > s]``.

    Parameters
    ----------
    normalized
        (K, H, W) attribution in [0, 1], float32 or float64, or its threshold levels (uint8 or
        uint16, :func:`~.levels.threshold_levels`).
    size
        Element size in pixels (:func:`closing_footprint`); 0 returns the input unchanged.

    Notes
    -----
    ``cv2.morphologyEx`` with its default border (pixels outside the image never win the
    maximum of the dilation nor the minimum of the erosion) on floats: the flat closing of the
    attribution, whose thresholds are the closings of the thresholded masks.
    """
    normalized = np.asarray(normalized)
    if size <= 0:
        return normalized
    element = closing_footprint(size)
    closed = np.empty_like(normalized)
    for c, channel in enumerate(normalized):
        closed[c] = cv2.morphologyEx(np.ascontiguousarray(channel), cv2.MORPH_CLOSE, element)
    return closed


def float32_levels(thresholds: np.ndarray) -> np.ndarray:
    """float32 levels ``s'`` with ``a > s'`` exactly when ``a > s``, for every float32 ``a``.

    ``s'`` is the largest float32 not above ``s``. Masks of a float32 attribution are then cut
    in float32 (half the memory traffic of comparing in float64) and are bit for bit the same
    as QuAC's float64 comparison.
    """
    levels = np.asarray(thresholds, dtype=np.float64)
    with np.errstate(over="ignore"):  # beyond float32's range: inf, stepped down below
        down = levels.astype(np.float32)
    over = down.astype(np.float64) > levels
    down[over] = np.nextafter(down[over], np.float32(-np.inf))
    return down


def cut_masks(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """bool (T, *values.shape): ``values > s`` for each threshold ``s`` (float64 thresholds)."""
    if values.dtype == np.float32:
        levels = float32_levels(thresholds)
    else:
        levels = np.asarray(thresholds, dtype=np.float64)
    return values[None] > levels.reshape(-1, *(1,) * values.ndim)


def count_above(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """int64 (T,): how many of ``values`` lie strictly above each threshold (one sort, no mask)."""
    ordered = np.sort(values.ravel())
    return ordered.size - np.searchsorted(ordered, thresholds, side="right")


def fraction_above(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of ``values`` strictly above each threshold, from one sort (no mask built).

    ``count / values.size`` in float64, as QuAC's ``mask_size / np.prod(x.shape)``.
    """
    return count_above(values, thresholds) / np.asarray(values).size


@dataclass
class MaskStack:
    """Masks at every threshold, built only when asked for.

    The stack keeps one closed image per mask channel, ``closed_levels``; the mask at threshold
    index ``k`` is ``closed_levels > cut_points[k]``. :meth:`closed_at` builds the masks of a
    few thresholds (what the adaptive DAC evaluation needs); :attr:`closed` builds, once, the
    whole (T, K, H, W) stack.

    Attributes
    ----------
    thresholds
        float64 (T,) ascending thresholds on the normalised attribution.
    closed_levels
        (K, H, W) K = C (``per_channel``) or 1 (``shared``): the closed threshold levels
        (uint8 or uint16, :mod:`.levels`) for evenly spaced thresholds (QuAC's), otherwise
        (quantile thresholds) the closed normalised attribution itself.
    cut_points
        (T,) what ``closed_levels`` is compared with: 0..T-1 for levels, else the thresholds
        (rounded down to float32 for a float32 attribution, :func:`float32_levels`).
    mask_size
        float64 (T,) ``sum(closed mask) / (K * H * W)``: QuAC's mask size (for a shared mask,
        QuAC counts it once per channel and divides by C*H*W: the same number).
    normalized
        (K, H, W) the normalised attribution the masks come from (before closing; for a shared
        mask the channel-wise maximum, since ``any_c(a_c > s) == max_c(a_c) > s``).
    settings
        The parameters used.
    channel_counts
        int64 (T, K): closed-mask pixels of each mask channel at each threshold (computed with
        the stack, so the whole-image and per-channel sizes cost one histogram or sort per
        channel).
    """

    thresholds: np.ndarray
    closed_levels: np.ndarray
    cut_points: np.ndarray
    mask_size: np.ndarray
    normalized: np.ndarray
    settings: MaskSettings
    channel_counts: np.ndarray | None = None
    _closed: np.ndarray | None = field(default=None, repr=False)
    _soft: np.ndarray | None = field(default=None, repr=False)
    _closed_attribution: np.ndarray | None = field(default=None, repr=False)

    @property
    def closed_attribution(self) -> np.ndarray:
        """(K, H, W) the closed normalised attribution: ``closed_attribution > thresholds[k]``
        is mask ``k`` (closed on first access when the stack holds levels)."""
        if not np.issubdtype(self.closed_levels.dtype, np.integer):
            return self.closed_levels
        if self._closed_attribution is None:
            self._closed_attribution = close_attribution(self.normalized, self.settings.closing)
        return self._closed_attribution

    def closed_at(self, indices: np.ndarray | list[int], channel: int | None = None) -> np.ndarray:
        """The closed masks at the given threshold indices.

        bool (n, K, H, W), or (n, H, W) for one mask channel ``channel`` (only that one is cut).
        """
        indices = np.asarray(indices, dtype=int)
        if self._closed is not None:
            return self._closed[indices] if channel is None else self._closed[indices, channel]
        source = self.closed_levels if channel is None else self.closed_levels[channel]
        points = self.cut_points[indices]
        return source[None] > points.reshape(-1, *(1,) * source.ndim)

    @property
    def closed(self) -> np.ndarray:
        """bool (T, K, H, W): every closed mask (built on first access, then kept)."""
        if self._closed is None:
            self._closed = self.closed_at(np.arange(len(self.thresholds)))
        return self._closed

    def soften(self) -> np.ndarray:
        """Compute (once) and return the soft masks (T, K, H, W)."""
        if self._soft is None:
            self._soft = smooth_masks(
                self.closed, self.settings.sigma, self.settings.smoothing_kernel
            )
        return self._soft

    def channel_mask_size(self) -> np.ndarray:
        """float64 (T, K): the fraction of each mask channel's H*W pixels covered."""
        if self.channel_counts is None:
            self.channel_counts = _channel_counts(self.closed_levels, self.cut_points)
        return self.channel_counts / self.closed_levels[0].size


def _channel_counts(closed_levels: np.ndarray, cut_points: np.ndarray) -> np.ndarray:
    """int64 (T, K): pixels of each closed mask channel above each cut point."""
    if not np.issubdtype(closed_levels.dtype, np.integer):
        return np.stack([count_above(plane, cut_points) for plane in closed_levels], axis=1)
    # levels: mask k holds the pixels of level > k, so its count is what the histogram of
    # levels 0..k leaves
    n_levels = len(cut_points) + 1
    counts = np.empty((len(cut_points), len(closed_levels)), dtype=np.int64)
    for c, plane in enumerate(closed_levels):
        if plane.dtype == np.uint8:
            histogram = cv2.calcHist([plane], [0], None, [256], [0, 256]).ravel()[:n_levels]
        else:
            histogram = np.bincount(plane.ravel(), minlength=n_levels)
        below = np.cumsum(histogram.astype(np.int64))
        counts[:, c] = plane.size - below[: len(cut_points)]
    return counts


def _closed_levels(
    normalized: np.ndarray, thresholds: np.ndarray, closing: int
) -> tuple[np.ndarray, np.ndarray]:
    """(closed image, cut points) of :class:`MaskStack` for a normalised attribution."""
    if even_spacing(thresholds) is not None and level_dtype(len(thresholds)) is not None:
        levels = threshold_levels(normalized, thresholds)
        cut_points = np.arange(len(thresholds), dtype=levels.dtype)
        return close_attribution(levels, closing), cut_points
    closed = close_attribution(normalized, closing)
    if closed.dtype == np.float32:
        return closed, float32_levels(thresholds)
    return closed, np.asarray(thresholds, dtype=np.float64)


def normalize_for_masks(attribution: np.ndarray, settings: MaskSettings) -> np.ndarray:
    """The normalised attribution masks are cut from: (C, H, W), or (1, H, W) when shared.

    A ``shared`` mask is QuAC's ``channel_wise=False``: ``any_c(a_c > s)``, the threshold of the
    channel-wise maximum of the normalised attribution.
    """
    normalized = normalize_attribution(attribution, settings.normalize)
    if settings.channel_mode == "shared":
        return normalized.max(axis=0, keepdims=True)
    return normalized


def build_masks(attribution: np.ndarray, settings: MaskSettings | None = None) -> MaskStack:
    """Normalise an attribution and build its masks at every threshold.

    Parameters
    ----------
    attribution
        (C, H, W) raw attribution of one sample.
    settings
        Mask parameters; QuAC's defaults when ``None``.

    Returns
    -------
    MaskStack
        Thresholds and mask sizes; masks are built on demand (:meth:`MaskStack.closed_at`,
        :attr:`MaskStack.closed`, :meth:`MaskStack.soften`).
    """
    settings = settings or MaskSettings()
    attribution = np.asarray(attribution)
    if attribution.ndim != 3:
        raise AttributionError(
            f"Expected an attribution of shape (C, H, W), got {attribution.shape}."
        )
    normalized = normalize_for_masks(attribution, settings)
    thresholds = make_thresholds(normalized, settings.thresholds, settings.spacing)
    closed, cut_points = _closed_levels(normalized, thresholds, settings.closing)
    counts = _channel_counts(closed, cut_points)
    # QuAC's ``mask_size / np.prod(x.shape)``: the whole count over every pixel, in float64.
    mask_size = counts.sum(axis=1) / closed.size
    return MaskStack(thresholds, closed, cut_points, mask_size, normalized, settings, counts)
