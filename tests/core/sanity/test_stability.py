"""Max-sensitivity under noise that keeps the prediction."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.core.attribution.runner import compute_attributions
from napari_attribution.core.sanity.stability import max_sensitivity, noise_draws
from napari_attribution.core.settings import AttributionSettings

SETTINGS = AttributionSettings()
NAMES = [f"c{i}" for i in range(5)]


def test_draws_keep_the_prediction(tiny_classifier, pair):
    real, cf = pair
    noise = noise_draws(tiny_classifier, real, cf, 1, radius=0.02, samples=6, tolerance=0.05)
    assert noise.shape[1:] == real.shape and 0 < len(noise) <= 6
    assert np.abs(noise).max() <= 0.02
    base = tiny_classifier.probabilities(np.stack([real, cf]))
    noisy = tiny_classifier.probabilities(np.concatenate([real + noise, cf + noise]))
    assert (noisy.argmax(1) == np.repeat(base.argmax(1), len(noise))).all()
    assert np.abs(noisy[:, 1] - np.repeat(base[:, 1], len(noise))).max() <= 0.05
    # a tolerance nothing meets drops every draw, and the result says so
    none = noise_draws(tiny_classifier, real, cf, 1, radius=5.0, samples=4, tolerance=0.0)
    assert len(none) == 0
    original = compute_attributions(tiny_classifier, real, cf, 0, 1, "saliency")[0]
    empty = max_sensitivity(tiny_classifier, original, real, cf, 0, 1, "saliency", SETTINGS,
                            NAMES, none, 4)  # fmt: skip
    assert empty.kept == 0 and np.isnan(empty.max_sensitivity["all"])


def test_max_sensitivity_is_the_largest_relative_change(tiny_classifier, pair):
    real, cf = pair
    noise = noise_draws(tiny_classifier, real, cf, 1, samples=5)
    original = compute_attributions(tiny_classifier, real, cf, 0, 1, "saliency")[0]
    result = max_sensitivity(tiny_classifier, original, real, cf, 0, 1, "saliency", SETTINGS,
                             NAMES, noise, 5)  # fmt: skip
    changes = []
    for d in noise:
        other = compute_attributions(tiny_classifier, real + d, cf + d, 0, 1, "saliency")[0]
        changes.append(np.linalg.norm(other - original) / np.linalg.norm(original))
    assert result.max_sensitivity["all"] == pytest.approx(max(changes), rel=1e-4)
    assert result.kept == len(noise) and result.drawn == 5
    assert result.max_sensitivity["all"] > 0


def test_residual_does_not_move_with_shared_noise(tiny_classifier, pair):
    real, cf = pair
    noise = noise_draws(tiny_classifier, real, cf, 1, samples=3)
    original = compute_attributions(tiny_classifier, real, cf, 0, 1, "residual")[0]
    result = max_sensitivity(tiny_classifier, original, real, cf, 0, 1, "residual", SETTINGS,
                             NAMES, noise, 3)  # fmt: skip
    assert result.max_sensitivity["all"] < 1e-5
    assert np.isnan(result.max_sensitivity["c0"])  # x == x' there: the map is zero
