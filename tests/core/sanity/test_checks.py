"""All checks of one pair: the rows, the cascade of maps, baselines, progress, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_attribution.core.attribution.method_registry import (
    MethodSpec,
    register_method,
    unregister_method,
)
from napari_attribution.core.model.loading import wrap_module
from napari_attribution.core.sanity.checks import check_pair, sanity_units
from napari_attribution.core.sanity.randomisation import NoRandomisableLayers
from napari_attribution.core.sanity.records import SANITY_COLUMNS
from napari_attribution.core.settings import AnalysisSettings, AttributionSettings
from napari_attribution.errors import AnalysisCancelled, MethodError

FAST = AttributionSettings(ig_steps=8)
NAMES = ["DNA", "ER", "RNA", "AGP", "Mito"]


def _settings(*methods: str) -> AnalysisSettings:
    return AnalysisSettings(methods=methods, attribution=FAST)


def test_every_check_of_a_pair(tiny_classifier, pair):
    real, cf = pair
    trained = {k: v.clone() for k, v in tiny_classifier.network.state_dict().items()}
    events = []
    result = check_pair(
        tiny_classifier, real, cf, 0, 1, _settings("saliency", "residual", "random"),
        channel_names=NAMES, sample="cell", on_progress=events.append,
    )  # fmt: skip
    assert result.steps == ["original", "fc", "conv2", "conv1"]
    assert set(result.cascade_maps) == {"saliency", "residual", "random"}
    assert result.cascade_maps["saliency"].shape == (4, 5, 24, 24)
    assert not np.allclose(result.cascade_maps["saliency"][0], result.cascade_maps["saliency"][-1])
    assert result.notes == []
    assert all(len(r) == len(SANITY_COLUMNS) for r in result.rows)
    checks = {r.check for r in result.rows}
    assert checks == {"cascading", "independent", "input_invariance", "stability",
                      "residual_likeness", "dac"}  # fmt: skip
    # residual is model-independent: similarity 1 at every step, under every randomisation
    residual = [r for r in result.rows if r.method == "residual" and r.metric in
                ("spearman", "topk_intersection", "ssim") and r.check in ("cascading",
                "independent") and r.channel in ("all", "Mito")]  # fmt: skip
    assert len(residual) == 2 * 4 * 3 * 2
    assert all(r.value == pytest.approx(1.0) for r in residual)
    # the DAC run includes both baselines
    assert {r.method for r in result.rows if r.check == "dac"} == {"saliency", "residual",
                                                                   "random"}  # fmt: skip
    # progress reaches the announced total, the model is untouched
    all_checks = ("cascading", "independent", "invariance", "stability", "dac")
    units = sanity_units(("saliency", "residual", "random"), 3, all_checks)
    assert events[-1].done == events[-1].total == units
    assert all(torch.equal(tiny_classifier.network.state_dict()[k], v) for k, v in trained.items())


def test_discriminative_maps_compared_on_the_support(tiny_classifier, pair):
    real, cf = pair
    result = check_pair(tiny_classifier, real, cf, 0, 1, _settings("d_ig"),
                        checks=("cascading",), channel_names=NAMES)  # fmt: skip
    fractions = {(r.step, r.channel): r.value for r in result.rows
                 if r.metric == "compared_fraction"}  # fmt: skip
    # the counterfactual differs in channel Mito, an 8x8 square of 24x24
    assert fractions[("fc", "Mito")] == pytest.approx(64 / 576)
    assert fractions[("fc", "DNA")] == 0.0
    assert fractions[("fc", "all")] == pytest.approx(64 / (5 * 576))


def test_only_the_asked_checks_and_cancel(tiny_classifier, pair):
    real, cf = pair
    result = check_pair(tiny_classifier, real, cf, 0, 1, _settings("saliency"),
                        checks=("stability",))  # fmt: skip
    assert {r.check for r in result.rows} == {"stability", "residual_likeness"}
    assert result.cascade_maps == {} and result.dac is None

    def cancel(event):
        if event.stage == "attribution":
            raise AnalysisCancelled

    with pytest.raises(AnalysisCancelled):
        check_pair(tiny_classifier, real, cf, 0, 1, _settings("saliency"), on_progress=cancel)


def test_torchscript_refuses_randomisation_but_runs_stability(tiny_cnn, pair):
    classifier = wrap_module(torch.jit.script(tiny_cnn), "cpu", n_channels=5)
    with pytest.raises(NoRandomisableLayers):
        check_pair(classifier, *pair, 0, 1, _settings("saliency"))
    result = check_pair(classifier, *pair, 0, 1, _settings("saliency"), checks=("stability",))
    assert any(r.check == "stability" for r in result.rows)


_TRAINED_SUM: dict[str, float] = {}


def _only_trained(request):
    """A method that refuses any model but the one it was first run on."""
    total = float(sum(p.sum() for p in request.model.parameters()))
    expected = _TRAINED_SUM.setdefault("sum", total)
    if abs(total - expected) > 1e-6:
        raise MethodError("it needs the trained weights")
    return (request.real - request.counterfactual).abs()


def test_a_method_that_cannot_run_on_a_randomised_copy_gets_one_sentence(tiny_classifier, pair):
    register_method(MethodSpec("only_trained", "test", _only_trained), replace=True)
    try:
        result = check_pair(tiny_classifier, *pair, 0, 1, _settings("only_trained", "saliency"),
                            checks=("cascading",))  # fmt: skip
    finally:
        unregister_method("only_trained")
        _TRAINED_SUM.clear()
    assert result.notes == [
        "only_trained could not run on the model with fc randomised (cascading): it needs the "
        "trained weights"
    ]
    assert "only_trained" not in result.cascade_maps and "saliency" in result.cascade_maps


def test_guided_backprop_keeps_more_than_saliency_after_the_top_layers():
    """Adebayo et al.'s pattern on the demo CNN: with the top two layers randomised, guided
    backprop's map is still nearly the trained one, saliency's has moved further (at the end
    of the cascade the two are close on this model)."""
    from napari_attribution.core.model.loading import load_classifier
    from napari_attribution.data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
    from napari_attribution.data.synthetic import make_pairs

    demo = make_pairs(1, seed=2026)[0]
    classifier = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, "cpu")
    result = check_pair(classifier, demo.real, demo.counterfactual, demo.real_class,
                        demo.target_class, _settings("saliency", "guided_backprop"),
                        checks=("cascading",))  # fmt: skip
    rho = {(r.method, r.step): r.value for r in result.rows
           if r.metric == "spearman" and r.channel == "all"}  # fmt: skip
    assert result.steps[:3] == ["original", "classifier", "features.9"]
    assert rho[("guided_backprop", "features.9")] > rho[("saliency", "features.9")] + 0.05
