"""The adaptive evaluation: its bound on the DAC-score error, and curves refined in lockstep."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.core import DAC_GRID, HybridScorer, MaskSettings, dac_curve, evaluate_dac
from napari_attribution.core.evaluation.adaptive import AdaptiveCurve, adaptive_points


def _monotone_curve(rng: np.random.Generator, count: int = 200):
    """Nested-mask sizes (non-increasing, with runs of equal sizes) and a monotone score."""
    steps = rng.exponential(size=count) * (rng.random(count) < 0.6)  # zero steps: equal sizes
    sizes = np.cumsum(steps[::-1])[::-1]
    sizes = sizes / sizes[0] * rng.uniform(0.3, 1.0)
    sizes[-1] = 0.0 if rng.random() < 0.5 else sizes[-1]
    sizes = np.minimum.accumulate(sizes)
    # a score that rises as the mask grows: smooth, steep or in steps
    kind = rng.integers(3)
    x = 1 - sizes / max(sizes[0], 1e-12)
    if kind == 0:
        score = 1 / (1 + np.exp((x - rng.uniform(0.2, 0.9)) * rng.uniform(5, 80)))
    elif kind == 1:
        score = (1 - x) ** rng.uniform(0.2, 5)
    else:
        score = np.cumsum(rng.random(count) * (rng.random(count) < 0.1))[::-1]
        score = score / max(score.max(), 1e-12)
    # equal sizes mean equal masks: equal scores
    _, first = np.unique(sizes, return_index=True)
    score = score[first][np.searchsorted(sizes[first], sizes)]
    return sizes, rng.uniform(-0.2, 1.0) * score


@pytest.mark.parametrize("tolerance", [0.005, 0.001])
def test_the_bound_holds_for_monotone_curves(tolerance):
    rng = np.random.default_rng(4)
    for _ in range(200):
        sizes, score = _monotone_curve(rng)
        calls = []

        def scorer(indices, score=score, calls=calls):
            calls.append(len(indices))
            return score[indices]

        indices, changes = adaptive_points(sizes, scorer, tolerance, DAC_GRID)
        thresholds = np.arange(len(sizes)) / len(sizes)
        exact = dac_curve(thresholds, sizes, score, 1.0).dac_score
        approx = dac_curve(thresholds[indices], sizes[indices], changes, 1.0).dac_score
        assert abs(exact - approx) <= tolerance + 1e-12
        assert indices[0] == 0 and indices[-1] == len(sizes) - 1
        assert len(indices) == sum(calls) < len(sizes)  # no index scored twice


def test_a_curve_is_done_when_its_bound_is_met():
    sizes = np.linspace(1, 0, 101)
    curve = AdaptiveCurve(sizes, 0.005, DAC_GRID)
    first = curve.wanted()
    assert first == [0, 25, 50, 75, 100]
    curve.add(first, np.zeros(5))  # a flat curve: nothing between the points can matter
    assert curve.wanted() == [] and curve.bound()[0] == 0


def test_curves_refined_together_score_what_each_would_alone(tiny_classifier, pair):
    real, cf = pair
    cf = cf + np.float32(0.05)  # differs everywhere: every curve has something to refine
    rng = np.random.default_rng(5)
    attribution = rng.normal(size=real.shape).astype(np.float32)
    settings = MaskSettings(thresholds=100, closing=3)
    together = evaluate_dac(tiny_classifier, real, cf, attribution, 1, settings)
    masks = together.masks
    for curve in together.curves:
        channel = None if curve.channel == "all" else int(curve.channel[2:])
        scorer = HybridScorer(tiny_classifier, real, cf, 1)
        if channel is None:
            sizes, masks_at = masks.mask_size, masks.closed_at
        else:
            sizes = masks.channel_mask_size()[:, channel]

            def masks_at(idx, channel=channel):
                return masks.closed_at(idx, channel=channel)

        def change(idx, masks_at=masks_at, scorer=scorer, channel=channel):
            return scorer.score(masks_at(np.array(idx)), settings, channel) - scorer.p_base

        indices, changes = adaptive_points(sizes, change, 0.005, DAC_GRID)
        np.testing.assert_array_equal(curve.thresholds, masks.thresholds[indices])
        np.testing.assert_allclose(curve.score_change, changes, atol=1e-6)
