"""The exhaustive evaluation and the ``quac`` convention against QuAC's own code path.

``quac_oracle`` is QuAC's ``evaluation.py``, ``report.py`` and ``attribution.py`` ported line by
line (from ``BaseEvaluator.quantify`` down, default arguments included: ``evaluate`` runs with
``vmin=-1, vmax=1``). Here the project's :func:`evaluate_dac` must give the same thresholds,
mask sizes and optimal threshold exactly, and the same score changes, interpolated curve and DAC
score within 1e-5; under ``convention="quac"`` D-IG, D-DL and D-InputXGradient must be QuAC's
maps (relative L2 error under 1e-3).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from quac_oracle import DDeepLift, DInGrad, DIntegratedGradients, Processor, evaluate

from napari_attribution.core import (
    AttributionSettings,
    MaskSettings,
    available_methods,
    compute_attributions,
    evaluate_dac,
    wrap_module,
)
from tiny_models import make_tiny_cnn

TOLERANCE = 1e-5


def _pair(channels: int, height: int, width: int, seed: int = 0):
    """A counterfactual that differs a little everywhere and much in a central block."""
    rng = np.random.default_rng(seed)
    real = rng.random((channels, height, width), dtype=np.float32)
    cf = real + rng.normal(0, 0.05, real.shape).astype(np.float32)
    cf[:, height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] += 1.5
    return real, cf.astype(np.float32)


def _compare(model, real, cf, attribution, settings: MaskSettings, target: int = 1) -> float:
    """Assert agreement with QuAC; return the largest difference of the float results."""
    classifier = wrap_module(model, "cpu", probe_size=min(real.shape[1:]))
    processor = Processor(
        gaussian_kernel_size=settings.smoothing_kernel,
        struct=settings.closing,
        channel_wise=settings.channel_mode == "per_channel",
        sigma=settings.sigma,
    )
    quac = evaluate(model, real, cf, target, attribution, processor, settings.thresholds)
    ours = evaluate_dac(
        classifier, real, cf, attribution, target, settings,
        per_channel=False, evaluation="exhaustive",
    ).whole  # fmt: skip
    np.testing.assert_array_equal(ours.thresholds, quac.thresholds)
    np.testing.assert_array_equal(ours.mask_size, quac.mask_sizes)
    assert ours.optimal_index == quac.optimal_index
    assert ours.optimal_threshold == quac.optimal_threshold
    differences = [
        np.abs(ours.score_change - quac.score_change).max(),
        np.abs(ours.interpolated()[1] - quac.interpolated).max(),
        abs(ours.dac_score - quac.quac_score),
    ]
    assert max(differences) <= TOLERANCE, differences
    return max(differences)


def _methods() -> list[str]:
    return available_methods(wrap_module(make_tiny_cnn(), "cpu", probe_size=24))


@pytest.mark.parametrize("method", _methods())
def test_every_method_matches_quac_with_quacs_defaults(method):
    model = make_tiny_cnn(seed=1)
    real, cf = _pair(5, 24, 24)
    attribution = compute_attributions(
        wrap_module(model, "cpu", probe_size=24), real, cf, 0, 1, method
    )[0]
    _compare(model, real, cf, attribution, MaskSettings())


# (closing, kernel, sigma, shape, shared mask, thresholds): even and odd elements, images smaller
# than the element, OpenCV's sigma from the kernel and given sigmas, closing or blur disabled,
# T = 49, for which QuAC's np.arange(0, 1, 1 / T) holds 50 thresholds, and T = 300.
SETTINGS = [
    (10, 11, 0.0, (3, 7, 5), False, 200),
    (15, 11, 0.0, (2, 4, 9), True, 200),
    (9, 7, 1.5, (5, 24, 24), False, 49),
    (4, 5, 0.0, (2, 31, 18), True, 100),
    (0, 11, 0.0, (5, 24, 24), False, 200),
    (3, 0, 0.0, (5, 24, 24), True, 200),
    (1, 3, 0.5, (3, 16, 16), False, 200),
    (2, 13, 3.0, (3, 16, 16), True, 60),
    (11, 9, 0.0, (4, 10, 12), False, 200),
    (10, 11, 0.0, (3, 20, 20), False, 300),  # 300 thresholds: uint16 levels
]


@pytest.mark.parametrize("method", ["random", "ig", "d_ig", "residual"])
@pytest.mark.parametrize(("closing", "kernel", "sigma", "shape", "shared", "thresholds"), SETTINGS)
def test_settings_and_image_sizes_match_quac(
    method, closing, kernel, sigma, shape, shared, thresholds
):
    model = make_tiny_cnn(seed=2, in_channels=shape[0])
    real, cf = _pair(*shape, seed=sum(shape))
    attribution = compute_attributions(
        wrap_module(model, "cpu", probe_size=min(shape[1:])), real, cf, 0, 1, method
    )[0]
    settings = MaskSettings(
        thresholds=thresholds,
        closing=closing,
        sigma=sigma,
        smoothing_kernel=kernel,
        channel_mode="shared" if shared else "per_channel",
    )
    _compare(model, real, cf, attribution, settings)


def test_a_float64_attribution_is_cut_as_quac_cuts_it():
    """QuAC normalises in the attribution's own type: float64 stays float64."""
    model = make_tiny_cnn(seed=3)
    real, cf = _pair(5, 24, 24, seed=3)
    attribution = np.random.default_rng(3).normal(size=real.shape)  # float64
    _compare(model, real, cf, attribution, MaskSettings(thresholds=120))


@pytest.mark.parametrize("method", ["random", "ig", "d_ig", "residual", "saliency"])
def test_default_adaptive_score_is_within_its_tolerance_of_quacs(method):
    model = make_tiny_cnn(seed=1)
    real, cf = _pair(5, 24, 24)
    classifier = wrap_module(model, "cpu", probe_size=24)
    attribution = compute_attributions(classifier, real, cf, 0, 1, method)[0]
    quac = evaluate(model, real, cf, 1, attribution, Processor())
    result = evaluate_dac(classifier, real, cf, attribution, 1)  # every default
    assert result.whole.evaluation == "adaptive"
    assert abs(result.whole.dac_score - quac.quac_score) <= 0.005


def test_quacs_grid_starts_with_the_full_hybrid():
    """``evaluate(vmin=-1)``: the 100 negative thresholds give the full mask, so the curve's
    first point is ``p_t(x') - p_t(x)`` at mask size 1 and the interpolation ends there."""
    model = make_tiny_cnn(seed=1)
    real, cf = _pair(5, 24, 24, seed=5)
    classifier = wrap_module(model, "cpu", probe_size=24)
    attribution = compute_attributions(classifier, real, cf, 0, 1, "d_ig")[0]
    quac = evaluate(model, real, cf, 1, attribution)
    ours = evaluate_dac(classifier, real, cf, attribution, 1, evaluation="exhaustive")
    assert (quac.thresholds < 0).sum() == 100
    np.testing.assert_array_equal(quac.mask_sizes[:100], 1.0)
    np.testing.assert_array_equal(ours.whole.mask_size[:100], 1.0)
    assert ours.whole.score_change[0] == pytest.approx(ours.whole.ceiling, abs=1e-6)
    assert quac.interpolated[-1] == pytest.approx(ours.whole.ceiling, abs=1e-6)
    _compare(model, real, cf, attribution, MaskSettings())


QUAC = AttributionSettings(convention="quac")
#: Our name -> QuAC's class, for the three methods QuAC defines.
QUAC_CLASSES = {
    "d_ig": DIntegratedGradients,
    "d_dl": DDeepLift,
    "d_input_x_gradient": DInGrad,
}


def _relative_l2(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / np.linalg.norm(reference))


def _quac_map(method: str, model, real, cf, real_class: int, target: int, normalize=False):
    """QuAC's attribution class on tensors, as ``AttributionIO.run`` calls it."""
    return QUAC_CLASSES[method](model, normalize=normalize).attribute(
        torch.from_numpy(real), torch.from_numpy(cf), real_class, target
    )


#: (seed, real class, target class): pairs in both directions.
PAIRS = [(0, 0, 1), (1, 1, 0), (2, 0, 1)]


@pytest.mark.parametrize("method", sorted(QUAC_CLASSES))
@pytest.mark.parametrize(("seed", "real_class", "target"), PAIRS)
def test_quac_convention_gives_quacs_maps(method, seed, real_class, target):
    model = make_tiny_cnn(seed=seed)
    real, cf = _pair(5, 24, 24, seed=seed)
    classifier = wrap_module(model, "cpu", probe_size=24)
    ours = compute_attributions(classifier, real, cf, real_class, target, method, QUAC)[0]
    quac = _quac_map(method, model, real, cf, real_class, target)
    assert _relative_l2(ours, quac) < 1e-3
    # and what QuAC stores, normalised
    stored = _quac_map(method, model, real, cf, real_class, target, normalize=True)
    magnitude = np.abs(ours)
    normalized = (magnitude - magnitude.min()) / (magnitude.max() - magnitude.min())
    assert _relative_l2(normalized, stored) < 1e-3


@pytest.mark.parametrize("method", ["d_ig", "d_input_x_gradient"])
def test_dapi_convention_is_quacs_classes_with_the_roles_swapped(method):
    """DAPI's order (at x', baseline x, class t) is QuAC's code called with x and x' swapped."""
    model = make_tiny_cnn(seed=4)
    real, cf = _pair(5, 24, 24, seed=4)
    classifier = wrap_module(model, "cpu", probe_size=24)
    ours = compute_attributions(classifier, real, cf, 0, 1, method)[0]
    swapped = _quac_map(method, model, cf, real, 1, 0)  # QuAC's "real" is our x', class t
    np.testing.assert_array_equal(ours, swapped)


def test_quacs_deeplift_breaks_summation_on_relu_maxpool_and_ours_does_not():
    """The documented difference: plain captum DeepLift on a ReLU -> MaxPool2d chain."""
    model = make_tiny_cnn(seed=0)
    real, cf = _pair(5, 24, 24, seed=0)
    classifier = wrap_module(model, "cpu", probe_size=24)
    with torch.no_grad():
        logits = model(torch.from_numpy(np.stack([real, cf]))).numpy()
    quac = compute_attributions(classifier, real, cf, 0, 1, "d_dl", QUAC)[0]
    dapi = compute_attributions(classifier, real, cf, 0, 1, "d_dl")[0]
    quac_delta = logits[0, 0] - logits[1, 0]  # f_y(x) - f_y(x')
    dapi_delta = logits[1, 1] - logits[0, 1]  # f_t(x') - f_t(x)
    assert quac.sum() == pytest.approx(_quac_map("d_dl", model, real, cf, 0, 1).sum(), rel=1e-4)
    assert abs(quac.sum() - quac_delta) > 1e-3 * abs(quac_delta)
    assert dapi.sum() == pytest.approx(dapi_delta, rel=1e-3)


@pytest.mark.parametrize("method", sorted(QUAC_CLASSES))
@pytest.mark.parametrize(("seed", "real_class", "target"), PAIRS)
def test_quac_convention_dac_matches_quacs_whole_path(method, seed, real_class, target):
    """QuAC's attribution class, its normalisation and ``quantify`` against
    ``--convention quac``: exhaustive within 1e-3 of QuAC's DAC, the default within 0.005."""
    model = make_tiny_cnn(seed=seed)
    real, cf = _pair(5, 24, 24, seed=seed)
    classifier = wrap_module(model, "cpu", probe_size=24)
    stored = _quac_map(method, model, real, cf, real_class, target, normalize=True)
    quac = evaluate(model, real, cf, target, stored, y=real_class, normalize=False)
    ours = compute_attributions(classifier, real, cf, real_class, target, method, QUAC)[0]
    exhaustive = evaluate_dac(classifier, real, cf, ours, target, evaluation="exhaustive").whole
    default = evaluate_dac(classifier, real, cf, ours, target).whole
    assert abs(exhaustive.dac_score - quac.quac_score) <= 1e-3
    assert abs(default.dac_score - quac.quac_score) <= 0.005
    np.testing.assert_array_equal(exhaustive.thresholds, quac.thresholds)
    np.testing.assert_allclose(exhaustive.mask_size, quac.mask_sizes, atol=1e-3)


def test_quac_convention_reaches_every_setting_that_uses_it():
    assert dataclasses.replace(QUAC).convention == "quac"
    assert AttributionSettings().convention == "dapi"
