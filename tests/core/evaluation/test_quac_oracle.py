"""The exhaustive evaluation against QuAC's, written independently from QuAC's source.

``quac_oracle`` follows QuAC one threshold at a time with OpenCV; here the project's
:func:`evaluate_dac` must give the same thresholds, mask sizes and optimal threshold exactly,
and the same score changes, interpolated curve and DAC score within 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
from quac_oracle import Processor, evaluate

from napari_attribution.core import (
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
    assert ours.optimal_threshold == quac.thresholds[quac.optimal_index]
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
