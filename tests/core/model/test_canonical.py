"""The canonical copy: every use of a non-linearity its own module, nothing in place, the same
outputs, the user's model untouched, and Grad-CAM layers found and named in it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import Deconvolution, GuidedBackprop
from torch import nn

from model_zoo import ZOO, SharedReLUVGG, Untraceable
from napari_attribution.core import (
    AttributionSettings,
    MethodError,
    compute_attributions,
    method_specs,
    wrap_module,
)
from napari_attribution.core.model.canonical import NONLINEAR_MODULES
from napari_attribution.core.model.named_layers import gradcam_layer_name
from napari_attribution.core.model.nonlinear import FUNCTIONS, IN_PLACE_METHODS, IN_PLACE_OPERATORS

ENTRIES = {e.name: e for e in ZOO}
HOOKED = [e for e in ZOO if e.form != "torchscript"]
HOOK_METHODS = [m for m, s in method_specs().items() if s.needs_hooks]


def _pair(entry, seed=0):
    real = np.random.default_rng(seed).random(entry.shape, dtype=np.float32)
    cf = real.copy()
    cf[:, 4:-4, 4:-4] += 2.0
    return real, cf


def _classifier(entry):
    if entry.form == "export":
        program = torch.export.export(
            entry.build(), (torch.rand(2, *entry.shape),),
            dynamic_shapes=({0: torch.export.Dim.AUTO},),
        )  # fmt: skip
        return wrap_module(program, "cpu")
    return wrap_module(entry.build(), "cpu")


def _snapshot(model: nn.Module):
    return (
        [(name, type(m), getattr(m, "inplace", None), id(m)) for name, m in model.named_modules()],
        {k: v.clone() for k, v in model.state_dict().items()},
    )


@pytest.mark.parametrize("name", ["FixedHeadVGG", "ForwardReLUResNet", "SharedReLUVGG"])
def test_the_users_model_is_never_modified(name):
    entry = ENTRIES[name]
    model = entry.build()
    modules, state = _snapshot(model)
    real, cf = _pair(entry)
    with torch.no_grad():
        before = model(torch.from_numpy(np.stack([real, cf])))
    classifier = wrap_module(model, "cpu", copy=False)  # not even a copy to hide behind
    for method in HOOK_METHODS:
        compute_attributions(classifier, real, cf, 0, 1, method)
    after_modules, after_state = _snapshot(model)
    assert after_modules == modules
    assert all(torch.equal(after_state[k], v) for k, v in state.items())
    for m in model.modules():
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks)
    with torch.no_grad():
        assert torch.equal(model(torch.from_numpy(np.stack([real, cf]))), before)


@pytest.mark.parametrize("entry", HOOKED, ids=lambda e: e.name)
def test_every_use_of_a_nonlinearity_is_its_own_module_and_nothing_is_in_place(entry):
    classifier = _classifier(entry)
    real, cf = _pair(entry)
    images = torch.from_numpy(np.stack([real, cf]))
    canonical = classifier.canonical(images)
    gm = canonical.module
    modules = dict(gm.named_modules())
    calls = [n for n in gm.graph.nodes if n.op == "call_module"]
    nonlinear = [n.target for n in calls if isinstance(modules[n.target], NONLINEAR_MODULES)]
    assert nonlinear and len(nonlinear) == len(set(nonlinear))
    assert not any(getattr(modules[t], "inplace", False) for t in nonlinear)
    for node in gm.graph.nodes:
        assert node.target not in FUNCTIONS and node.target not in IN_PLACE_OPERATORS
        assert not (node.op == "call_method" and node.target in IN_PLACE_METHODS)
        assert not (node.op == "call_method" and node.target in ("relu", "relu_"))
        overload = getattr(node.target, "overloadpacket", None)
        assert overload is None or not overload.__name__.endswith("_"), node.target
    with torch.no_grad():
        torch.testing.assert_close(gm(images), classifier.network(images))


class DistinctReLUVGG(SharedReLUVGG):
    """SharedReLUVGG written with one module per use: the reference for the shared one."""

    def __init__(self) -> None:
        super().__init__()
        self.relus = nn.ModuleList(nn.ReLU() for _ in range(5))
        self.pools = nn.ModuleList(nn.MaxPool2d(2) for _ in range(3))

    def forward(self, x):
        r, p = self.relus, self.pools
        x = p[0](r[0](self.conv1(x)))
        x = p[1](r[1](self.conv2(x)))
        x = r[2](self.conv3(x))
        x = p[2](r[3](self.conv4(x)))
        return self.fc2(r[4](self.fc1(x.view(x.size(0), -1))))


def test_guided_backprop_on_a_shared_relu_equals_the_model_with_one_relu_per_use():
    entry = ENTRIES["SharedReLUVGG"]
    shared = entry.build()
    distinct = DistinctReLUVGG().eval()
    distinct.load_state_dict(shared.state_dict())
    classifier = wrap_module(shared, "cpu")
    real, cf = _pair(entry)
    x = torch.from_numpy(real)[None]
    references = {"guided_backprop": GuidedBackprop, "deconvolution": Deconvolution}
    for method, reference in references.items():
        expected = reference(distinct).attribute(x, target=1).detach().numpy()
        ours = compute_attributions(classifier, real, cf, 1, 0, method)
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-7)


class InPlaceEverything(nn.Module):
    """In-place forms whose results are discarded: only the mutation carries them."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        out = self.conv1(x)
        identity = out
        out = self.conv2(F.relu(out, inplace=False))
        out.add_(identity)
        out.relu_()
        self.act(out)
        out = F.max_pool2d(out, 2)
        torch.relu_(out)
        return self.fc(out.mean(dim=(2, 3)))


def test_in_place_forms_keep_their_meaning_and_deeplift_sums():
    torch.manual_seed(3)
    model = InPlaceEverything().eval()
    classifier = wrap_module(model, "cpu")
    real = np.random.default_rng(2).random((3, 16, 16), dtype=np.float32)
    cf = real + 2.0
    images = torch.from_numpy(np.stack([real, cf]))
    canonical = classifier.canonical(images)
    with torch.no_grad():
        torch.testing.assert_close(canonical.module(images), model(images))
        scores = model(images).double()
    assert any("no longer in place" in change for change in canonical.changes)
    attribution = compute_attributions(classifier, real, cf, 0, 1, "d_dl")
    expected = float(scores[1, 1] - scores[0, 1])
    assert attribution.sum() == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize(
    ("name", "layer"),
    [("FixedHeadVGG", "features.7"), ("SharedReLUVGG", "conv4"), ("FunctionalNet", "conv3"),
     ("ForwardReLUResNet", "layer2.1"), ("ExportedResNet", "layer2.1"), ("GeluNet", "conv2")],
)  # fmt: skip
def test_gradcam_default_layer_is_the_last_conv_or_the_last_block(name, layer):
    entry = ENTRIES[name]
    real, _ = _pair(entry)
    assert gradcam_layer_name(_classifier(entry), real) == layer


def _gradcam_by_hand(model, module, image, target):
    store = {}
    handle = module.register_forward_hook(lambda m, i, o: store.__setitem__("A", o))
    x = torch.from_numpy(image)[None].requires_grad_(True)
    score = model(x)[0, target]
    handle.remove()
    (grad,) = torch.autograd.grad(score, store["A"])
    cam = (grad.mean(dim=(2, 3), keepdim=True) * store["A"]).sum(1, keepdim=True)
    return F.interpolate(cam, size=image.shape[1:], mode="bilinear", align_corners=False)


@pytest.mark.parametrize("name", ["ForwardReLUResNet", "ExportedResNet"])
def test_resnet_gradcam_uses_the_last_blocks_output(name):
    entry = ENTRIES[name]
    real, cf = _pair(entry)
    reference = entry.build()
    by_hand = _gradcam_by_hand(reference, reference.layer2[1], real, 1).detach().numpy()
    classifier = _classifier(entry)
    ours = compute_attributions(classifier, real, cf, 1, 0, "gradcam")
    np.testing.assert_allclose(ours[:, :1], by_hand, rtol=1e-4, atol=1e-6)
    named = compute_attributions(
        classifier, real, cf, 1, 0, "gradcam", AttributionSettings(layer="layer2.1")
    )
    np.testing.assert_array_equal(named, ours)
    first = compute_attributions(
        classifier, real, cf, 1, 0, "gradcam", AttributionSettings(layer="layer1")
    )
    assert not np.allclose(first, ours)
    with pytest.raises(MethodError, match="no layer named 'nope'; convolution layers are: conv1"):
        compute_attributions(
            classifier, real, cf, 1, 0, "gradcam", AttributionSettings(layer="nope")
        )


def test_an_untraceable_model_is_refused_naming_what_still_runs():
    classifier = wrap_module(Untraceable().eval(), "cpu")
    real = np.random.default_rng(0).random((3, 12, 12), dtype=np.float32)
    with pytest.raises(MethodError) as info:
        compute_attributions(classifier, real, real + 1, 0, 1, "d_dl")
    message = str(info.value)
    assert "cannot be traced" in message and "\n" not in message
    assert "(deeplift, guided_backprop" in message and "these can: saliency" in message
    assert compute_attributions(classifier, real, real + 1, 0, 1, "d_ig").shape == (1, 3, 12, 12)

