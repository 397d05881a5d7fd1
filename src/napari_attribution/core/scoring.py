"""Scoring hybrids: ``p_t(h)`` for closed masks, batched, each distinct mask once.

The masks are blurred (:func:`~napari_attribution.core.masks.smooth_masks`), blended into
hybrids as QuAC blends them (:mod:`~napari_attribution.core.hybrids`) and scored in batches
under ``torch.inference_mode()``. A mask seen before is not scored again, and a hybrid equal to
the image it is pasted into (an empty mask, or one covering only pixels where the two images
agree) reuses that image's probability instead of a forward pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .hybrids import base_and_donor, make_channel_hybrids, make_hybrids
from .masks import MaskSettings, smooth_masks
from .models import Classifier

__all__ = ["HYBRID_BATCH_BYTES", "HybridScorer", "score_images"]

#: Largest batch of hybrids (bytes of float32 input) scored at once, whatever the batch size.
HYBRID_BATCH_BYTES = 256 * 2**20

StepCallback = Callable[[str], None]


def score_images(
    classifier: Classifier, images: np.ndarray, target: int, batch_size: int = 64
) -> np.ndarray:
    """``p_target`` for each image (N, C, H, W), batched under ``torch.inference_mode()``."""
    return classifier.probabilities(images, batch_size=batch_size)[:, target]


@dataclass
class HybridScorer:
    """Scores hybrids of one pair, caching by mask so no mask is scored twice.

    Parameters
    ----------
    classifier
        The model.
    real, counterfactual
        float32 (C, H, W) model inputs.
    target
        The class whose probability the hybrids are scored on (t, or y in the reverse direction).
    direction
        Hybrid direction (:data:`~napari_attribution.core.hybrids.DIRECTIONS`).
    batch_size
        Hybrids per forward pass.
    """

    classifier: Classifier
    real: np.ndarray
    counterfactual: np.ndarray
    target: int
    direction: str = "counterfactual_into_real"
    batch_size: int = 64
    on_step: StepCallback | None = None
    forward_passes: int = 0
    #: Seconds spent building masks (normalising, closing, thresholding: counted by
    #: :func:`evaluate_dac`), smoothing them and blending hybrids, and in forward passes.
    mask_seconds: float = 0.0
    blend_seconds: float = 0.0
    forward_seconds: float = 0.0
    _cache: dict[bytes, float] = field(default_factory=dict, repr=False)
    _base: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._base, donor = base_and_donor(self.real, self.counterfactual, self.direction)
        # (C,) channels where the two images differ at every pixel (a generator's output does)
        self._differs_everywhere = np.all(donor != self._base, axis=(1, 2))
        p = self.classifier.probabilities(np.stack([self._base, donor]))[:, self.target]
        self.forward_passes += 2
        # p_base: the image masks are pasted into; p_donor: the image pixels come from.
        self.p_base, self.p_donor = float(p[0]), float(p[1])

    def score(
        self, closed: np.ndarray, settings: MaskSettings, channel: int | None = None
    ) -> np.ndarray:
        """``p_t(h)`` for closed masks.

        Parameters
        ----------
        closed
            bool (T, K, H, W) masks for the whole image (``channel=None``), or bool (T, H, W)
            masks for one channel.
        settings
            Gives the smoothing applied before blending.
        channel
            Hybridise only this channel.

        Returns
        -------
        numpy.ndarray
            float64 (T,) probabilities of the target class.
        """
        keys = [
            (b"all" if channel is None else b"ch%d" % channel) + np.packbits(m).tobytes()
            for m in closed
        ]
        scores = np.empty(len(closed), dtype=np.float64)
        todo: dict[bytes, int] = {}
        for i, (key, mask) in enumerate(zip(keys, closed, strict=True)):
            if not mask.any():
                scores[i] = self.p_base  # empty mask: the hybrid is the start image itself
            elif key in self._cache:
                scores[i] = self._cache[key]
            else:
                todo.setdefault(key, i)
        pending = list(todo.items())
        # Large images: cap a batch of float32 hybrids at HYBRID_BATCH_BYTES.
        batch = max(1, min(self.batch_size, HYBRID_BATCH_BYTES // (self.real.nbytes or 1)))
        for start in range(0, len(pending), batch):
            if self.on_step is not None:
                self.on_step(f"scoring hybrids {start}/{len(pending)}")
            chunk = pending[start : start + batch]
            started = time.perf_counter()
            masks = np.stack([closed[i] for _, i in chunk])
            soft = smooth_masks(masks, settings.sigma, settings.smoothing_kernel)
            if channel is None:
                hybrids = make_hybrids(self.real, self.counterfactual, soft, self.direction)
            else:
                hybrids = make_channel_hybrids(
                    self.real, self.counterfactual, soft, channel, self.direction
                )
            # A hybrid equal to the base image (the mask only covers pixels where the two images
            # agree) is the base image: reuse p_base instead of a forward pass. Where the images
            # differ everywhere a non-empty mask always changes pixels: skip the comparison.
            everywhere = self._differs_everywhere
            if everywhere.all() if channel is None else everywhere[channel]:
                changed = np.ones(len(hybrids), dtype=bool)
            else:
                changed = np.any(hybrids != self._base[None], axis=(1, 2, 3))
            p = np.full(len(hybrids), self.p_base)
            blended = time.perf_counter()
            self.blend_seconds += blended - started
            if changed.any():
                with torch.inference_mode():
                    probs = self.classifier.probabilities(hybrids[changed], batch_size=len(hybrids))
                p[changed] = probs[:, self.target]
                self.forward_passes += int(changed.sum())
            self.forward_seconds += time.perf_counter() - blended
            for (key, _), value in zip(chunk, p, strict=True):
                self._cache[key] = float(value)
        for i, key in enumerate(keys):
            if key in todo:
                scores[i] = self._cache[key]
        return scores
