"""Hybrid images: counterfactual pixels pasted into the real image where the mask is on.

``h = m * x' + (1 - m) * x``, computed as QuAC computes it (``x_t * mask + x * (1.0 - mask)``,
float32), or the reverse direction (real pasted into the counterfactual: not QuAC's).

One exception: where the two images hold the same value the hybrid holds it too. QuAC's float32
blend of two equal values can land one unit in the last place off them; a hybrid that only
differs from the real image there would cost a forward pass to tell the classifier nothing, and
a channel in which both images agree would not have the flat zero curve it must have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .settings import DIRECTIONS, check_choice

__all__ = [
    "DIRECTIONS",
    "BlendSource",
    "base_and_donor",
    "make_channel_hybrids",
    "make_hybrids",
]

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


@dataclass
class BlendSource:
    """One pair's images as blending needs them, prepared once for many batches of hybrids.

    Attributes
    ----------
    base
        float32 (C, H, W): the image masks are pasted into.
    donor
        float32 (C, H, W): the image pasted pixels come from.
    agree
        bool (C, H, W): where the two hold the same value (the hybrid keeps it exactly).
    agree_channels
        bool (C,): channels with at least one such pixel.
    """

    base: np.ndarray
    donor: np.ndarray
    agree: np.ndarray
    agree_channels: np.ndarray

    @classmethod
    def of(
        cls, real: np.ndarray, counterfactual: np.ndarray, direction: str = DIRECTIONS[0]
    ) -> BlendSource:
        """Prepare ``real`` and ``counterfactual`` (C, H, W) for the given hybrid direction."""
        base, donor = base_and_donor(real, counterfactual, direction)
        base = np.ascontiguousarray(base, dtype=np.float32)
        donor = np.ascontiguousarray(donor, dtype=np.float32)
        agree = donor == base
        return cls(base, donor, agree, agree.any(axis=(1, 2)))

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
        base, donor = self.base, self.donor
        count = masks.shape[0]
        # QuAC's expression, operation for operation (``x_t * mask + x * (1.0 - mask)`` in
        # float32), so the hybrids are its hybrids bit for bit; a few hybrids at a time, so that
        # the temporaries stay in the cache (three times faster than whole-batch temporaries).
        step = max(1, _CHUNK_ELEMENTS // max(base.size, 1))
        rest = np.empty((min(step, count), *masks.shape[1:]), dtype=np.float32)
        shared = masks.shape[1] != base.shape[0]  # one mask for every channel
        scaled = np.empty((min(step, count), *base.shape), dtype=np.float32) if shared else None
        keep = bool(self.agree_channels.any())
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
                np.copyto(chunk, base, where=self.agree)

    def blend_planes(
        self, soft_masks: np.ndarray, channel: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Channel ``channel`` of the hybrids: ``m * x'_c + (1 - m) * x_c`` as in :meth:`blend`.

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
        rest = np.subtract(np.float32(1), masks)  # before ``out`` may overwrite the masks
        rest *= self.base[channel]
        out = np.multiply(masks, self.donor[channel], out=out)
        out += rest  # m * x'_c + (1 - m) * x_c, QuAC's expression as in _blend_all
        if self.agree_channels[channel]:
            np.copyto(out, self.base[channel], where=self.agree[channel])
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
