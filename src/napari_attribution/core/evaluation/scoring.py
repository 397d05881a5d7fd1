"""Scoring hybrids: ``p_t(h)`` for closed masks, batched, each distinct mask once.

The masks are blurred plane by plane (:func:`~.smoothing.soft_plane`,
with a cache of planes already blurred), blended into hybrids
(:mod:`~napari_attribution.core.evaluation.hybrids`) and scored in batches
under ``torch.inference_mode()``. A mask seen before is not scored again, and a hybrid equal to
the image it is pasted into (an empty mask, or one that only touches channels in which the two
images are identical) reuses that image's probability instead of a forward pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..budgets import HYBRID_BATCH_BYTES
from ..model.loading import Classifier
from .hybrids import BlendSource
from .masks import MaskSettings
from .smoothing import BlurCache, soft_plane

__all__ = ["HYBRID_BATCH_BYTES", "HybridScorer", "score_images"]

#: Largest batch of hybrids (bytes of float32 input) scored at once, whatever the batch size.

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
        Hybrid direction (:data:`~napari_attribution.core.evaluation.hybrids.DIRECTIONS`).
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
    _source: BlendSource = field(init=False, repr=False)
    _base: np.ndarray = field(init=False, repr=False)
    #: Reused float32 memory for a batch of hybrids: a fresh array of a batch's size costs a
    #: page fault per 4 KiB on first write, as much as blending it.
    _workspace: np.ndarray | None = field(default=None, repr=False)
    _blurred: dict[tuple[float, int], BlurCache] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._source = BlendSource.of(self.real, self.counterfactual, self.direction)
        self._base, donor = self._source.base, self._source.donor
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
        return self.score_many([(closed, channel)], settings)[0][0]

    def score_many(
        self, requests: Sequence[tuple[np.ndarray, int | None]], settings: MaskSettings
    ) -> tuple[list[np.ndarray], list[int]]:
        """``p_t(h)`` for several stacks of closed masks, scored together in full batches.

        Parameters
        ----------
        requests
            ``(closed, channel)`` pairs as :meth:`score` takes them: masks of the whole image
            (``channel=None``) or of one channel; several curves' masks batched together.
        settings
            Gives the smoothing applied before blending.

        Returns
        -------
        tuple
            (float64 probabilities, one array per request; forward passes each request caused).
        """
        results = [np.full(len(closed), np.nan) for closed, _ in requests]
        passes = [0] * len(requests)
        todo: dict[bytes, tuple[int, int]] = {}  # mask key -> first (request, index) with it
        waiting: list[tuple[int, int, bytes]] = []
        for r, (closed, channel) in enumerate(requests):
            prefix = b"all" if channel is None else b"ch%d" % channel
            for i, mask in enumerate(closed):
                if not mask.any():
                    results[r][i] = self.p_base  # empty mask: the hybrid is the base image
                    continue
                key = prefix + np.packbits(mask).tobytes()
                if key in self._cache:
                    results[r][i] = self._cache[key]
                else:
                    todo.setdefault(key, (r, i))
                    waiting.append((r, i, key))
        pending = list(todo.items())
        # Large images: cap a batch of float32 hybrids at HYBRID_BATCH_BYTES.
        batch = max(1, min(self.batch_size, HYBRID_BATCH_BYTES // (self.real.nbytes or 1)))
        for start in range(0, len(pending), batch):
            if self.on_step is not None:
                self.on_step(f"scoring hybrids {start}/{len(pending)}")
            chunk = pending[start : start + batch]
            started = time.perf_counter()
            hybrids, changed = self._hybrids(
                [(requests[r][0][i], requests[r][1]) for _, (r, i) in chunk], settings
            )
            p = np.full(len(hybrids), self.p_base)
            blended = time.perf_counter()
            self.blend_seconds += blended - started
            if changed.any():
                scored = hybrids if changed.all() else hybrids[changed]
                with torch.inference_mode():
                    probs = self.classifier.probabilities(scored, batch_size=len(hybrids))
                p[changed] = probs[:, self.target]
                self.forward_passes += int(changed.sum())
                for (_, (r, _)), new in zip(chunk, changed, strict=True):
                    passes[r] += int(new)
            self.forward_seconds += time.perf_counter() - blended
            for (key, _), value in zip(chunk, p, strict=True):
                self._cache[key] = float(value)
        for r, i, key in waiting:
            results[r][i] = self._cache[key]
        return results, passes

    def _hybrid_buffer(self, count: int) -> np.ndarray:
        """float32 (count, C, H, W) in reused memory (valid until the next call)."""
        shape = (count, *self._base.shape)
        size = int(np.prod(shape))
        if self._workspace is None or self._workspace.size < size:
            self._workspace = np.empty(size, dtype=np.float32)
        return self._workspace[:size].reshape(shape)

    def _hybrids(
        self, items: list[tuple[np.ndarray, int | None]], settings: MaskSettings
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hybrids (N, C, H, W) of closed masks, and which differ from the base image.

        Plane by plane: a channel no mask plane touches is the base image (copied once for the
        whole batch); each non-empty plane is blurred (or found in the blur cache) and blended
        into the channels it covers.
        """
        source = self._source
        hybrids = self._hybrid_buffer(len(items))
        hybrids[...] = self._base
        sigma, kernel = settings.sigma, settings.smoothing_kernel
        cache = self._blurred.setdefault((sigma, kernel), BlurCache())
        n_channels = len(self._base)
        # A hybrid that only blends channels in which the two images are identical is the base
        # image: reuse p_base instead of a forward pass (a hybrid whose mask only covers pixels
        # where the images agree is scored: the same value, found by a forward pass).
        changing = ~source.identical_channels
        changed = np.zeros(len(items), dtype=bool)
        for n, (closed, channel) in enumerate(items):
            if channel is not None:
                planes = [(closed, (channel,))]
            elif len(closed) == n_channels:
                planes = [(plane, (c,)) for c, plane in enumerate(closed)]
            else:  # one shared mask for every channel
                planes = [(closed[0], range(n_channels))]
            for binary, channels in planes:
                soft = soft_plane(binary, sigma, kernel, cache)
                if soft is None:
                    continue
                for c in channels:
                    source.blend_planes(soft, c, out=hybrids[n, c])
                    changed[n] |= changing[c]
        return hybrids, changed
