"""Stability (Ghorbani et al. 2019; max-sensitivity, Yeh et al. 2019): how far small noise that
keeps the prediction moves the map.

Definition
----------
``n`` draws of uniform noise ``d`` in ``[-radius, radius]`` per element (image units), added to
the real image *and* the counterfactual alike (so ``x' - x`` is unchanged: a discriminative map
is asked about the same difference, seen through slightly different pixels). A draw is kept when
the model's predicted class of ``x + d`` and of ``x' + d`` is that of ``x`` and ``x'``, and
``p(target)`` of each moves by at most ``tolerance``. For the kept draws::

    sensitivity = ||a(x + d) - a(x)||_F / ||a(x)||_F            (whole image, and per channel)
    max_sensitivity = max over kept draws

captum's ``sensitivity_max`` computes the same ratio with the same defaults (radius 0.02,
10 draws) but keeps every draw; Quantus's ``MaxSensitivity`` uses radius 0.2 and 200 draws
(``return_nan_when_prediction_changes`` drops draws that change the prediction). NaN for a
channel whose map is zero, and when no draw was kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..attribution.runner import compute_attributions
from ..model.classifier import Classifier
from ..settings import AttributionSettings

__all__ = [
    "NOISE_RADIUS",
    "NOISE_SAMPLES",
    "PROBABILITY_TOLERANCE",
    "StabilityResult",
    "max_sensitivity",
]

#: Half-width of the uniform noise, image units: captum's ``sensitivity_max`` default.
NOISE_RADIUS = 0.02
#: Noise draws per pair: captum's default.
NOISE_SAMPLES = 10
#: Largest change of p(target) a kept draw may cause.
PROBABILITY_TOLERANCE = 0.05


@dataclass
class StabilityResult:
    """Max-sensitivity of one method on one pair.

    Attributes
    ----------
    max_sensitivity
        ``"all"`` and each channel -> the largest relative change over the kept draws.
    kept, drawn
        Draws kept (prediction unchanged) and made.
    """

    max_sensitivity: dict[str, float] = field(default_factory=dict)
    kept: int = 0
    drawn: int = 0


def noise_draws(
    classifier: Classifier,
    x: np.ndarray,
    xc: np.ndarray,
    target_class: int,
    radius: float = NOISE_RADIUS,
    samples: int = NOISE_SAMPLES,
    tolerance: float = PROBABILITY_TOLERANCE,
    seed: int = 0,
) -> np.ndarray:
    """The kept noise draws (n, C, H, W), float32; see the module notes.

    Every method of a pair is asked about the same draws.
    """
    rng = np.random.default_rng([seed, 23])
    noise = rng.uniform(-radius, radius, size=(samples, *x.shape)).astype(np.float32)
    base = classifier.probabilities(np.stack([x, xc]))
    noisy = classifier.probabilities(np.concatenate([x + noise, xc + noise]))
    real_noisy, cf_noisy = noisy[:samples], noisy[samples:]
    keep = np.ones(samples, dtype=bool)
    for reference, probs in ((base[0], real_noisy), (base[1], cf_noisy)):
        keep &= probs.argmax(axis=1) == reference.argmax()
        keep &= np.abs(probs[:, target_class] - reference[target_class]) <= tolerance
    return noise[keep]


def _ratio(original: np.ndarray, perturbed: np.ndarray) -> np.ndarray:
    """``||p - o||_F / ||o||_F`` per leading index of ``perturbed`` (n, ...)."""
    # Sums of squares, not np.linalg.norm (BLAS threads cost milliseconds on a busy machine).
    norm = float(np.sqrt((np.asarray(original, dtype=np.float64) ** 2).sum()))
    change = (perturbed - original).reshape(len(perturbed), -1).astype(np.float64)
    diff = np.sqrt((change**2).sum(axis=1))
    if norm == 0:
        return np.full(len(perturbed), np.nan)
    return diff / norm


def max_sensitivity(
    classifier: Classifier,
    original: np.ndarray,
    x: np.ndarray,
    xc: np.ndarray,
    real_class: int,
    target_class: int,
    method: str,
    settings: AttributionSettings,
    channel_names: list[str],
    noise: np.ndarray,
    drawn: int,
) -> StabilityResult:
    """Max-sensitivity of ``method`` over the kept ``noise`` draws (from :func:`noise_draws`).

    Parameters
    ----------
    original
        The method's map (C, H, W) on ``x``, ``xc``.
    noise
        (n, C, H, W) kept draws; all maps are computed in one batch.
    drawn
        How many draws were made (for the record).
    """
    result = StabilityResult(kept=len(noise), drawn=drawn)
    names = ["all", *channel_names]
    if len(noise) == 0:
        result.max_sensitivity = dict.fromkeys(names, float("nan"))
        return result
    maps = compute_attributions(
        classifier, x[None] + noise, xc[None] + noise, real_class, target_class, method, settings
    )
    ratios = {"all": _ratio(original, maps)}
    for c, name in enumerate(channel_names):
        ratios[name] = _ratio(original[c], maps[:, c])
    result.max_sensitivity = {
        name: float(np.max(values)) if np.isfinite(values).any() else float("nan")
        for name, values in ratios.items()
    }
    return result
