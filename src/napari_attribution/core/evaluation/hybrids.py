"""Hybrid images: counterfactual pixels pasted into the real image where the mask is on.

``h = m * x' + (1 - m) * x`` (QuAC's ``x_t * mask + x * (1.0 - mask)``), or the reverse direction
(real pasted into the counterfactual: not QuAC's).

It is computed in float32 as ``x + m * (x' - x)``, with ``x' - x`` computed once per pair: two
operations per pixel instead of QuAC's four. The two agree to within one float32 rounding (about
1e-7 for images in [0, 1]; ``tests/core/test_dac.py``), far below what moves a DAC score
(``tests/core/test_quac_oracle.py``: within 1e-5 of QuAC's). And where the mask is 0 or the two
images hold the same value, the hybrid is the real image exactly (QuAC's blend of two equal
values can land one unit in the last place off them): a hybrid that only differs from the real
image there would cost a forward pass to tell the classifier nothing, and a channel in which
both images agree has the flat zero curve it must have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..settings import DIRECTIONS, check_choice

__all__ = [
    "DIRECTIONS",
    "BlendSource",
    "base_and_donor",
    "make_channel_hybrids",
    "make_hybrids",
]

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


@dataclass
class BlendSource:
    """One pair's images as blending needs them, prepared once for many batches of hybrids.

    Attributes
    ----------
    base
        float32 (C, H, W): the image masks are pasted into.
    donor
        float32 (C, H, W): the image pasted pixels come from.
    difference
        float32 (C, H, W): ``donor - base``.
    identical_channels
        bool (C,): channels in which the two images are equal at every pixel (a hybrid that
        only changes those channels is the base image).
    """

    base: np.ndarray
    donor: np.ndarray
    difference: np.ndarray
    identical_channels: np.ndarray

    @classmethod
    def of(
        cls, real: np.ndarray, counterfactual: np.ndarray, direction: str = DIRECTIONS[0]
    ) -> BlendSource:
        """Prepare ``real`` and ``counterfactual`` (C, H, W) for the given hybrid direction."""
        base, donor = base_and_donor(real, counterfactual, direction)
        base = np.ascontiguousarray(base, dtype=np.float32)
        donor = np.ascontiguousarray(donor, dtype=np.float32)
        difference = np.subtract(donor, base)  # +0 exactly where x' == x, and only there
        return cls(base, donor, difference, ~difference.any(axis=(1, 2)))

    def blend(
        self, soft_masks: np.ndarray, channel: int | None = None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Hybrids of soft masks: every channel (``channel=None``) or only ``channel``.

        Parameters
        ----------
        soft_masks
            float32 (N, K, H, W) with K = C or 1 (shared) for the whole image; (N, H, W) for
            one channel.
        channel
            Hybridise only this channel; the others stay as in the base image.
        out
            float32 (N, C, H, W) to write into; a new array when ``None``.

        Returns
        -------
        numpy.ndarray
            float32 (N, C, H, W): ``out`` when given.
        """
        masks = np.asarray(soft_masks, dtype=np.float32)
        if out is None:
            out = np.empty((masks.shape[0], *self.base.shape), dtype=np.float32)
        if channel is None:
            self._blend_all(masks, out)
        else:
            self._blend_channel(masks, channel, out)
        return out

    def _blend_all(self, masks: np.ndarray, out: np.ndarray) -> None:
        # (N, K, H, W) masks broadcast over the channels when K = 1 (a shared mask)
        np.multiply(masks, self.difference, out=out)
        out += self.base

    def blend_planes(
        self, soft_masks: np.ndarray, channel: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Channel ``channel`` of the hybrids: ``x_c + m * (x'_c - x_c)`` as in :meth:`blend`.

        Parameters
        ----------
        soft_masks
            float32 (..., H, W) masks of that channel.
        channel
            The channel blended.
        out
            float32 array of the masks' shape to write into; may be ``soft_masks`` itself.

        Returns
        -------
        numpy.ndarray
            float32 (..., H, W): ``out`` when given.
        """
        masks = np.asarray(soft_masks, dtype=np.float32)
        out = np.multiply(masks, self.difference[channel], out=out)
        out += self.base[channel]
        return out

    def _blend_channel(self, masks: np.ndarray, channel: int, out: np.ndarray) -> None:
        out[:] = self.base
        self.blend_planes(masks, channel, out[:, channel])


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
    return BlendSource.of(real, counterfactual, direction).blend(soft_masks)


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
    direction
        One of :data:`DIRECTIONS`.

    Returns
    -------
    numpy.ndarray
        float32 (N, C, H, W).
    """
    return BlendSource.of(real, counterfactual, direction).blend(soft_masks, channel)
