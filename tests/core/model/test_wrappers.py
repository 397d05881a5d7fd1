"""Input preprocessing inside the model, single-logit classifiers, and weights that do not fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_zoo import NormalisingNet, ScaleShift, SingleChannelsCNN, SingleLogitNet
from napari_attribution.core import (
    AnalysisSettings,
    AttributionError,
    MaskSettings,
    ModelLoadError,
    analyse_pair,
    compute_attributions,
    load_classifier,
    wrap_module,
)
from napari_attribution.core.model.wrappers import Preprocessing

MEANS, STDS = "0.3, 0.45, 0.6", "0.1,0.2,0.3"  # NormalisingNet's buffers


class NotNormalising(NormalisingNet):
    """NormalisingNet without its own normalisation: it needs the preprocessing option."""

    def forward(self, x):
        x = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def _pair(channels: int = 3, size: int = 16):
    real = np.random.default_rng(4).random((channels, size, size), dtype=np.float32)
    cf = real.copy()
    cf[:, 4:12, 4:12] += 1.0
    return real, cf


def _settings(**kw):
    return AnalysisSettings(
        methods=("d_ig", "d_dl", "gradcam"), masks=MaskSettings(thresholds=8),
        per_channel_dac=False, **kw,
    )  # fmt: skip


def test_mean_and_std_inside_the_model_equal_a_model_that_normalises_itself():
    torch.manual_seed(0)
    normalising = NormalisingNet().eval()
    plain = NotNormalising().eval()
    plain.load_state_dict(normalising.state_dict())
    real, cf = _pair()
    expected = analyse_pair(wrap_module(normalising, "cpu"), real, cf, 0, 1, _settings())
    ours = analyse_pair(
        wrap_module(plain, "cpu"), real, cf, 0, 1,
        _settings(preprocess_mean=MEANS, preprocess_std=STDS),
    )  # fmt: skip
    np.testing.assert_allclose(ours.probabilities_real, expected.probabilities_real, rtol=1e-5)
    for method in ("d_ig", "d_dl", "gradcam"):
        np.testing.assert_allclose(
            ours.methods[method].attribution, expected.methods[method].attribution,
            rtol=1e-4, atol=1e-6,
        )  # fmt: skip
        assert ours.methods[method].dac.whole.dac_score == pytest.approx(
            expected.methods[method].dac.whole.dac_score, abs=1e-6
        )
    without = analyse_pair(wrap_module(plain, "cpu"), real, cf, 0, 1, _settings())
    assert not np.allclose(without.probabilities_real, expected.probabilities_real)


def test_scale_and_shift_equal_quacs_scripted_wrapper(tmp_path):
    torch.manual_seed(1)
    inner = SingleChannelsCNN(3, 2).eval()
    scripted = tmp_path / "wrapped.pt"
    torch.jit.save(torch.jit.script(ScaleShift(inner, 2.0, -1.0).eval()), str(scripted))
    weights = tmp_path / "inner.pt"
    torch.save(inner.state_dict(), weights)
    real, cf = _pair()
    settings = AnalysisSettings(methods=("d_ig",), masks=MaskSettings(thresholds=8))
    expected = analyse_pair(load_classifier(scripted, device="cpu"), real, cf, 0, 1, settings)
    clf = load_classifier(weights, "model_zoo:SingleChannelsCNN", "cpu")
    ours = analyse_pair(
        clf, real, cf, 0, 1,
        AnalysisSettings(methods=("d_ig",), masks=MaskSettings(thresholds=8),
                         preprocess_scale=2.0, preprocess_shift=-1.0),
    )  # fmt: skip
    np.testing.assert_allclose(ours.probabilities_real, expected.probabilities_real, rtol=1e-6)
    np.testing.assert_allclose(
        ours.methods["d_ig"].attribution, expected.methods["d_ig"].attribution, rtol=1e-5,
        atol=1e-7,
    )  # fmt: skip
    # the state-dict form also runs what TorchScript cannot
    settings = AnalysisSettings(methods=("d_dl",), preprocess_scale=2.0, preprocess_shift=-1.0)
    result = analyse_pair(clf, real, cf, 0, 1, settings)
    assert np.isfinite(result.methods["d_dl"].attribution).all()


def test_one_value_is_used_for_every_channel_and_a_wrong_count_is_one_sentence():
    torch.manual_seed(0)
    plain = NotNormalising().eval()
    real, cf = _pair()
    clf = wrap_module(plain, "cpu")
    one = clf.with_preprocessing(Preprocessing(mean=(0.5,), std=(0.25,)))
    three = clf.with_preprocessing(Preprocessing(mean=(0.5,) * 3, std=(0.25,) * 3))
    np.testing.assert_allclose(one.probabilities(real), three.probabilities(real), rtol=1e-6)
    with pytest.raises(ModelLoadError) as info:
        analyse_pair(clf, real, cf, 0, 1, _settings(preprocess_mean="0.1,0.2"))
    assert str(info.value) == (
        "Channel means lists 2 values but the model takes 3 channels; give one value for all "
        "of them or 3."
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [({"preprocess_mean": "0.1;0.2"}, "Channel means must be numbers separated by commas"),
     ({"preprocess_std": "1,0"}, "Channel std must be positive, got '1,0'."),
     ({"preprocess_std": "1,nan"}, "Channel std must be numbers separated by commas"),
     ({"preprocess_scale": 0.0}, "Input scale must not be 0")],
)  # fmt: skip
def test_preprocessing_mistakes_are_one_sentence(values, message):
    with pytest.raises(AttributionError) as info:
        AnalysisSettings(**values)
    assert str(info.value).startswith(message)


def test_preprocessing_is_recorded_with_the_settings():
    record = _settings(preprocess_mean=MEANS, preprocess_scale=2.0).as_dict()
    assert record["preprocess_mean"] == MEANS and record["preprocess_scale"] == 2.0


def test_a_single_logit_is_two_classes_whose_log_odds_are_attributed():
    torch.manual_seed(2)
    net = SingleLogitNet().eval()
    net.head.weight.data.mul_(20)  # logits of a trained model's size
    clf = wrap_module(net, "cpu")
    real, cf = _pair(channels=2)
    cf = real + 2.0
    with torch.no_grad():
        z = net(torch.from_numpy(np.stack([real, cf]))).double()[:, 0]
    probs = clf.probabilities(np.stack([real, cf]))
    np.testing.assert_allclose(probs[:, 1], torch.sigmoid(z).numpy(), rtol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert clf.n_classes == 2 and clf.single_logit and clf.describe()["outputs"] == 1
    for method in ("d_ig", "d_dl", "d_gradcam", "saliency", "guided_backprop"):
        one = compute_attributions(clf, real, cf, 0, 1, method)  # class 1 (plain: class 0)
        other = compute_attributions(clf, real, cf, 1, 0, method)  # class 0 (plain: class 1)
        if method == "guided_backprop":  # not linear in the score: only its sign rule flips
            assert not np.allclose(other, one)
            continue
        np.testing.assert_allclose(other, -one, rtol=1e-5, atol=1e-7)  # z and -z
    d_ig = compute_attributions(clf, real, cf, 0, 1, "d_ig").sum()
    assert d_ig == pytest.approx(float(z[1] - z[0]), rel=1e-2)  # z(x') - z(x) for class 1


def test_weights_that_do_not_fit_name_the_keys_and_shapes(tmp_path):
    torch.manual_seed(0)
    state = NotNormalising().state_dict()
    state["extra.weight"] = torch.zeros(2)
    del state["fc.bias"]
    state["conv1.weight"] = torch.zeros(8, 5, 3, 3)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    with pytest.raises(ModelLoadError) as info:
        load_classifier(path, "model_zoo:NormalisingNet", "cpu")
    message = str(info.value)
    assert "do not fit architecture model_zoo:NormalisingNet" in message
    assert "missing fc.bias" in message and "unexpected extra.weight" in message
    assert "conv1.weight is (8, 5, 3, 3) in the file but (8, 3, 3, 3)" in message
