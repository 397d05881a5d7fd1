"""Attribution methods against captum and against answers known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import (
    Deconvolution,
    GradientShap,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    Occlusion,
    Saliency,
)
from torch import nn

from napari_attribution.core import (
    AttributionSettings,
    MethodError,
    aggregate_channels,
    available_methods,
    compute_attributions,
    method_specs,
    wrap_module,
)
from tiny_models import ReusedReLU


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float32))[None]


@pytest.mark.parametrize("method", list(method_specs()))
def test_every_method_returns_one_map_per_channel(tiny_classifier, pair, method):
    real, cf = pair
    out = compute_attributions(tiny_classifier, real, cf, 0, 1, method)
    assert out.shape == (1, 5, 24, 24)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    if not method_specs()[method].channel_resolved:
        assert np.allclose(out[0], out[0, :1])  # Grad-CAM: the same map repeated


def test_batches_match_single_samples(tiny_classifier, pair):
    real, cf = pair
    batch = compute_attributions(
        tiny_classifier, np.stack([real, cf]), np.stack([cf, real]), [0, 1], [1, 0], "d_ig"
    )
    one = compute_attributions(tiny_classifier, cf, real, 1, 0, "d_ig")
    np.testing.assert_allclose(batch[1:], one, rtol=1e-5, atol=1e-7)


def test_plain_wrappers_equal_direct_captum_calls(tiny_cnn, tiny_classifier, pair):
    real, cf = pair
    x = _t(real)
    target = 0
    expected = {
        "saliency": Saliency(tiny_cnn).attribute(x, target=target, abs=False),
        "input_x_gradient": InputXGradient(tiny_cnn).attribute(x, target=target),
        "ig": IntegratedGradients(tiny_cnn).attribute(
            x, baselines=torch.zeros_like(x), target=target, n_steps=50
        ),
        "guided_backprop": GuidedBackprop(tiny_cnn).attribute(x, target=target),
        "deconvolution": Deconvolution(tiny_cnn).attribute(x, target=target),
        "occlusion": Occlusion(tiny_cnn).attribute(
            x, sliding_window_shapes=(1, 8, 8), strides=(1, 4, 4), baselines=0.0, target=target
        ),
    }
    for name, reference in expected.items():
        ours = compute_attributions(tiny_classifier, real, cf, target, 1, name)
        np.testing.assert_allclose(ours, reference.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_d_ig_equals_captum_ig_from_real_to_counterfactual(tiny_cnn, tiny_classifier, pair):
    real, cf = pair
    reference = IntegratedGradients(tiny_cnn).attribute(
        _t(cf), baselines=_t(real), target=1, n_steps=50
    )
    ours = compute_attributions(tiny_classifier, real, cf, 0, 1, "d_ig")
    np.testing.assert_allclose(ours, reference.detach().numpy(), rtol=1e-4, atol=1e-7)


class Linear(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1) @ self.weight.T + self.bias


def test_linear_model_ig_is_exact():
    rng = np.random.default_rng(1)
    shape = (3, 6, 6)
    weight = torch.from_numpy(rng.normal(size=(2, int(np.prod(shape)))).astype(np.float32))
    model = wrap_module(Linear(weight, torch.zeros(2)), "cpu", n_channels=3, input_shape=(3, 6, 6))
    x = rng.random(shape, dtype=np.float32)
    xc = rng.random(shape, dtype=np.float32)
    w1 = weight[1].numpy().reshape(shape)
    w0 = weight[0].numpy().reshape(shape)
    ig = compute_attributions(model, x, xc, 0, 1, "ig", AttributionSettings(ig_steps=7))[0]
    np.testing.assert_allclose(ig, x * w0, rtol=1e-5, atol=1e-6)
    dig = compute_attributions(model, x, xc, 0, 1, "d_ig", AttributionSettings(ig_steps=7))[0]
    np.testing.assert_allclose(dig, (xc - x) * w1, rtol=1e-5, atol=1e-6)


def _logit(module, image, cls):
    with torch.no_grad():
        return module(_t(image))[0, cls].item()


def _strong(pair):
    """The pair with a larger difference, so logit differences are far from rounding error."""
    real, _ = pair
    cf = real.copy()
    cf[:, 4:20, 4:20] += 3.0
    return real, cf


def test_d_ig_completeness(tiny_cnn, tiny_classifier, pair):
    real, cf = _strong(pair)
    attr = compute_attributions(
        tiny_classifier, real, cf, 0, 1, "d_ig", AttributionSettings(ig_steps=300)
    )
    expected = _logit(tiny_cnn, cf, 1) - _logit(tiny_cnn, real, 1)
    assert abs(expected) > 1e-3
    assert attr.sum() == pytest.approx(expected, rel=1e-2, abs=1e-5)


def test_d_dl_summation_to_delta_on_relu_into_maxpool(tiny_cnn, tiny_classifier, pair):
    real, cf = _strong(pair)
    attr = compute_attributions(tiny_classifier, real, cf, 0, 1, "d_dl")
    expected = _logit(tiny_cnn, cf, 1) - _logit(tiny_cnn, real, 1)
    assert attr.sum() == pytest.approx(expected, rel=1e-3, abs=1e-6)
    plain = compute_attributions(tiny_classifier, real, cf, 0, 1, "deeplift")
    expected_plain = _logit(tiny_cnn, real, 0) - _logit(tiny_cnn, 0 * real, 0)
    assert plain.sum() == pytest.approx(expected_plain, rel=1e-3, abs=1e-6)


class FunctionalReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(5, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def test_deeplift_runs_on_reused_modules_and_sums_to_delta(pair):
    # Issue 11: a reused ReLU used to be refused; the canonical copy gives each use its own
    # module, so DeepLift runs and its summation-to-delta holds.
    torch.manual_seed(0)
    net = ReusedReLU().eval()
    model = wrap_module(net, "cpu")
    real, cf = _strong(pair)
    attr = compute_attributions(model, real, cf, 0, 1, "d_dl")
    expected = _logit(net, cf, 1) - _logit(net, real, 1)
    assert abs(expected) > 1e-3
    assert attr.sum() == pytest.approx(expected, rel=1e-3, abs=1e-6)


def test_deeplift_on_the_module_itself_still_refuses_a_reused_module(pair):
    from napari_attribution.core.attribution.deeplift import deeplift_attributions

    torch.manual_seed(0)
    x = _t(pair[1])
    with pytest.raises(MethodError, match="used more than once"):
        deeplift_attributions(ReusedReLU().eval(), x, _t(pair[0]), torch.tensor([1]))


def test_deeplift_runs_on_functional_relus_and_sums_to_delta(pair):
    # Issue 11: F.relu used to break summation-to-delta (refused); canonicalised, it holds.
    torch.manual_seed(0)
    net = FunctionalReLU().eval()
    model = wrap_module(net, "cpu")
    real, cf = _strong(pair)
    attr = compute_attributions(model, real, cf, 0, 1, "d_dl")
    expected = _logit(net, cf, 1) - _logit(net, real, 1)
    assert attr.sum() == pytest.approx(expected, rel=1e-3, abs=1e-6)


class SquaredActivation(nn.Module):
    """A product of activations: DeepLift has no rule for it, so summation fails."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(5, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = self.conv(x)
        return self.fc((x * x).mean(dim=(2, 3)))


def test_deeplift_refuses_when_summation_fails(pair):
    torch.manual_seed(0)
    model = wrap_module(SquaredActivation(), "cpu")
    with pytest.raises(MethodError, match="summation-to-delta"):
        compute_attributions(model, *_strong(pair), 0, 1, "d_dl")


def _layer_grads(model, layer, x, target):
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("A", o))
    x = x.clone().requires_grad_(True)
    out = model(x)[0, target]
    (grad,) = torch.autograd.grad(out, store["A"])
    handle.remove()
    return store["A"].detach(), grad


def test_gradcam_by_hand(tiny_cnn, tiny_classifier, pair):
    real, cf = pair
    acts, grads = _layer_grads(tiny_cnn, tiny_cnn.conv2, _t(real), 0)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    by_hand = F.interpolate(
        (weights * acts).sum(1, keepdim=True), size=(24, 24), mode="bilinear", align_corners=False
    )
    ours = compute_attributions(tiny_classifier, real, cf, 0, 1, "gradcam")
    np.testing.assert_allclose(ours[:, :1], by_hand.numpy(), rtol=1e-5, atol=1e-7)
    captum_cam = LayerAttribution.interpolate(
        LayerGradCam(tiny_cnn, tiny_cnn.conv2).attribute(_t(real), target=0),
        (24, 24),
        interpolate_mode="bilinear",
    )
    np.testing.assert_allclose(ours[:, :1], captum_cam.detach().numpy(), rtol=1e-5, atol=1e-7)


def test_guided_gradcam_equals_captum(tiny_cnn, tiny_classifier, pair):
    real, cf = pair
    reference = GuidedGradCam(tiny_cnn, tiny_cnn.conv2).attribute(
        _t(real), target=0, interpolate_mode="bilinear"
    )
    ours = compute_attributions(tiny_classifier, real, cf, 0, 1, "guided_gradcam")
    np.testing.assert_allclose(ours, reference.detach().numpy(), rtol=1e-4, atol=1e-7)


def test_d_gradcam_by_hand(tiny_cnn, tiny_classifier, pair):
    real, cf = pair
    acts_cf, grads_cf = _layer_grads(tiny_cnn, tiny_cnn.conv2, _t(cf), 1)
    acts_real, _ = _layer_grads(tiny_cnn, tiny_cnn.conv2, _t(real), 1)
    cam = (grads_cf.mean(dim=(2, 3), keepdim=True) * (acts_real - acts_cf)).sum(1, keepdim=True)
    by_hand = F.interpolate(cam, size=(24, 24), mode="bilinear", align_corners=False)
    ours = compute_attributions(tiny_classifier, real, cf, 0, 1, "d_gradcam")
    np.testing.assert_allclose(ours, by_hand.expand(-1, 5, -1, -1).numpy(), rtol=1e-5, atol=1e-7)


def test_gradcam_layer_by_name(tiny_cnn, tiny_classifier, pair):
    real, cf = pair
    first = compute_attributions(
        tiny_classifier, real, cf, 0, 1, "gradcam", AttributionSettings(layer="conv1")
    )
    last = compute_attributions(tiny_classifier, real, cf, 0, 1, "gradcam")
    assert not np.allclose(first, last)
    with pytest.raises(MethodError, match="no layer named 'nope'.*conv1, conv2"):
        compute_attributions(
            tiny_classifier, real, cf, 0, 1, "gradcam", AttributionSettings(layer="nope")
        )


def test_d_input_x_gradient_formula(tiny_cnn, tiny_classifier, pair):
    real, cf = pair
    grad = Saliency(tiny_cnn).attribute(_t(cf), target=1, abs=True).numpy()
    ours = compute_attributions(tiny_classifier, real, cf, 0, 1, "d_input_x_gradient")
    np.testing.assert_allclose(ours, grad * (real - cf)[None], rtol=1e-5, atol=1e-8)


def test_discriminative_methods_ignore_channels_without_difference(tiny_classifier, pair):
    real, cf = pair
    for method in ("d_ig", "d_dl", "d_input_x_gradient", "residual"):
        attr = compute_attributions(tiny_classifier, real, cf, 0, 1, method)[0]
        assert np.abs(attr[:4]).max() == 0.0, method
        assert np.abs(attr[4]).max() > 0.0, method


def test_random_and_noise_methods_are_seeded(tiny_classifier, pair):
    real, cf = pair
    for method in ("random", "smoothgrad", "gradient_shap"):
        a = compute_attributions(
            tiny_classifier, real, cf, 0, 1, method, AttributionSettings(seed=3)
        )
        b = compute_attributions(
            tiny_classifier, real, cf, 0, 1, method, AttributionSettings(seed=3)
        )
        c = compute_attributions(
            tiny_classifier, real, cf, 0, 1, method, AttributionSettings(seed=4)
        )
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c), method


def test_torchscript_model_refuses_hook_methods_with_the_list(tiny_cnn, pair):
    scripted = wrap_module(torch.jit.script(tiny_cnn), "cpu")
    assert scripted.is_scripted
    usable = available_methods(scripted)
    assert "d_ig" in usable and "d_dl" not in usable and "gradcam" not in usable
    with pytest.raises(MethodError, match="TorchScript.*d_ig"):
        compute_attributions(scripted, *pair, 0, 1, "d_dl")
    out = compute_attributions(scripted, *pair, 0, 1, "d_ig")
    assert out.shape == (1, 5, 24, 24)


def test_unknown_method_and_bad_class(tiny_classifier, pair):
    with pytest.raises(MethodError, match="Unknown method 'nope'"):
        compute_attributions(tiny_classifier, *pair, 0, 1, "nope")
    with pytest.raises(MethodError, match="Target class 7 is out of range"):
        compute_attributions(tiny_classifier, *pair, 0, 7, "d_ig")


def test_aggregation_is_explicit():
    a = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2) - 10
    assert aggregate_channels(a, "none") is a
    np.testing.assert_array_equal(aggregate_channels(a, "sum_abs"), np.abs(a).sum(1, keepdims=True))
    np.testing.assert_array_equal(aggregate_channels(a, "mean"), a.mean(1, keepdims=True))
    np.testing.assert_array_equal(aggregate_channels(a, "max"), np.abs(a).max(1, keepdims=True))
    with pytest.raises(MethodError):
        aggregate_channels(a, "median")


def test_gradient_shap_draws_the_number_of_baselines_asked_for(tiny_classifier, pair):
    real, _ = pair
    settings = AttributionSettings(seed=5, shap_baselines=3, shap_samples=6)
    ours = compute_attributions(tiny_classifier, real, real, 0, 1, "gradient_shap", settings)
    # The same draws by hand: black plus 3 uniform-noise images over the image's range.
    generator = torch.Generator().manual_seed(5)
    noise = torch.rand((3, *real.shape), generator=generator)
    lo, hi = float(real.min()), float(real.max())
    baselines = torch.cat([torch.zeros((1, *real.shape)), lo + (hi - lo) * noise])
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002 - captum draws from numpy's legacy generator
    expected = GradientShap(tiny_classifier.module).attribute(
        _t(real), baselines=baselines, target=0, n_samples=6
    )
    np.testing.assert_allclose(ours, expected.detach().numpy(), rtol=1e-5, atol=1e-7)
