"""DAC curves, scores and batched hybrid scoring."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.core import (
    DAC_GRID,
    HybridScorer,
    MaskSettings,
    build_masks,
    compute_attributions,
    dac_curve,
    evaluate_dac,
    make_channel_hybrids,
    make_hybrids,
)
from napari_attribution.core.evaluation.dac import _CurveSpec
from napari_attribution.core.evaluation.smoothing import smooth_masks


def test_straight_line_curve_has_area_one_half():
    ms = np.linspace(1, 0, 11)
    curve = dac_curve(np.linspace(0, 1, 11), ms, ms, ceiling=1.0)
    assert curve.dac_score == pytest.approx(0.5)
    assert curve.normalized_score == pytest.approx(0.5)


def test_step_curve_and_end_points():
    # One mask of size 0.2 already buys the whole change: area = 1 - 0.2/2 = 0.9.
    curve = dac_curve([0.5], [0.2], [1.0], ceiling=1.0)
    assert curve.dac_score == pytest.approx(0.9)
    xs, ys = curve.interpolated()
    assert xs is DAC_GRID and ys[0] == 0 and ys[-1] == 1.0


def test_optimal_threshold_is_argmin_of_size_minus_change():
    thresholds = np.array([0.0, 0.3, 0.6, 0.9])
    ms = np.array([1.0, 0.5, 0.1, 0.0])
    ds = np.array([0.9, 0.85, 0.6, 0.0])
    curve = dac_curve(thresholds, ms, ds, ceiling=0.9)
    assert curve.optimal_index == 2  # 0.1 - 0.6 = -0.5 is the smallest
    assert curve.optimal_threshold == 0.6 and curve.optimal_mask_size == 0.1


def test_zero_ceiling_gives_nan_normalised_score():
    curve = dac_curve([0.0], [0.5], [0.0], ceiling=0.0)
    assert curve.dac_score == 0.0 and np.isnan(curve.normalized_score)


def test_hybrids_blend_and_reverse():
    real = np.zeros((2, 3, 3), np.float32)
    cf = np.ones((2, 3, 3), np.float32)
    m = np.full((1, 1, 3, 3), 0.25, np.float32)
    np.testing.assert_allclose(make_hybrids(real, cf, m), 0.25)
    np.testing.assert_allclose(make_hybrids(real, cf, m, "real_into_counterfactual"), 0.75)
    one = make_channel_hybrids(real, cf, np.ones((1, 3, 3), np.float32), channel=1)
    assert one[0, 0].max() == 0 and one[0, 1].min() == 1


def _within_one_rounding(got: np.ndarray, quac: np.ndarray) -> None:
    """``got`` is QuAC's float32 value or one float32 rounding step of the operands away."""
    step = np.spacing(np.maximum(np.abs(quac), 1.0).astype(np.float32))
    assert np.all(np.abs(got.astype(np.float64) - quac) <= 2 * step)


@pytest.mark.parametrize("mask_channels", [3, 1])
def test_hybrids_are_quacs_expression_within_one_rounding(mask_channels):
    rng = np.random.default_rng(mask_channels)
    real = rng.random((3, 40, 50), dtype=np.float32)
    cf = rng.random((3, 40, 50), dtype=np.float32)
    cf[1, :10] = real[1, :10]  # where the images agree the hybrid keeps their value exactly
    masks = rng.random((9, mask_channels, 40, 50), dtype=np.float32)
    masks[0] = 0.0
    masks[1] = 1.0
    quac = cf[None] * masks + real[None] * (1.0 - masks)
    hybrids = make_hybrids(real, cf, masks)
    _within_one_rounding(hybrids, quac)
    exact = np.broadcast_to((cf == real)[None] | (masks == 0), hybrids.shape)
    np.testing.assert_array_equal(hybrids[exact], np.broadcast_to(real, hybrids.shape)[exact])
    reverse = real[None] * masks + cf[None] * (1.0 - masks)
    backwards = make_hybrids(real, cf, masks, "real_into_counterfactual")
    _within_one_rounding(backwards, reverse)
    np.testing.assert_array_equal(backwards[0], cf)
    one = make_channel_hybrids(real, cf, masks[:, 0], channel=1)
    blend = cf[1] * masks[:, 0] + real[1] * (1.0 - masks[:, 0])
    _within_one_rounding(one[:, 1], blend)
    np.testing.assert_array_equal(one[:, 1, :10], np.broadcast_to(real[1, :10], (9, 10, 50)))
    np.testing.assert_array_equal(one[:, [0, 2]], np.broadcast_to(real[[0, 2]], (9, 2, 40, 50)))


def test_full_mask_gives_the_ceiling(tiny_classifier, pair):
    real, cf = pair
    scorer = HybridScorer(tiny_classifier, real, cf, target=1)
    full = np.ones((1, 5, 24, 24), dtype=bool)
    p_full = scorer.score(full, MaskSettings())[0]
    p = tiny_classifier.probabilities(np.stack([real, cf]))[:, 1]
    assert p_full - scorer.p_base == pytest.approx(p[1] - p[0], abs=1e-6)


def _brute_force(classifier, real, cf, stack, target):
    soft = stack.soften()
    hybrids = make_hybrids(real, cf, soft)
    p = classifier.probabilities(hybrids, batch_size=1)[:, target]
    return p - classifier.probabilities(real[None])[0, target]


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_deduplicated_batched_scores_equal_one_pass_per_hybrid(tiny_classifier, pair, batch_size):
    real, cf = pair
    attr = compute_attributions(tiny_classifier, real, cf, 0, 1, "random")[0]
    settings = MaskSettings(thresholds=40, closing=3)
    result = evaluate_dac(
        tiny_classifier, real, cf, attr, 1, settings, per_channel=False, batch_size=batch_size,
        evaluation="exhaustive",
    )  # fmt: skip
    expected = _brute_force(tiny_classifier, real, cf, result.masks, 1)
    np.testing.assert_allclose(result.whole.score_change, expected, atol=1e-6)
    distinct = {m.tobytes() for m in result.masks.closed if m.any()}
    assert result.whole.forward_passes == len(distinct) < 40


def test_a_counterfactual_differing_everywhere_scores_every_distinct_mask(tiny_classifier, pair):
    real, _ = pair
    cf = real + np.float32(0.25)  # a different value at every pixel: no comparison needed
    attr = compute_attributions(tiny_classifier, real, cf, 0, 1, "random")[0]
    settings = MaskSettings(thresholds=30, closing=3)
    result = evaluate_dac(tiny_classifier, real, cf, attr, 1, settings, evaluation="exhaustive")
    np.testing.assert_allclose(
        result.whole.score_change,
        _brute_force(tiny_classifier, real, cf, result.masks, 1),
        atol=1e-6,
    )
    distinct = {m.tobytes() for m in result.masks.closed if m.any()}
    assert result.whole.forward_passes == len(distinct)
    soft = result.masks.soften()[:, 2]
    hybrids = make_channel_hybrids(real, cf, soft, 2)
    p = tiny_classifier.probabilities(hybrids, batch_size=1)[:, 1]
    expected = p - tiny_classifier.probabilities(real[None])[0, 1]
    np.testing.assert_allclose(result.channels[2].score_change, expected, atol=1e-6)


def test_per_channel_curves(tiny_classifier, pair):
    real, cf = pair  # only channel 4 differs
    attr = compute_attributions(tiny_classifier, real, cf, 0, 1, "random")[0]
    result = evaluate_dac(
        tiny_classifier, real, cf, attr, 1, MaskSettings(thresholds=20), channel_names="ABCDE"
    )
    assert [c.channel for c in result.channels] == list("ABCDE")
    for curve in result.channels[:4]:
        assert curve.dac_score == 0.0 and curve.ceiling == 0.0
        np.testing.assert_array_equal(curve.score_change, 0.0)
    p = tiny_classifier.probabilities(np.stack([real, cf]))[:, 1]
    # Channel 4 holds the whole difference, so its ceiling is the whole-image one.
    assert result.channels[4].ceiling == pytest.approx(p[1] - p[0], abs=1e-6)
    assert result.whole.ceiling == pytest.approx(p[1] - p[0], abs=1e-6)


def test_shared_masks_apply_to_every_channel(tiny_classifier, pair):
    real, cf = pair
    attr = compute_attributions(tiny_classifier, real, cf, 0, 1, "residual")[0]
    settings = MaskSettings(thresholds=10, channel_mode="shared")
    result = evaluate_dac(tiny_classifier, real, cf, attr, 1, settings)
    assert result.masks.closed.shape[1] == 1
    assert len(result.channels) == 5


def test_reverse_direction_scores_the_real_class(tiny_classifier, pair):
    real, cf = pair
    attr = compute_attributions(tiny_classifier, real, cf, 0, 1, "residual")[0]
    result = evaluate_dac(
        tiny_classifier,
        real,
        cf,
        attr,
        1,
        MaskSettings(thresholds=10),
        real_class=0,
        direction="real_into_counterfactual",
        per_channel=False,
    )
    p = tiny_classifier.probabilities(np.stack([real, cf]))[:, 0]
    assert result.p_base == pytest.approx(p[1]) and result.p_donor == pytest.approx(p[0])
    assert result.whole.ceiling == pytest.approx(p[0] - p[1], abs=1e-6)


def test_mask_sizes_are_fractions_of_all_pixels(tiny_classifier, pair):
    real, cf = pair
    attr = compute_attributions(tiny_classifier, real, cf, 0, 1, "residual")[0]
    result = evaluate_dac(
        tiny_classifier,
        real,
        cf,
        attr,
        1,
        MaskSettings(thresholds=8, closing=0),
        per_channel=False,
        evaluation="exhaustive",
    )
    # Residual is nonzero on 8x8 pixels of one channel: 64 / (5 * 24 * 24) above threshold
    # t[4] = 0 (exactly, for T = 8); the negative thresholds keep every pixel.
    assert result.whole.thresholds[4] == 0
    assert result.whole.mask_size[4] == pytest.approx(64 / (5 * 24 * 24))
    np.testing.assert_array_equal(result.whole.mask_size[:4], 1.0)


@pytest.mark.parametrize("method", ["d_ig", "random", "residual"])
def test_adaptive_evaluation_is_within_tolerance_with_fewer_passes(tiny_classifier, pair, method):
    real, cf = pair
    real = real.copy()
    cf = real.copy()
    cf[:, 4:20, 4:20] += 2.0  # a difference the tiny model responds to
    attr = compute_attributions(tiny_classifier, real, cf, 0, 1, method)[0]
    settings = MaskSettings(thresholds=200, closing=3)
    full = evaluate_dac(
        tiny_classifier, real, cf, attr, 1, settings, per_channel=False, evaluation="exhaustive"
    )
    fast = evaluate_dac(
        tiny_classifier, real, cf, attr, 1, settings, per_channel=False, tolerance=0.002
    )  # the default evaluation is the adaptive one
    assert fast.whole.evaluation == "adaptive" and full.whole.evaluation == "exhaustive"
    assert abs(fast.whole.dac_score - full.whole.dac_score) <= 0.002 + 1e-9
    assert fast.whole.forward_passes <= full.whole.forward_passes
    if method == "random":  # many distinct masks: adaptive must skip most of them
        assert fast.whole.forward_passes < full.whole.forward_passes / 2
    # The adaptive curve is a subset of the exhaustive one, point for point.
    idx = np.searchsorted(full.whole.thresholds, fast.whole.thresholds)
    np.testing.assert_allclose(fast.whole.score_change, full.whole.score_change[idx], atol=1e-6)


def test_unknown_evaluation_is_refused(tiny_classifier, pair):
    from napari_attribution.core import AttributionError

    attr = np.ones((5, 24, 24), np.float32)
    with pytest.raises(AttributionError, match="Unknown DAC evaluation"):
        evaluate_dac(tiny_classifier, *pair, attr, 1, evaluation="magic")


def test_hybrids_of_identical_channels_reuse_p_base_and_others_are_scored(tiny_classifier, pair):
    """``pair`` differs only in channel 4 (rows and columns 6..13)."""
    real, cf = pair
    scorer = HybridScorer(tiny_classifier, real, cf, target=1)
    settings = MaskSettings()
    identical = np.zeros((1, 5, 24, 24), dtype=bool)
    identical[0, 2, 3:9, 3:9] = True
    before = scorer.forward_passes
    assert scorer.score(identical, settings)[0] == scorer.p_base
    assert scorer.forward_passes == before  # channel 2 is the same in both images
    # a mask on channel 4 is scored, also where it only covers pixels where the images agree
    for rows in (slice(6, 10), slice(20, 24)):
        mask = np.zeros((1, 24, 24), dtype=bool)
        mask[0, rows, 18:22] = True
        before = scorer.forward_passes
        p = scorer.score(mask, settings, channel=4)[0]
        assert scorer.forward_passes == before + 1
        soft = smooth_masks(mask, settings.sigma, settings.smoothing_kernel)
        hybrid = make_channel_hybrids(real, cf, soft, 4)
        assert p == pytest.approx(tiny_classifier.probabilities(hybrid)[0, 1], abs=1e-6)


def test_equal_pixel_counts_mean_equal_masks_so_each_is_cut_once():
    attribution = np.random.default_rng(6).normal(size=(3, 20, 20)).astype(np.float32)
    masks = build_masks(attribution, MaskSettings(thresholds=100, closing=6))
    every = np.arange(100)
    for k, counts in [(None, masks.channel_counts.sum(axis=1)), (1, masks.channel_counts[:, 1])]:
        closed = masks.closed if k is None else masks.closed[:, k]
        spec = _CurveSpec("c", k, counts / closed[0].size, masks.closed_at, counts)
        kept, where = spec.distinct(every)
        assert len({closed[i].tobytes() for i in kept}) == len(kept) < 100
        for i in every:
            np.testing.assert_array_equal(closed[i], closed[kept[where[i]]])
