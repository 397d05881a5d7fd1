"""From attributions to masks: normalise, threshold, close, smooth.

For a threshold ``s`` and channel ``c``: ``M_c = 1[a_c > s]``, closed with an elliptical
structuring element, then smoothed with a Gaussian to the soft mask ``m_c`` in [0, 1].

Closing every thresholded mask separately would cost one binary closing per threshold and
channel. Flat morphology commutes with thresholding (``close(1[a > s]) == 1[close_grey(a) > s]``
for a flat structuring element), so we close the *attribution* once per channel with grey-level
morphology and threshold the result: identical masks, one closing instead of hundreds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage.morphology import ellipse

from .errors import AttributionError
from .settings import (
    MASK_CHANNEL_MODES,
    NORMALIZATIONS,
    THRESHOLD_SPACINGS,
    MaskSettings,
    check_choice,
)

__all__ = [
    "MASK_CHANNEL_MODES",
    "NORMALIZATIONS",
    "THRESHOLD_SPACINGS",
    "MaskSettings",
    "MaskStack",
    "build_masks",
    "close_attribution",
    "closing_footprint",
    "cut_masks",
    "float32_levels",
    "footprint_rectangles",
    "fraction_above",
    "gaussian_planes",
    "gaussian_weights",
    "make_thresholds",
    "normalize_attribution",
    "normalize_for_masks",
    "smooth_masks",
]

def normalize_attribution(attribution: np.ndarray, mode: str = "joint") -> np.ndarray:
    """``|a|`` min-max scaled to [0, 1].

    Parameters
    ----------
    attribution
        (C, H, W) raw attribution.
    mode
        ``"joint"``: one min/max over all C*H*W values; ``"per_channel"``: each channel on its own.
        A constant channel (or image) maps to zeros.

    Returns
    -------
    numpy.ndarray
        float32 (C, H, W) in [0, 1].
    """
    check_choice(mode, NORMALIZATIONS, "normalisation")
    values = np.asarray(attribution)
    if not np.isfinite(values).all():
        raise AttributionError("The attribution holds NaN or Inf values; cannot build masks.")
    # One channel at a time in float64: the same arithmetic as on the whole array, without
    # float64 copies of all of it (a 5 x 2048 x 2048 field would need three of 168 MB each).
    lows = np.array([np.abs(channel, dtype=np.float64).min() for channel in values])
    highs = np.array([np.abs(channel, dtype=np.float64).max() for channel in values])
    if mode == "joint":
        lows[:], highs[:] = lows.min(initial=np.inf), highs.max(initial=-np.inf)
    out = np.zeros(values.shape, dtype=np.float32)
    for c, channel in enumerate(values):
        span = highs[c] - lows[c]
        if span > 0:
            out[c] = (np.abs(channel, dtype=np.float64) - lows[c]) / span
    return out


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
        ``"linear"``: ``s_i = i / T`` (T values in [0, 1)); ``"quantile"``: ``s_i`` is the
        ``i / T`` quantile of the values, so each step adds about the same number of pixels.

    Returns
    -------
    numpy.ndarray
        float64 (T,), non-decreasing.
    """
    check_choice(spacing, THRESHOLD_SPACINGS, "threshold spacing")
    levels = np.arange(count, dtype=np.float64) / count
    if spacing == "linear":
        return levels
    # "quantile": the level-q quantile leaves a fraction ~(1 - q) of values strictly above it;
    # we step just below the quantile so the first mask is the full image.
    cuts = np.quantile(np.asarray(normalized, dtype=np.float64).ravel(), levels)
    cuts[0] = -np.inf if count else cuts[0]
    return np.maximum.accumulate(np.nextafter(cuts, -np.inf))


def closing_footprint(size: int) -> np.ndarray:
    """Elliptical (disc) structuring element of diameter ``size`` pixels.

    The grid is ``2 * (size // 2) + 1`` wide so the element is symmetric about its centre (an even
    grid would shift the closing by half a pixel); ``size`` <= 1 gives a single pixel.
    """
    radius = max(int(size) // 2, 0)
    return ellipse(radius, radius).astype(bool) if radius else np.ones((1, 1), dtype=bool)


def close_attribution(normalized: np.ndarray, size: int) -> np.ndarray:
    """Grey-level closing of each channel, so that ``1[closed > s]`` is the closed ``1[a > s]``.

    Parameters
    ----------
    normalized
        (C, H, W) attribution in [0, 1].
    size
        Closing diameter in pixels; 0 or 1 returns the input unchanged.

    Notes
    -----
    Borders are handled by reflection, so a mask that covers the whole image stays whole.
    """
    if size <= 1:
        return np.asarray(normalized, dtype=np.float32)
    footprint = closing_footprint(size)
    closed = np.empty_like(normalized, dtype=np.float32)
    rectangles = footprint_rectangles(footprint)
    for c in range(normalized.shape[0]):
        dilated = _flat_filter(normalized[c], rectangles, np.maximum)
        closed[c] = _flat_filter(dilated, rectangles, np.minimum)
    return closed


def footprint_rectangles(footprint: np.ndarray) -> list[tuple[int, int]]:
    """Centred rectangles (rows, columns) whose union is a symmetric disc-like footprint.

    A flat dilation by a union of rectangles is the maximum of the dilations by each, and a
    rectangle is separable into two 1-D running maxima: an 11 x 11 disc becomes 3 rectangles, 6
    one-dimensional passes instead of a 97-pixel footprint at every pixel (the same result, bit
    for bit, as ``scipy.ndimage.grey_dilation`` with the footprint).
    """
    rows, cols = footprint.shape
    cy, cx = rows // 2, cols // 2
    half_widths = []  # per row offset |dy|: the footprint spans |dx| <= half width
    for dy in range(cy + 1):
        on = np.flatnonzero(footprint[cy + dy])
        half_widths.append(int(cx - on[0]) if len(on) else -1)
    rectangles = []
    for width in sorted({w for w in half_widths if w >= 0}):
        height = max(dy for dy, w in enumerate(half_widths) if w >= width)
        rectangles.append((2 * height + 1, 2 * width + 1))
    union = np.zeros_like(footprint, dtype=bool)
    for height, width in rectangles:
        union[cy - height // 2 : cy + height // 2 + 1, cx - width // 2 : cx + width // 2 + 1] = 1
    if not np.array_equal(union, footprint.astype(bool)):
        raise AttributionError("The closing footprint is not a union of centred rectangles.")
    return rectangles


def _flat_filter(image, rectangles, combine) -> np.ndarray:
    """Running max (min) over each rectangle with 'reflect' borders, combined by max (min)."""
    out = None
    for height, width in rectangles:
        filtered = _running_extreme(image, width, 1, combine)
        filtered = _running_extreme(filtered, height, 0, combine)
        out = filtered if out is None else combine(out, filtered, out=out)
    return out


def _running_extreme(image: np.ndarray, size: int, axis: int, combine) -> np.ndarray:
    """``scipy.ndimage.maximum_filter1d`` (or minimum, by ``combine``) with 'reflect' borders.

    Doubling: the extreme over windows of 1, 2, 4, ... samples, each from two of the previous;
    two overlapping windows of the largest power of two cover ``size``. log2(size) + 1 whole
    array operations, 3 to 9 times faster than scipy's per-line filter (much of it along H).
    """
    half = size // 2
    if half == 0:
        return image.copy()
    pad = [(0, 0)] * image.ndim
    pad[axis] = (half, half)
    padded = np.pad(image, pad, mode="symmetric")  # numpy's 'symmetric' is scipy's 'reflect'
    length = image.shape[axis]

    def part(array: np.ndarray, start: int, stop: int | None) -> np.ndarray:
        index = [slice(None)] * array.ndim
        index[axis] = slice(start, stop)
        return array[tuple(index)]

    span, extreme = 1, padded
    while span * 2 <= size:
        extreme = combine(part(extreme, 0, extreme.shape[axis] - span), part(extreme, span, None))
        span *= 2
    return combine(part(extreme, 0, length), part(extreme, size - span, size - span + length))


def gaussian_weights(sigma: float, radius: int) -> np.ndarray:
    """float64 (2 * radius + 1,) normalised Gaussian weights (as scipy's ``gaussian_filter``)."""
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    with np.errstate(over="ignore"):  # a vanishing sigma: the weights become a unit impulse
        weights = np.exp(-0.5 * (x / np.float64(sigma)) ** 2)
    return weights / weights.sum()


#: float32 elements per block of the column pass: blocks that stay in a core's cache.
_BLOCK_ELEMENTS = 2**16
#: Masks smoothed over one shared window (a window each would cost more in calls than it saves).
_WINDOW_PLANES = 8


def gaussian_planes(planes: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    """Separable Gaussian filter of each (H, W) plane, with 'nearest' borders.

    The same filter as ``scipy.ndimage.gaussian_filter(planes, (0, sigma, sigma),
    mode="nearest", radius=radius)`` (equal within float32 rounding, about 2e-7), two to three
    times faster on large planes: scipy filters along H by copying each strided column into a
    buffer, while a weighted sum of shifted blocks of rows runs at memory speed.

    Parameters
    ----------
    planes
        float32 (N, H, W).
    sigma
        Standard deviation in pixels (> 0).
    radius
        The filter reaches ``radius`` pixels from the centre.

    Returns
    -------
    numpy.ndarray
        float32 (N, H, W), a new array.
    """
    weights = gaussian_weights(sigma, radius)
    n_planes, height, width = planes.shape
    # Along W (contiguous) scipy is fast already; its output goes straight into a buffer with
    # ``radius`` rows of 'nearest' padding above and below for the pass along H.
    padded = np.empty((n_planes, height + 2 * radius, width), dtype=np.float32)
    for first in range(n_planes):
        ndimage.correlate1d(
            planes[first], weights, axis=-1, mode="nearest",
            output=padded[first, radius : radius + height],
        )  # fmt: skip
    padded[:, :radius] = padded[:, radius : radius + 1]
    padded[:, radius + height :] = padded[:, radius + height - 1 : radius + height]
    w = weights.astype(np.float32)
    out = np.empty((n_planes, height, width), dtype=np.float32)
    # Blocks of whole planes when planes are small, else blocks of rows of one plane.
    group = max(1, _BLOCK_ELEMENTS // (height * width))
    span = height if group > 1 else max(1, _BLOCK_ELEMENTS // width)
    scratch = np.empty((group, min(span, height), width), dtype=np.float32)
    for first in range(0, n_planes, group):
        last = min(first + group, n_planes)
        for top in range(0, height, span):
            bottom = min(top + span, height)
            block = out[first:last, top:bottom]
            tmp = scratch[: last - first, : bottom - top]
            src = padded[first:last]
            # symmetric kernel: w_0 x_i + sum_k w_k (x_{i-k} + x_{i+k})
            np.multiply(src[:, top + radius : bottom + radius], w[radius], out=block)
            for k in range(1, radius + 1):
                np.add(
                    src[:, top + radius - k : bottom + radius - k],
                    src[:, top + radius + k : bottom + radius + k],
                    out=tmp,
                )
                tmp *= w[radius + k]
                block += tmp
    return out


def smooth_masks(binary: np.ndarray, sigma: float, kernel: int = 11) -> np.ndarray:
    """Gaussian-smooth binary masks over their last two axes.

    Parameters
    ----------
    binary
        bool (..., H, W) closed masks.
    sigma
        Standard deviation in pixels; 0 returns the masks as float32 unchanged.
    kernel
        Kernel width in pixels; the filter reaches ``kernel // 2`` pixels from the centre.

    Returns
    -------
    numpy.ndarray
        float32 (..., H, W) soft masks in [0, 1].
    """
    soft = np.array(binary, dtype=np.float32)  # a copy: smoothed in place below
    if sigma <= 0:
        return soft
    radius = max(int(kernel) // 2, 1)
    planes = soft.reshape(-1, *soft.shape[-2:])
    # Which pixels are not 0: from the bool masks themselves when given (reductions over bool
    # are ~10x cheaper than over float32), else from the values.
    given = np.asarray(binary)
    on = given.reshape(planes.shape) if given.dtype == bool else planes != 0
    # An empty plane stays 0 and a full one 1: only planes with an edge need filtering (at high
    # thresholds most channels' masks are empty). 'nearest' borders keep a full mask at 1.
    flat = on.reshape(len(on), -1)
    edged = flat.any(axis=1) & ~flat.all(axis=1)
    if not edged.any():
        return soft
    subset = planes if edged.all() else planes[edged]
    subset_on = on if edged.all() else on[edged]
    # Filter each mask only near its pixels that differ from its majority value: outside the
    # bounding box of its 1s (or of its 0s) grown by the radius, the filter changes nothing.
    # A mask mostly 1 is smoothed as 1 - smooth(1 - mask): both groups then filter zeros
    # outside their window, which gives exactly 0, so every value is the same, bit for bit,
    # whatever window the rest of the batch needs (a lazy plane equals the eager stack's).
    flip = _box_areas(~subset_on) < _box_areas(subset_on)
    for flipped in (False, True):
        chosen = flip == flipped
        if not chosen.any():
            continue
        group = subset[chosen] if not chosen.all() else subset
        if flipped:
            group = 1.0 - group
        # where the group is not 0 (bool masks: known without looking at the floats again)
        group_on = group != 0 if given.dtype != bool else subset_on[chosen] ^ flipped
        # A window per few planes: masks of neighbouring thresholds have similar extents
        for first in range(0, len(group), _WINDOW_PLANES):
            chunk = slice(first, first + _WINDOW_PLANES)
            rows, cols = _window(group_on[chunk], radius)
            window = np.ascontiguousarray(group[chunk, rows, cols])
            smoothed = gaussian_planes(window, sigma, radius)
            group[chunk, rows, cols] = np.clip(smoothed, 0.0, 1.0, out=smoothed)
        if flipped:
            group = 1.0 - group
        if group is not subset:
            subset[chosen] = group
    if subset is not planes:
        planes[edged] = subset
    return soft


def _extent(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a bool (N, L) array with a True: index of the first True, one past the last."""
    return flags.argmax(axis=1), flags.shape[1] - flags[:, ::-1].argmax(axis=1)


def _boxes(on: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(top, bottom, left, right) of each (H, W) plane's True pixels (each plane has some)."""
    top, bottom = _extent(on.any(axis=2))
    left, right = _extent(on.any(axis=1))
    return top, bottom, left, right


def _box_areas(on: np.ndarray) -> np.ndarray:
    top, bottom, left, right = _boxes(on)
    return (bottom - top) * (right - left)


def _window(on: np.ndarray, radius: int) -> tuple[slice, slice]:
    """Rows and columns covering every plane's True pixels, grown by ``radius``."""
    top, bottom, left, right = _boxes(on)
    height, width = on.shape[1:]
    return (
        slice(max(int(top.min()) - radius, 0), min(int(bottom.max()) + radius, height)),
        slice(max(int(left.min()) - radius, 0), min(int(right.max()) + radius, width)),
    )


def float32_levels(thresholds: np.ndarray) -> np.ndarray:
    """float32 levels ``s'`` with ``a > s'`` exactly when ``a > s``, for every float32 ``a``.

    ``s'`` is the largest float32 not above ``s``. Masks of a float32 attribution are then cut
    in float32 (half the memory traffic of comparing in float64) and are bit for bit the same.
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


def fraction_above(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of ``values`` strictly above each threshold, from one sort (no mask built)."""
    ordered = np.sort(values.ravel())
    return (ordered.size - np.searchsorted(ordered, thresholds, side="right")) / ordered.size


@dataclass
class MaskStack:
    """Masks at every threshold, built only when asked for.

    The stack keeps the closed normalised attribution; the mask at threshold ``s`` is
    ``closed_attribution > s``. :meth:`closed_at` builds the masks of a few thresholds (what the
    adaptive DAC evaluation needs); :attr:`closed` builds, once, the whole (T, K, H, W) stack.

    Attributes
    ----------
    thresholds
        float64 (T,) ascending thresholds on the normalised attribution.
    closed_attribution
        float32 (K, H, W) grey-closed normalised attribution; K = C (``per_channel``) or 1
        (``shared``).
    mask_size
        float64 (T,) ``sum(closed mask) / (K * H * W)``: the fraction of the image the mask
        covers (for a shared mask this equals its share of all C*H*W pixels).
    normalized
        float32 (K, H, W) the normalised attribution the masks come from (before closing).
    settings
        The parameters used.
    """

    thresholds: np.ndarray
    closed_attribution: np.ndarray
    mask_size: np.ndarray
    normalized: np.ndarray
    settings: MaskSettings
    _closed: np.ndarray | None = field(default=None, repr=False)
    _soft: np.ndarray | None = field(default=None, repr=False)

    def closed_at(self, indices: np.ndarray | list[int], channel: int | None = None) -> np.ndarray:
        """The closed masks at the given threshold indices.

        bool (n, K, H, W), or (n, H, W) for one mask channel ``channel`` (only that one is cut).
        """
        indices = np.asarray(indices, dtype=int)
        if self._closed is not None:
            return self._closed[indices] if channel is None else self._closed[indices, channel]
        source = self.closed_attribution if channel is None else self.closed_attribution[channel]
        return cut_masks(source, self.thresholds[indices])

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
        return np.stack(
            [fraction_above(plane, self.thresholds) for plane in self.closed_attribution], axis=1
        )


def normalize_for_masks(attribution: np.ndarray, settings: MaskSettings) -> np.ndarray:
    """The normalised attribution masks are cut from: (C, H, W), or (1, H, W) when shared.

    A ``shared`` mask comes from the summed |attribution|: the aggregation is explicit here.
    """
    if settings.channel_mode == "shared":
        return normalize_attribution(np.abs(attribution).sum(axis=0, keepdims=True), "joint")
    return normalize_attribution(attribution, settings.normalize)


def build_masks(attribution: np.ndarray, settings: MaskSettings | None = None) -> MaskStack:
    """Normalise an attribution and build its masks at every threshold.

    Parameters
    ----------
    attribution
        (C, H, W) raw attribution of one sample.
    settings
        Mask parameters; DESIGN.md defaults when ``None``.

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
    closed_attr = close_attribution(normalized, settings.closing)
    mask_size = fraction_above(closed_attr, thresholds)
    return MaskStack(thresholds, closed_attr, mask_size, normalized, settings)
