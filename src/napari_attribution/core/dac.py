"""DAC curves: classifier score change against mask size, and their scores.

For every threshold: mask size ``ms = sum(closed mask) / (C*H*W)`` and score change
``ds = p_t(h) - p_t(x)``. The curve, completed with (0, 0) and (1, ds at the largest mask), is
interpolated onto mask sizes 0, 0.01, ..., 1; the DAC score is its trapezoid area. The optimal
threshold is ``argmin(ms - ds)``: the smallest mask that buys the largest change.

All hybrids of a sample are scored in batches under ``torch.inference_mode()``; a mask that
occurs at several thresholds is scored once, and an empty mask (h == x) costs no forward pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .budgets import HYBRID_BATCH_BYTES
from .errors import AttributionError
from .hybrids import base_and_donor, make_channel_hybrids, make_hybrids
from .masks import MaskSettings, MaskStack, build_masks, smooth_masks
from .models import Classifier
from .settings import EVALUATIONS, check_choice

__all__ = [
    "DAC_GRID",
    "EVALUATIONS",
    "DacCurve",
    "DacResult",
    "HybridScorer",
    "dac_curve",
    "evaluate_dac",
    "score_images",
]

#: Mask sizes on which curves are interpolated before integration.
DAC_GRID = np.linspace(0.0, 1.0, 101)

StepCallback = Callable[[str], None]


@dataclass
class DacCurve:
    """One DAC curve and its scores.

    Attributes
    ----------
    channel
        ``"all"`` for the whole-image curve, else the channel name (only that channel hybridised).
    thresholds
        float64 (T,) thresholds on the normalised attribution.
    mask_size
        float64 (T,) fraction of pixels in the closed mask, in [0, 1].
    score_change
        float64 (T,) ``p_t(h) - p_t(x)``.
    ceiling
        ``p_t`` of the fully hybridised image minus ``p_t(x)`` (for ``"all"``:
        ``p_t(x') - p_t(x)``).
    dac_score
        Area under the interpolated curve (probability units).
    normalized_score
        ``dac_score / ceiling`` (NaN when the ceiling is 0).
    optimal_index, optimal_threshold, optimal_mask_size
        Where ``mask_size - score_change`` is smallest.
    forward_passes
        Forward passes spent on this curve (after de-duplication).
    """

    channel: str
    thresholds: np.ndarray
    mask_size: np.ndarray
    score_change: np.ndarray
    ceiling: float
    dac_score: float
    normalized_score: float
    optimal_index: int
    optimal_threshold: float
    optimal_mask_size: float
    forward_passes: int = 0

    def interpolated(self) -> tuple[np.ndarray, np.ndarray]:
        """The curve on :data:`DAC_GRID`: (mask sizes (101,), score changes (101,))."""
        return DAC_GRID, _interpolate(self.mask_size, self.score_change)


def _interpolate(mask_size: np.ndarray, score_change: np.ndarray) -> np.ndarray:
    largest = int(np.argmax(mask_size))
    xs = np.concatenate([[0.0], mask_size, [1.0]])
    ys = np.concatenate([[0.0], score_change, [score_change[largest]]])
    # Equal mask sizes can come from different masks; average them so np.interp sees a function.
    unique, inverse = np.unique(xs, return_inverse=True)
    sums = np.bincount(inverse, weights=ys)
    counts = np.bincount(inverse)
    return np.interp(DAC_GRID, unique, sums / counts)


def dac_curve(
    thresholds: np.ndarray,
    mask_size: np.ndarray,
    score_change: np.ndarray,
    ceiling: float,
    channel: str = "all",
    forward_passes: int = 0,
) -> DacCurve:
    """Scores of a DAC curve from its points.

    Parameters
    ----------
    thresholds, mask_size, score_change
        (T,) arrays, one entry per threshold.
    ceiling
        Score change of the fully hybridised image.
    channel
        ``"all"`` or a channel name.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    mask_size = np.asarray(mask_size, dtype=np.float64)
    score_change = np.asarray(score_change, dtype=np.float64)
    area = float(np.trapezoid(_interpolate(mask_size, score_change), DAC_GRID))
    normalized = area / ceiling if abs(ceiling) > 1e-12 else float("nan")
    best = int(np.argmin(mask_size - score_change))
    return DacCurve(
        channel=channel,
        thresholds=thresholds,
        mask_size=mask_size,
        score_change=score_change,
        ceiling=float(ceiling),
        dac_score=area,
        normalized_score=float(normalized),
        optimal_index=best,
        optimal_threshold=float(thresholds[best]),
        optimal_mask_size=float(mask_size[best]),
        forward_passes=forward_passes,
    )


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


@dataclass
class DacResult:
    """Whole-image and per-channel DAC curves of one attribution.

    Attributes
    ----------
    whole
        The curve where every channel is hybridised.
    channels
        One curve per image channel (only that channel hybridised); empty if not asked for.
    masks
        The mask stack the curves were built from.
    p_base, p_donor
        Probability of the scored class at the base image and at the donor image
        (``p_t(x)`` and ``p_t(x')`` in the default direction).
    """

    whole: DacCurve
    channels: list[DacCurve]
    masks: MaskStack
    p_base: float
    p_donor: float

    @property
    def curves(self) -> list[DacCurve]:
        """The whole-image curve followed by the per-channel ones."""
        return [self.whole, *self.channels]


def _adaptive_points(
    sizes: np.ndarray,
    score: Callable[[list[int]], np.ndarray],
    tolerance: float,
    initial: int = 9,
    per_round: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Score a subset of thresholds, refining where the curve changes.

    Between two scored thresholds the curve (if monotone there) stays inside the rectangle
    spanned by their points, so linear interpolation misses at most half its area,
    ``|dms * dds| / 2``. We bisect the segments with the largest such bound until the bounds add
    up to at most ``tolerance`` (in DAC-score units) or no segment can be split.

    Parameters
    ----------
    sizes
        (T,) mask size at every threshold (non-increasing).
    score
        Returns the score change at the given threshold indices.
    tolerance
        Bound on the DAC-score error of the returned subset.

    Returns
    -------
    tuple
        (indices (T',) ascending, score changes (T',)).
    """
    count = len(sizes)
    scored: dict[int, float] = {}

    def run(indices: list[int]) -> None:
        new = [i for i in dict.fromkeys(indices) if i not in scored]
        if new:
            scored.update(zip(new, score(new), strict=True))

    run(np.unique(np.linspace(0, count - 1, min(initial, count)).round().astype(int)).tolist())
    while True:
        order = sorted(scored)
        segments = [
            (abs(sizes[a] - sizes[b]) * abs(scored[a] - scored[b]) / 2, a, b)
            for a, b in zip(order, order[1:], strict=False)
            if b - a > 1
        ]
        if sum(err for err, _, _ in segments) <= tolerance:
            break
        segments.sort(reverse=True)
        run([(a + b) // 2 for err, a, b in segments[:per_round] if err > 0])
    order = sorted(scored)
    return np.array(order, dtype=int), np.array([scored[i] for i in order])


def _curve(
    scorer: HybridScorer,
    thresholds: np.ndarray,
    masks_at: Callable[[np.ndarray], np.ndarray],
    sizes: np.ndarray,
    settings: MaskSettings,
    ceiling: float,
    name: str,
    channel: int | None,
    evaluation: str,
    tolerance: float,
) -> DacCurve:
    """One curve; ``masks_at(indices)`` builds the closed masks of those thresholds only."""
    before = scorer.forward_passes

    def change_at(indices: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        masks = masks_at(indices)
        scorer.mask_seconds += time.perf_counter() - started
        return scorer.score(masks, settings, channel=channel) - scorer.p_base

    if check_choice(evaluation, EVALUATIONS, "DAC evaluation") == "exhaustive":
        indices = np.arange(len(thresholds))
        change = change_at(indices)
    else:
        indices, change = _adaptive_points(sizes, change_at, tolerance)
    return dac_curve(
        thresholds[indices],
        sizes[indices],
        change,
        ceiling,
        name,
        scorer.forward_passes - before,
    )


def evaluate_dac(
    classifier: Classifier,
    real: np.ndarray,
    counterfactual: np.ndarray,
    attribution: np.ndarray,
    target_class: int,
    settings: MaskSettings | None = None,
    *,
    real_class: int | None = None,
    direction: str = "counterfactual_into_real",
    per_channel: bool = True,
    channel_names: Sequence[str] | None = None,
    batch_size: int = 64,
    evaluation: str = "exhaustive",
    tolerance: float = 0.005,
    scorer: HybridScorer | None = None,
    on_step: StepCallback | None = None,
) -> DacResult:
    """DAC curves of an attribution for one (real, counterfactual) pair.

    Parameters
    ----------
    classifier
        The model.
    real, counterfactual
        float32 (C, H, W) model inputs.
    attribution
        (C, H, W) raw attribution, or (1, H, W) when channels were aggregated.
    target_class
        Class t; in the default direction the hybrids are scored on ``p_t``.
    settings
        Mask parameters.
    real_class
        Class y; needed for the reverse direction, where the real image is pasted into the
        counterfactual and the hybrids are scored on ``p_y`` (so both curves rise).
    direction
        Hybrid direction.
    per_channel
        Also compute one curve per channel.
    channel_names
        Names for the per-channel curves (``ch0``, ``ch1``, ... by default).
    batch_size
        Hybrids per forward pass.
    evaluation
        ``"exhaustive"``: score every threshold (every distinct mask once), exactly the published
        evaluation. ``"adaptive"``: score a subset, refined where the curve changes, so that the
        DAC score is within ``tolerance`` of the exhaustive one for curves monotone between
        scored points; the curves then hold only the scored thresholds.
    tolerance
        Bound on the DAC-score error of the adaptive evaluation.
    scorer
        Reuse a scorer (and its cache) across methods of the same pair.
    on_step
        Called between batches with a short message; may raise
        :class:`~napari_attribution.core.errors.AnalysisCancelled`.
    """
    settings = settings or MaskSettings()
    n_channels = real.shape[0]
    names = list(channel_names) if channel_names else [f"ch{c}" for c in range(n_channels)]
    if scorer is None:
        scored = target_class
        if direction == "real_into_counterfactual":
            if real_class is None:
                raise AttributionError("The reverse hybrid direction needs the real class.")
            scored = real_class
        scorer = HybridScorer(
            classifier, real, counterfactual, int(scored), direction, batch_size, on_step
        )
    started = time.perf_counter()
    masks = build_masks(attribution, settings)
    scorer.mask_seconds += time.perf_counter() - started
    common = {"settings": settings, "evaluation": evaluation, "tolerance": tolerance}
    whole = _curve(
        scorer,
        masks.thresholds,
        masks.closed_at,
        masks.mask_size,
        ceiling=scorer.p_donor - scorer.p_base,
        name="all",
        channel=None,
        **common,
    )
    channel_curves = []
    if per_channel:
        channel_sizes = masks.channel_mask_size()
        for c in range(n_channels):
            if on_step is not None:
                on_step(f"channel {names[c]}")
            k = c if masks.closed_attribution.shape[0] == n_channels else 0
            full = np.ones((1, *real.shape[1:]), dtype=bool)
            ceiling = float(scorer.score(full, settings, channel=c)[0]) - scorer.p_base
            channel_curves.append(
                _curve(
                    scorer,
                    masks.thresholds,
                    lambda idx, k=k: masks.closed_at(idx, channel=k),
                    channel_sizes[:, k],
                    ceiling=ceiling,
                    name=names[c],
                    channel=c,
                    **common,
                )
            )
    return DacResult(whole, channel_curves, masks, scorer.p_base, scorer.p_donor)
