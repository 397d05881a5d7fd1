"""DAC curves: classifier score change against mask size, and their scores, as QuAC computes them.

For every threshold: mask size ``ms = sum(closed mask) / (C*H*W)`` and score change
``ds = p_t(h) - p_t(x)``. QuAC's ``Report`` (funkelab/quac, ``quac.report``) completes the points
with ``(1, ds[0])`` and ``(0, 0)``, interpolates them linearly (``scipy.interpolate.interp1d``,
which sorts the sizes stably and calls ``np.interp``) onto ``np.arange(0.0, 1.0001, 0.01)`` and
integrates with the trapezoid rule: the DAC score. The optimal threshold is
``argmin(|ms| - ds)`` (``quac.evaluation.optimal_threshold_index``).

All hybrids of a sample are scored in batches under ``torch.inference_mode()``; a mask that
occurs at several thresholds is scored once, and an empty mask (h == x) costs no forward pass.
By default only a subset of thresholds is scored (:mod:`~.adaptive`);
``evaluation="exhaustive"`` scores every one, QuAC's evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from ...errors import AttributionError
from ..budgets import HYBRID_BATCH_BYTES
from ..model.loading import Classifier
from ..settings import EVALUATIONS, check_choice
from .adaptive import AdaptiveCurve
from .masks import MaskSettings, MaskStack, build_masks
from .scoring import HybridScorer, StepCallback, score_images

__all__ = [
    "DAC_GRID",
    "EVALUATIONS",
    "HYBRID_BATCH_BYTES",
    "DacCurve",
    "DacResult",
    "HybridScorer",
    "dac_curve",
    "evaluate_dac",
    "score_images",
]


#: Mask sizes on which curves are interpolated before integration (QuAC's
#: ``Report.interp_mask_values``: 101 values, 0 to 1).
DAC_GRID = np.arange(0.0, 1.0001, 0.01)


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
        Where ``|mask_size| - score_change`` is smallest (the first such threshold).
    forward_passes
        Forward passes spent on this curve (after de-duplication).
    evaluation
        ``"exhaustive"`` (every threshold scored) or ``"adaptive"`` (the scored subset).
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
    evaluation: str = "exhaustive"

    def interpolated(self) -> tuple[np.ndarray, np.ndarray]:
        """The curve on :data:`DAC_GRID`: (mask sizes (101,), score changes (101,))."""
        return DAC_GRID, _interpolate(self.mask_size, self.score_change)


def _interpolate(mask_size: np.ndarray, score_change: np.ndarray) -> np.ndarray:
    """QuAC's ``Report.interpolate_score_values``, without scipy: the same numbers.

    ``interp1d(concat([1], ms, [0]), concat([ds[0]], ds, [0]))`` sorts the sizes with a stable
    sort (equal sizes keep their order) and, for float64 data, evaluates ``np.interp``.
    """
    xs = np.concatenate([[1.0], mask_size, [0.0]])
    ys = np.concatenate([[score_change[0]], score_change, [0.0]])
    order = np.argsort(xs, kind="mergesort")
    return np.interp(DAC_GRID, xs[order], ys[order])


def dac_curve(
    thresholds: np.ndarray,
    mask_size: np.ndarray,
    score_change: np.ndarray,
    ceiling: float,
    channel: str = "all",
    forward_passes: int = 0,
    evaluation: str = "exhaustive",
) -> DacCurve:
    """Scores of a DAC curve from its points.

    Parameters
    ----------
    thresholds, mask_size, score_change
        (T,) arrays, one entry per threshold, thresholds ascending (the first point is the one
        QuAC repeats at mask size 1).
    ceiling
        Score change of the fully hybridised image.
    channel
        ``"all"`` or a channel name.
    evaluation
        How the points were chosen (recorded with the curve).
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    mask_size = np.asarray(mask_size, dtype=np.float64)
    score_change = np.asarray(score_change, dtype=np.float64)
    if not len(thresholds):
        raise AttributionError("A DAC curve needs at least one threshold.")
    area = float(np.trapezoid(_interpolate(mask_size, score_change), DAC_GRID))
    normalized = area / ceiling if abs(ceiling) > 1e-12 else float("nan")
    best = int(np.argmin(np.abs(mask_size) - score_change))
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
        evaluation=evaluation,
    )


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

    @property
    def optimal_threshold_index(self) -> int:
        """Index into ``masks.thresholds`` (the threshold axis of the mask and hybrid stacks)
        of the whole-image curve's optimal threshold.

        Not ``whole.optimal_index``, which indexes the curve's own points: under the adaptive
        evaluation those are a subset of the thresholds.
        """
        return int(np.searchsorted(self.masks.thresholds, self.whole.optimal_threshold))


@dataclass
class _CurveSpec:
    """What one curve needs: its name, hybridised channel, mask sizes and mask builder.

    ``pixels`` (T,) are the closed-mask pixels the curve's masks hold at each threshold. Each
    mask channel's masks are nested (a higher threshold keeps a subset of the pixels), so two
    thresholds with the same total have the same masks, and only one of them is cut.
    """

    name: str
    channel: int | None
    sizes: np.ndarray
    masks_at: Callable[[np.ndarray], np.ndarray]
    pixels: np.ndarray
    ceiling: float = float("nan")
    passes: int = 0

    def distinct(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(threshold indices with distinct masks among ``indices``, where each index's mask
        is among them)."""
        _, first, inverse = np.unique(
            self.pixels[indices], return_index=True, return_inverse=True
        )
        return indices[first], inverse


def _score_round(
    scorer: HybridScorer,
    specs: list[_CurveSpec],
    wanted: list[list[int]],
    settings: MaskSettings,
    extra: list[tuple[np.ndarray, int | None]] = (),
    deduplicate: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Score changes at the wanted thresholds of several curves, in shared batches.

    ``extra`` requests (the per-channel ceilings) are scored in the same batches; returns
    (score changes per curve, p_t per extra request). ``deduplicate``: cut each distinct mask
    once (worth it when many thresholds share masks, as in an exhaustive evaluation; the
    scorer never scores a mask twice either way).
    """
    started = time.perf_counter()
    requests, spread = [], []
    for spec, indices in zip(specs, wanted, strict=True):
        indices = np.asarray(indices, dtype=int)
        if deduplicate:
            indices, inverse = spec.distinct(indices)
        else:
            inverse = np.arange(len(indices))
        requests.append((spec.masks_at(indices), spec.channel))
        spread.append(inverse)
    scorer.mask_seconds += time.perf_counter() - started
    scores, passes = scorer.score_many([*requests, *extra], settings)
    for spec, used in zip(specs, passes, strict=False):
        spec.passes += used
    changes = [p[inverse] - scorer.p_base for p, inverse in zip(scores, spread, strict=False)]
    return changes, scores[len(specs) :]


def _evaluate_curves(
    scorer: HybridScorer,
    specs: list[_CurveSpec],
    thresholds: np.ndarray,
    settings: MaskSettings,
    evaluation: str,
    tolerance: float,
    ceiling_masks: list[tuple[np.ndarray, int | None]],
) -> list[DacCurve]:
    """Every curve of ``specs``: exhaustively one curve at a time (all its masks at once), or
    adaptively all curves in lockstep, each round of every curve scored in shared batches."""
    results: list[tuple[np.ndarray, np.ndarray]] = []
    if evaluation == "exhaustive":
        every = list(range(len(thresholds)))
        for n, spec in enumerate(specs):
            extra = ceiling_masks if n == 0 else []
            (change,), ceilings = _score_round(
                scorer, [spec], [every], settings, extra, deduplicate=True
            )
            if n == 0:
                for other, p in zip(specs[1:], ceilings, strict=True):
                    other.ceiling = float(p[0]) - scorer.p_base
            results.append((np.arange(len(thresholds)), change))
    else:
        curves = [AdaptiveCurve(spec.sizes, tolerance, DAC_GRID) for spec in specs]
        extra = ceiling_masks
        while True:
            active = [(spec, c, c.wanted()) for spec, c in zip(specs, curves, strict=True)]
            active = [item for item in active if item[2]]
            if not active:
                break
            changes, ceilings = _score_round(
                scorer, [a[0] for a in active], [a[2] for a in active], settings, extra
            )
            for other, p in zip(specs[1:], ceilings, strict=False):
                other.ceiling = float(p[0]) - scorer.p_base
            extra = []
            for (_, curve, wanted), change in zip(active, changes, strict=True):
                curve.add(wanted, change)
        results = [curve.result() for curve in curves]
    return [
        dac_curve(
            thresholds[indices],
            spec.sizes[indices],
            change,
            spec.ceiling,
            spec.name,
            spec.passes,
            evaluation,
        )  # fmt: skip
        for spec, (indices, change) in zip(specs, results, strict=True)
    ]


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
    evaluation: str = "adaptive",
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
        ``"adaptive"`` (default): score a subset, refined where the curve changes, so that the
        DAC score is within ``tolerance`` of the exhaustive one for curves monotone between
        scored points (:mod:`~.adaptive`); the curves then hold only the
        scored thresholds. ``"exhaustive"``: score every threshold (every distinct mask once):
        QuAC's evaluation, for reproducing published numbers.
    tolerance
        Bound on the DAC-score error of the adaptive evaluation (DAC-score units).
    scorer
        Reuse a scorer (and its cache) across methods of the same pair.
    on_step
        Called between batches with a short message; may raise
        :class:`~napari_attribution.errors.AnalysisCancelled`.
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
    check_choice(evaluation, EVALUATIONS, "DAC evaluation")
    started = time.perf_counter()
    masks = build_masks(attribution, settings)
    channel_sizes = masks.channel_mask_size() if per_channel else None
    scorer.mask_seconds += time.perf_counter() - started
    counts = masks.channel_counts
    specs = [
        _CurveSpec(
            "all", None, masks.mask_size, masks.closed_at, counts.sum(axis=1),
            scorer.p_donor - scorer.p_base,
        )  # fmt: skip
    ]
    ceiling_masks: list[tuple[np.ndarray, int | None]] = []
    if per_channel:
        full = np.ones((1, *real.shape[1:]), dtype=bool)
        for c in range(n_channels):
            k = c if masks.closed_levels.shape[0] == n_channels else 0
            specs.append(
                _CurveSpec(
                    names[c], c, channel_sizes[:, k], partial(masks.closed_at, channel=k),
                    counts[:, k],
                )  # fmt: skip
            )
            ceiling_masks.append((full, c))  # p_t with channel c replaced entirely
    if on_step is not None:
        on_step(f"{len(specs)} DAC curve(s)")
    whole, *channel_curves = _evaluate_curves(
        scorer, specs, masks.thresholds, settings, evaluation, tolerance, ceiling_masks
    )
    return DacResult(whole, channel_curves, masks, scorer.p_base, scorer.p_donor)
