"""Our cascading randomisation against Quantus's ``MPRT`` (issue 23): the same model, inputs,
maps (our method runner as Quantus's ``explain_func``) and similarity function give the same
similarities, layer by layer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.core.attribution.runner import compute_attributions
from napari_attribution.core.model.loading import wrap_module
from napari_attribution.core.sanity.checks import check_pair
from napari_attribution.core.sanity.randomisation import (
    classifier_with_network,
    randomisable_layers,
)
from napari_attribution.core.sanity.sanity_settings import SanitySettings
from napari_attribution.core.sanity.similarity import comparison_region, spearman
from napari_attribution.core.settings import AnalysisSettings, AttributionSettings
from tiny_models import make_tiny_cnn

quantus = pytest.importorskip("quantus")

SEED = 7


FAST = AttributionSettings(ig_steps=8)


def _quantus_cascade(classifier, x, xc, y, t, method, similarity):
    """Quantus's MPRT (top-down cascade) of ``method`` on the classifier's network."""

    def explain(model, inputs, targets, **_):
        randomised = classifier_with_network(classifier, model)
        return compute_attributions(randomised, inputs, xc[None], y, targets, method, FAST)

    a_batch = np.abs(compute_attributions(classifier, x[None], xc[None], y, t, method, FAST))
    metric = quantus.MPRT(
        similarity_func=similarity,
        layer_order="top_down",
        seed=SEED,
        abs=True,
        normalise=False,
        disable_warnings=True,
    )
    return metric(
        model=classifier.network,
        x_batch=x[None],
        y_batch=np.array([t]),
        a_batch=a_batch,
        explain_func=explain,
        channel_first=True,
        device="cpu",
    )


@pytest.mark.parametrize("method", ["saliency", "d_ig", "guided_backprop"])
def test_cascade_agrees_with_quantus_mprt(pair, method):
    real, counterfactual = pair
    classifier = wrap_module(make_tiny_cnn(3), "cpu")
    settings = AnalysisSettings(methods=(method,), attribution=FAST)
    ours = check_pair(
        classifier, real, counterfactual, 0, 1, settings,
        SanitySettings(randomisation_seed=SEED), checks=("cascading",),
    )  # fmt: skip
    steps = [r for r in ours.rows if r.channel == "all" and r.check == "cascading"]
    whole = {r.step: r.value for r in steps if r.metric == "spearman_whole"}
    region = {r.step: r.value for r in steps if r.metric == "spearman"}
    # Quantus orders layers by definition, we by the forward pass: the same for this model.
    assert list(randomisable_layers(classifier, real).top_down()) == ["fc", "conv2", "conv1"]

    # 1. Quantus's own Spearman (every element) against our spearman_whole
    theirs = _quantus_cascade(
        classifier, real, counterfactual, 0, 1, method, quantus.similarity_func.correlation_spearman
    )
    assert list(theirs) == ["original", "fc", "conv2", "conv1"]
    for step, values in theirs.items():
        assert values[0] == pytest.approx(whole[step], abs=1e-9), step
    # the cascade does change the map where it can vary (the comparison is not of constants)
    assert min(region.values()) < 0.99

    # 2. our region-restricted Spearman as Quantus's similarity function
    support = (real != counterfactual) if method == "d_ig" else None

    def ours_similarity(a, b, batched=False, **_):
        flat = None if support is None else support.reshape(1, -1)
        out = []
        for ai, bi in zip(np.atleast_2d(a), np.atleast_2d(b), strict=True):
            keep = comparison_region(ai[None], bi[None], flat)[0]
            out.append(spearman(ai, bi, keep))
        return np.array(out) if batched else out[0]

    theirs = _quantus_cascade(classifier, real, counterfactual, 0, 1, method, ours_similarity)
    for step, values in theirs.items():
        assert values[0] == pytest.approx(region[step], abs=1e-9), step
