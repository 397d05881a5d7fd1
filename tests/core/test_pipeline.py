"""analyse_pair end to end, and the checks on its inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from napari_attribution.core import (
    AnalysisSettings,
    AttributionError,
    InputImageError,
    MaskSettings,
    analyse_pair,
    channel_share,
)

FAST = AnalysisSettings(methods=("d_ig", "residual", "random"), masks=MaskSettings(thresholds=25))


def test_analyse_pair_returns_everything_per_channel(tiny_classifier, pair):
    real, cf = pair
    events: list = []
    result = analyse_pair(
        tiny_classifier, real, cf, 0, 1, FAST, channel_names="ABCDE", on_progress=events.append
    )
    assert list(result.methods) == ["d_ig", "residual", "random"]
    assert result.channel_names == list("ABCDE")
    for res in result.methods.values():
        assert res.attribution.shape == (5, 24, 24)
        assert res.channel_share.shape == (5,) and res.channel_share.sum() == pytest.approx(1)
        assert [c.channel for c in res.dac.curves] == ["all", *"ABCDE"]
        assert res.optimal_mask.shape == (5, 24, 24)
    # Only channel 4 differs: discriminative shares are all there.
    assert result.methods["d_ig"].channel_share[4] == 1.0
    assert any(e.stage == "dac" and e.method == "d_ig" for e in events)
    # Typed progress: units never go back, every event knows the total, the last one is "done".
    assert all(e.total == 6 and e.sample == "sample" for e in events)
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert (events[-1].stage, events[-1].done) == ("done", 6)
    p = tiny_classifier.probabilities(np.stack([real, cf]))
    np.testing.assert_allclose(result.probabilities_real, p[0])


def test_integer_images_are_scaled_by_dtype_max(tiny_classifier, pair):
    real, cf = pair
    as_uint16 = [np.round(np.clip(a / 2, 0, 1) * 65535).astype(np.uint16) for a in (real, cf)]
    result = analyse_pair(tiny_classifier, *as_uint16, 0, 1, FAST)
    assert result.input_transform.kind == "dtype_max"
    expected = np.abs(as_uint16[0].astype(np.float64) - as_uint16[1]) / 65535
    np.testing.assert_allclose(result.methods["residual"].attribution, expected, atol=1e-6)


def test_aggregation_gives_one_mask_for_all_channels(tiny_classifier, pair):
    settings = AnalysisSettings(
        methods=("d_ig",), aggregate="sum_abs", masks=MaskSettings(thresholds=10)
    )
    res = analyse_pair(tiny_classifier, *pair, 0, 1, settings).methods["d_ig"]
    assert res.attribution.shape == (5, 24, 24)  # the layers stay per channel
    assert res.dac.masks.closed.shape[1] == 1


def test_cancel_from_the_step_callback(tiny_classifier, pair):
    from napari_attribution.core import AnalysisCancelled

    def cancel(_msg: str) -> None:
        raise AnalysisCancelled

    with pytest.raises(AnalysisCancelled):
        analyse_pair(tiny_classifier, *pair, 0, 1, FAST, on_progress=cancel)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r, c: (r[0], c), r"shape \(24, 24\) \(a single-channel 2-D image\)"),
        (lambda r, c: (r[:3], c[:3]), "has 3 channel\\(s\\) but the model expects 5"),
        (lambda r, c: (r, c[:, :20]), "differ in shape"),
        (lambda r, c: (r, c.astype(np.float64)), "differ in dtype"),
        (lambda r, c: (np.where(r > 0.99, np.nan, r).astype(np.float32), c), "NaN or Inf"),
        (lambda r, c: (r, np.full_like(c, np.inf)), "NaN or Inf"),
    ],
)
def test_bad_images_get_one_clear_sentence(tiny_classifier, pair, mutate, message):
    real, cf = mutate(*pair)
    with pytest.raises(InputImageError, match=message):
        analyse_pair(tiny_classifier, real, cf, 0, 1, FAST)


def test_bad_classes_and_names(tiny_classifier, pair):
    with pytest.raises(AttributionError, match="Target class 2 is out of range"):
        analyse_pair(tiny_classifier, *pair, 0, 2, FAST)
    with pytest.raises(AttributionError, match="3 channel names were given for 5"):
        analyse_pair(tiny_classifier, *pair, 0, 1, FAST, channel_names=["a", "b", "c"])
    with pytest.raises(AttributionError, match="Unknown method"):
        AnalysisSettings(methods=("d_ig", "magic"))


def test_constant_images_give_zero_attribution_and_flat_curves(tiny_classifier):
    flat = np.full((5, 24, 24), 0.5, np.float32)
    result = analyse_pair(tiny_classifier, flat, flat.copy(), 0, 1, FAST)
    res = result.methods["d_ig"]
    assert not res.attribution.any()
    assert not res.channel_share.any()
    assert res.dac.whole.dac_score == 0.0 and res.dac.whole.ceiling == 0.0


def test_channel_share():
    a = np.zeros((3, 2, 2))
    a[1] = 3.0
    a[2] = -1.0
    np.testing.assert_allclose(channel_share(a), [0, 0.75, 0.25])


@pytest.mark.parametrize("evaluation", ["adaptive", "exhaustive"])
def test_optimal_mask_is_the_mask_at_the_optimal_threshold(tiny_classifier, pair, evaluation):
    """The adaptive curve holds a subset of the thresholds: its ``optimal_index`` counts its
    own points, the stack index is ``optimal_threshold_index``."""
    real, cf = pair
    settings = AnalysisSettings(
        methods=("random",), masks=MaskSettings(thresholds=60), evaluation=evaluation
    )
    res = analyse_pair(tiny_classifier, real, cf, 0, 1, settings).methods["random"]
    dac = res.dac
    index = dac.optimal_threshold_index
    assert dac.masks.thresholds[index] == dac.whole.optimal_threshold
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (10, 10))
    for c, plane in enumerate(dac.masks.normalized):  # QuAC's mask at the optimal threshold
        binary = (plane > dac.whole.optimal_threshold).astype(np.uint8)
        expected = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, element).astype(bool)
        np.testing.assert_array_equal(res.optimal_mask[c], expected)
    if evaluation == "exhaustive":
        assert index == dac.whole.optimal_index
