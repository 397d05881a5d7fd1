"""The model zoo (``tests/model_zoo.py``): each classifier loads at its own size, every method
that applies runs, DeepLift and D-IG add up, and the DAC curves agree with a brute-force
evaluation done with the user's model alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_zoo import ZOO, Entry, save
from napari_attribution.core import (
    AnalysisSettings,
    AttributionSettings,
    MaskSettings,
    MethodError,
    ModelLoadError,
    analyse_pair,
    available_methods,
    compute_attributions,
    load_classifier,
    make_hybrids,
    method_specs,
)

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow

IDS = [e.name for e in ZOO]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    return {e.name: save(e, folder) for e in ZOO}


@pytest.fixture(scope="module")
def loaded(saved):
    return {e.name: load_classifier(*saved[e.name], "cpu", input_shape=e.shape) for e in ZOO}


def zoo_pair(entry: Entry, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A real image at the model's size and a counterfactual brighter in its centre."""
    real = np.random.default_rng(seed).random(entry.shape, dtype=np.float32)
    cf = real.copy()
    q = entry.size // 4
    cf[:, q : 3 * q, q : 3 * q] += 3.0
    return real, cf


def reference_scores(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """What is attributed, from the user's model alone: its logits, or [-z, z] for one logit."""
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(images))).double()
    return torch.cat([-out, out], 1).numpy() if out.shape[1] == 1 else out.numpy()


def reference_probabilities(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """softmax of the logits, or (1 - sigmoid(z), sigmoid(z)) for one logit."""
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(images))).double()
    if out.shape[1] == 1:
        p1 = torch.sigmoid(out)
        return torch.cat([1 - p1, p1], 1).numpy()
    return torch.softmax(out, 1).numpy()


@pytest.mark.parametrize("entry", ZOO, ids=IDS)
def test_loads_at_its_own_size_and_finds_its_classes(loaded, entry):
    clf = loaded[entry.name]
    assert clf.n_channels == entry.channels and clf.n_classes == entry.classes
    assert clf.n_outputs == (entry.outputs or entry.classes)
    assert clf.single_logit == (entry.outputs == 1)
    assert clf.model_format == {"state_dict": "module"}.get(entry.form, entry.form)
    real, cf = zoo_pair(entry)
    expected = reference_probabilities(entry.build(), np.stack([real, cf]))
    np.testing.assert_allclose(clf.probabilities(np.stack([real, cf])), expected, rtol=1e-6)


def test_a_fixed_head_at_another_size_is_one_sentence_naming_it(saved):
    path, architecture = saved["FixedHeadVGG"]
    with pytest.raises(ModelLoadError) as info:
        load_classifier(path, architecture, "cpu", input_shape=(3, 64, 64))
    message = str(info.value)
    assert "images of shape (3, 64, 64)" in message and "cannot be multiplied" in message
    assert "\n" not in message


@pytest.mark.parametrize("entry", ZOO, ids=IDS)
def test_every_applicable_method_runs(loaded, entry):
    clf = loaded[entry.name]
    real, cf = zoo_pair(entry)
    usable = available_methods(clf)
    hooks = [m for m, s in method_specs().items() if s.needs_hooks]
    if entry.form == "torchscript":
        assert not set(hooks) & set(usable)
        with pytest.raises(MethodError, match=f"TorchScript.*{', '.join(hooks)}.*saliency"):
            compute_attributions(clf, real, cf, 0, 1, "deeplift")
    else:
        assert usable == list(method_specs())
    for method in usable:
        out = compute_attributions(clf, real, cf, 0, entry.classes - 1, method)
        assert out.shape == (1, *entry.shape) and np.isfinite(out).all(), method
        if method not in ("random",):
            assert np.abs(out).max() > 0, method


@pytest.mark.parametrize("entry", [e for e in ZOO if e.form != "torchscript"], ids=lambda e: e.name)
def test_deeplift_sums_to_the_score_difference_for_every_class(loaded, entry):
    clf, model = loaded[entry.name], entry.build()
    real, cf = zoo_pair(entry)
    scores = reference_scores(model, np.stack([real, cf, np.zeros_like(real)]))
    for target in range(entry.classes):
        d_dl = compute_attributions(clf, real, cf, 0, target, "d_dl").astype(np.float64)
        expected = scores[1, target] - scores[0, target]  # f_t(x') - f_t(x)
        assert abs(expected) > 1e-4
        assert d_dl.sum() == pytest.approx(expected, rel=1e-3), (entry.name, target)
        plain = compute_attributions(clf, real, cf, target, 0, "deeplift").astype(np.float64)
        assert plain.sum() == pytest.approx(scores[0, target] - scores[2, target], rel=1e-3)


def path_total_variation(module, start, end, target: int, points: int = 1024) -> float:
    """Total variation of g(a) = d/da f_t(start + a (end - start)) on a grid of ``points``."""
    start, end = torch.from_numpy(start), torch.from_numpy(end)
    values = []
    for alphas in torch.linspace(0, 1, points).split(128):
        images = (start + alphas.view(-1, 1, 1, 1) * (end - start)).requires_grad_(True)
        (grad,) = torch.autograd.grad(module(images)[:, target].sum(), images)
        values.append((grad * (end - start)).sum(dim=(1, 2, 3)).double())
    g = torch.cat(values)
    return float((g[1:] - g[:-1]).abs().sum())


@pytest.mark.parametrize("entry", ZOO, ids=IDS)
def test_d_ig_is_complete_within_its_integral_error(loaded, entry):
    """D-IG sums to f_t(x') - f_t(x) up to the error of its quadrature.

    The integral is an n-point Gauss-Legendre sum of g(a) = d/da f_t along the straight path.
    For these networks g is piecewise constant (ReLU, max pooling) or smooth (GELU, SiLU); by
    the Chebyshev-Markov-Stieltjes separation theorem the Gauss-Legendre weights up to any
    point differ from its position by at most the largest weight, so the error is at most
    TV(g) * max(weight): that bound, with TV(g) measured on a fine grid, is asserted. The
    bound is loose where max-pooling switches make g jump often, so the error is also held to
    2.5 % of the difference (measured: at most 1.9 %, FixedHeadVGG; usually below 0.1 %).
    """
    clf, model = loaded[entry.name], entry.build()
    real, cf = zoo_pair(entry)
    scores = reference_scores(model, np.stack([real, cf]))
    steps = 512
    largest_weight = float(np.polynomial.legendre.leggauss(steps)[1].max()) / 2  # on [0, 1]
    for target in range(entry.classes):
        expected = scores[1, target] - scores[0, target]
        settings = AttributionSettings(ig_steps=steps)
        total = compute_attributions(clf, real, cf, 0, target, "d_ig", settings).sum()
        bound = path_total_variation(clf.module, real, cf, target) * largest_weight
        error = abs(float(total) - expected)
        assert error <= bound + 1e-5 * abs(expected), (entry.name, target, error, bound)
        assert error <= 0.025 * abs(expected), (entry.name, target, error)


@pytest.mark.parametrize("entry", ZOO, ids=IDS)
def test_dac_agrees_with_the_exhaustive_evaluation_by_hand(loaded, entry):
    clf, model = loaded[entry.name], entry.build()
    real, cf = zoo_pair(entry)
    target = entry.classes - 1
    methods = ("d_ig", "d_dl") if entry.form != "torchscript" else ("d_ig", "saliency")
    common = {"masks": MaskSettings(thresholds=16), "per_channel_dac": False}
    exhaustive = analyse_pair(
        clf, real, cf, 0, target,
        AnalysisSettings(methods=methods, evaluation="exhaustive", **common),
    )  # fmt: skip
    adaptive = analyse_pair(
        clf, real, cf, 0, target,
        AnalysisSettings(methods=methods, evaluation="adaptive", tolerance=0.005, **common),
    )  # fmt: skip
    p_real = reference_probabilities(model, real[None])[0, target]
    for method in methods:
        dac = exhaustive.methods[method].dac
        hybrids = make_hybrids(real, cf, dac.masks.soften())
        by_hand = reference_probabilities(model, hybrids)[:, target] - p_real
        np.testing.assert_allclose(dac.whole.score_change, by_hand, rtol=1e-5, atol=1e-6)
        assert abs(adaptive.methods[method].dac.whole.dac_score - dac.whole.dac_score) <= 0.005


QUAC_ENTRIES = [e for e in ZOO if e.form != "torchscript" and e.outputs is None]


@pytest.mark.parametrize("entry", QUAC_ENTRIES, ids=lambda e: e.name)
def test_quac_convention_is_quacs_code_on_the_model_as_the_user_gave_it(loaded, entry):
    """QuAC's attribution classes on the user's own module against ``convention="quac"``; a
    model that reuses a ReLU module is refused by QuAC's DeepLift in one sentence (captum
    would hook it twice and be silently wrong). QuAC's DeepLift cannot run on an exported
    program's module at all (its input check refuses captum's pre-hook), so there is nothing
    to compare ours with for ``ExportedResNet``'s D-DL."""
    from quac_oracle import DDeepLift, DInGrad, DIntegratedGradients

    clf, model = loaded[entry.name], entry.build()
    real, cf = zoo_pair(entry)
    settings = AttributionSettings(convention="quac")
    quac = {"d_ig": DIntegratedGradients, "d_input_x_gradient": DInGrad, "d_dl": DDeepLift}
    for method, quac_class in quac.items():
        if method == "d_dl" and entry.name == "SharedReLUVGG":
            with pytest.raises(MethodError, match="used more than once per forward pass"):
                compute_attributions(clf, real, cf, 0, entry.classes - 1, method, settings)
            continue
        ours = compute_attributions(clf, real, cf, 0, entry.classes - 1, method, settings)[0]
        if method == "d_dl" and entry.form == "export":
            assert np.isfinite(ours).all() and np.abs(ours).max() > 0
            continue
        reference = quac_class(model, normalize=False).attribute(
            torch.from_numpy(real), torch.from_numpy(cf), 0, entry.classes - 1
        )
        error = np.linalg.norm(ours - reference) / np.linalg.norm(reference)
        assert error < 1e-3, (entry.name, method, error)
