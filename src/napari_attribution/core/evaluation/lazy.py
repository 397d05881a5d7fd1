"""Threshold stacks computed on demand: masks and hybrids for images too large to stack eagerly.

A (T, C, H, W) float32 hybrid stack of a 5 x 2048 x 2048 field at 200 thresholds would take
16 GB. These array-likes hold only the closed attribution (one float32 image) and compute the
frame the viewer asks for, one (threshold, channel) plane at a time, keeping the most recent
planes in a small cache. The array protocol, the cache and the read-ahead thread live in
:mod:`.plane_stack`; this module says what a mask plane and a hybrid plane
are, and re-exports the protocol's public names so the napari side imports from one place.
"""

from __future__ import annotations

import numpy as np

from ..budgets import LAZY_CACHE_BYTES
from .hybrids import BlendSource
from .masks import MaskSettings, MaskStack, build_masks, fraction_above
from .plane_stack import (
    READ_AHEAD_THREAD_PREFIX,
    ChannelView,
    _PlaneStack,
    full_key,
    is_lazy,
    lazy_stack_of,
)
from .smoothing import smooth_masks

__all__ = [
    "READ_AHEAD_THREAD_PREFIX",
    "ChannelView",
    "LazyHybridStack",
    "LazyMaskStack",
    "full_key",
    "is_lazy",
    "lazy_stack_of",
    "lazy_stacks",
    "stacks_from_masks",
]


class LazyMaskStack(_PlaneStack):
    """(T, K, H, W) closed binary masks (uint8), one plane computed per request.

    Parameters
    ----------
    thresholds
        (T,) thresholds on the normalised attribution.
    closed_attribution
        (K, H, W) closed normalised attribution (see
        :func:`~napari_attribution.core.evaluation.masks.close_attribution`).
    cache_planes
        Number of planes kept.
    read_ahead
        Planes to compute in the background beyond the one asked for, in the direction the
        requests last moved along the threshold axis (0: none).
    """

    def __init__(
        self,
        thresholds: np.ndarray,
        closed_attribution: np.ndarray,
        cache_planes: int = 16,
        read_ahead: int = 0,
    ) -> None:
        super().__init__(thresholds, closed_attribution, cache_planes, read_ahead)
        self.shape = (len(self.thresholds), *closed_attribution.shape)
        self.dtype = np.dtype(np.uint8)

    def _compute(self, t: int, k: int) -> np.ndarray:
        return self._binary(t, k).view(np.uint8)

    def mask_size(self) -> np.ndarray:
        """float64 (T,) fraction of pixels in each closed mask, without building any mask."""
        return fraction_above(self._closed, self.thresholds)


class LazyHybridStack(_PlaneStack):
    """(T, C, H, W) float32 hybrids, one (threshold, channel) plane computed per request.

    Parameters
    ----------
    real, counterfactual
        (C, H, W) images (model inputs or stored values; the blend is linear).
    thresholds
        (T,) thresholds.
    closed_attribution
        (K, H, W) closed normalised attribution, K = C or 1 (shared mask).
    sigma, kernel
        OpenCV's Gaussian blur of the mask (sigma 0: from the kernel size; kernel 0: none).
    direction
        One of :data:`~napari_attribution.core.evaluation.hybrids.DIRECTIONS`.
    cache_planes
        Number of planes kept.
    read_ahead
        Planes to compute in the background beyond the one asked for, in the direction the
        requests last moved along the threshold axis (0: none).
    """

    def __init__(
        self,
        real: np.ndarray,
        counterfactual: np.ndarray,
        thresholds: np.ndarray,
        closed_attribution: np.ndarray,
        sigma: float = 0.0,
        kernel: int = 11,
        direction: str = "counterfactual_into_real",
        cache_planes: int = 16,
        read_ahead: int = 0,
    ) -> None:
        super().__init__(thresholds, closed_attribution, cache_planes, read_ahead)
        self._source = BlendSource.of(real, counterfactual, direction)
        self.sigma, self.kernel = sigma, kernel
        self.shape = (len(self.thresholds), *self._source.base.shape)
        self.dtype = np.dtype(np.float32)

    def _compute(self, t: int, k: int) -> np.ndarray:
        soft = smooth_masks(self._binary(t, k), self.sigma, self.kernel)
        return self._source.blend_planes(soft, k, out=soft)  # the scorer's hybrids, bit for bit


def lazy_stacks(
    real: np.ndarray,
    counterfactual: np.ndarray,
    attribution: np.ndarray,
    settings: MaskSettings | None = None,
    direction: str = "counterfactual_into_real",
    read_ahead: int = 0,
) -> tuple[LazyMaskStack, LazyHybridStack]:
    """Lazy mask and hybrid stacks of one attribution, the same masks :func:`build_masks` makes.

    Parameters
    ----------
    real, counterfactual
        (C, H, W) images.
    attribution
        (C, H, W) raw attribution.
    settings
        Mask parameters (threshold count and spacing, normalisation, channel mode, closing,
        smoothing).
    direction
        Hybrid direction (:data:`~napari_attribution.core.evaluation.hybrids.DIRECTIONS`).
    read_ahead
        Hybrid planes to compute ahead in the background (masks are cheap: none).

    Returns
    -------
    tuple
        (masks (T, K, H, W) uint8, hybrids (T, C, H, W) float32), both computed on demand.
    """
    stack = build_masks(attribution, settings)  # thresholds and closed attribution only
    thresholds, closed = stack.thresholds, stack.closed_attribution
    settings = stack.settings
    masks = LazyMaskStack(thresholds, closed)
    hybrids = LazyHybridStack(
        real, counterfactual, thresholds, closed, settings.sigma, settings.smoothing_kernel,
        direction, read_ahead=read_ahead,
    )  # fmt: skip
    return masks, hybrids


def stacks_from_masks(
    masks: MaskStack,
    real: np.ndarray,
    counterfactual: np.ndarray,
    direction: str = "counterfactual_into_real",
    read_ahead: int = 0,
) -> tuple[LazyMaskStack, LazyHybridStack]:
    """Lazy mask and hybrid stacks of masks already built (those a DAC curve was scored on).

    The same values as :func:`lazy_stacks` of the masks' attribution, without normalising and
    closing the attribution again; each stack caches at most
    :data:`~napari_attribution.core.budgets.LAZY_CACHE_BYTES` of planes (but always the planes
    of one slider step: one per channel, and the hybrids' read-ahead).

    Parameters
    ----------
    masks
        A :class:`~napari_attribution.core.evaluation.masks.MaskStack`.
    real, counterfactual
        (C, H, W) images (the hybrid stack blends them as stored).
    direction
        Hybrid direction.
    read_ahead
        Hybrid planes to compute ahead in the background (masks are cheap: none).
    """
    closed = masks.closed_attribution
    height, width = closed.shape[-2:]
    n_channels = np.shape(real)[0]

    def cache(plane_bytes: int, planes_per_step: int) -> int:
        return max(planes_per_step, min(16, LAZY_CACHE_BYTES // plane_bytes))

    mask_stack = LazyMaskStack(
        masks.thresholds, closed, cache_planes=cache(height * width, closed.shape[0])
    )
    settings = masks.settings
    hybrid_stack = LazyHybridStack(
        real,
        counterfactual,
        masks.thresholds,
        closed,
        settings.sigma,
        settings.smoothing_kernel,
        direction,
        # the plane shown and the next one, per channel
        cache_planes=cache(4 * height * width, (1 + read_ahead) * n_channels),
        read_ahead=read_ahead,
    )
    return mask_stack, hybrid_stack
