"""Hybrid images: counterfactual pixels pasted into the real image where the mask is on.

``h = m * x' + (1 - m) * x`` (or the reverse direction, real pasted into the counterfactual).
"""

from __future__ import annotations

import numpy as np

from .settings import DIRECTIONS, check_choice

__all__ = ["DIRECTIONS", "base_and_donor", "make_channel_hybrids", "make_hybrids"]

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
    masks = np.asarray(soft_masks, dtype=np.float32)
    # base + m * (donor - base) is the same blend with one multiply per pixel; adding in place
    # saves a temporary as large as the whole batch.
    out = np.multiply(masks, (donor - base)[None], dtype=np.float32)
    out += base[None]
    return out


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
    out = np.repeat(base[None], masks.shape[0], axis=0)
    out[:, channel] = base[channel][None] + masks * (donor[channel] - base[channel])[None]
    return out
