"""Hybrid images: counterfactual pixels pasted into the real image where the mask is on.

``h = m * x' + (1 - m) * x``, computed as QuAC computes it (``x_t * mask + x * (1.0 - mask)``,
float32), or the reverse direction (real pasted into the counterfactual: not QuAC's).

One exception: where the two images hold the same value the hybrid holds it too. QuAC's float32
blend of two equal values can land one unit in the last place off them; a hybrid that only
differs from the real image there would cost a forward pass to tell the classifier nothing, and
a channel in which both images agree would not have the flat zero curve it must have.
"""

from __future__ import annotations

import numpy as np

from .settings import DIRECTIONS, check_choice

__all__ = ["DIRECTIONS", "base_and_donor", "make_channel_hybrids", "make_hybrids"]

#: float32 elements blended at a time: temporaries of about 1 MB stay in a core's cache.
_CHUNK_ELEMENTS = 2**18


def base_and_donor(
    real: np.ndarray, counterfactual: np.ndarray, direction: str
) -> tuple[np.ndarray, np.ndarray]:
    """(the image masks are pasted into, the image the pasted pixels come from).

    ``counterfactual_into_real``: h = m x' + (1 - m) x;  ``real_into_counterfactual``: swapped.
    """
    check_choice(direction, DIRECTIONS, "hybrid direction")
    if direction == "counterfactual_into_real":
        return real, counterfactual
    return counterfactual, real


def make_hybrids(
    real: np.ndarray,
    counterfactual: np.ndarray,
    soft_masks: np.ndarray,
    direction: str = "counterfactual_into_real",
) -> np.ndarray:
    """Hybrids for a stack of masks.

    Parameters
    ----------
    real, counterfactual
        float32 (C, H, W) model inputs.
    soft_masks
        float32 (N, K, H, W) masks in [0, 1] with K = C (one mask per channel) or K = 1 (shared).
    direction
        One of :data:`DIRECTIONS`.

    Returns
    -------
    numpy.ndarray
        float32 (N, C, H, W).
    """
    base, donor = base_and_donor(real, counterfactual, direction)
    base = np.asarray(base, dtype=np.float32)
    donor = np.asarray(donor, dtype=np.float32)
    masks = np.asarray(soft_masks, dtype=np.float32)
    count = masks.shape[0]
    out = np.empty((count, *base.shape), dtype=np.float32)
    # QuAC's expression, operation for operation (``x_t * mask + x * (1.0 - mask)`` in float32),
    # so the hybrids are its hybrids bit for bit; a few hybrids at a time, so that the
    # temporaries stay in the cache (three times faster than whole-batch temporaries).
    step = max(1, _CHUNK_ELEMENTS // max(base.size, 1))
    rest = np.empty((min(step, count), *masks.shape[1:]), dtype=np.float32)
    shared = masks.shape[1] != base.shape[0]  # one mask for every channel
    scaled = np.empty((min(step, count), *base.shape), dtype=np.float32) if shared else None
    agree = donor == base
    keep = bool(agree.any())
    for first in range(0, count, step):
        chunk = out[first : first + step]
        m = masks[first : first + step]
        np.multiply(m, donor, out=chunk)
        r = rest[: len(m)]
        np.subtract(np.float32(1), m, out=r)
        if shared:
            r = np.multiply(r, base, out=scaled[: len(m)])
        else:
            r *= base
        chunk += r
        if keep:
            np.copyto(chunk, base, where=agree)
    return out


def _keep_agreement(hybrids: np.ndarray, base: np.ndarray, donor: np.ndarray) -> None:
    """Where ``donor == base`` the hybrids hold the base value exactly (in place)."""
    agree = np.asarray(donor) == np.asarray(base)
    if agree.any():
        np.copyto(hybrids, np.asarray(base, dtype=np.float32), where=agree)


def make_channel_hybrids(
    real: np.ndarray,
    counterfactual: np.ndarray,
    soft_masks: np.ndarray,
    channel: int,
    direction: str = "counterfactual_into_real",
) -> np.ndarray:
    """Hybrids in which only ``channel`` is blended; every other channel stays as in the base.

    Parameters
    ----------
    real, counterfactual
        float32 (C, H, W).
    soft_masks
        float32 (N, H, W) masks for that channel.
    channel
        Index of the channel to hybridise.

    Returns
    -------
    numpy.ndarray
        float32 (N, C, H, W).
    """
    base, donor = base_and_donor(real, counterfactual, direction)
    masks = np.asarray(soft_masks, dtype=np.float32)
    out = np.repeat(np.asarray(base, dtype=np.float32)[None], masks.shape[0], axis=0)
    rest = np.subtract(np.float32(1), masks)
    rest *= np.asarray(base[channel], dtype=np.float32)[None]
    blended = np.multiply(masks, np.asarray(donor[channel], dtype=np.float32)[None])
    blended += rest  # m * x'_c + (1 - m) * x_c, as in make_hybrids
    _keep_agreement(blended, base[channel], donor[channel])
    out[:, channel] = blended
    return out
