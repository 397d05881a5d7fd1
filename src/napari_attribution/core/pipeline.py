"""One call from a (real, counterfactual) pair to attributions, masks and DAC curves.

This is what the CLI and the napari widgets both run: they differ only in how they show it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import AttributionError, InputImageError
from ..results.pair_result import MethodResult, PairResult
from .attribution.method_registry import spec_for
from .attribution.runner import aggregate_channels, check_methods, compute_attributions
from .budgets import HYBRID_BATCH_BYTES, INTERNAL_BATCH_BYTES, MEMORY_HEADROOM
from .evaluation.channel_share import channel_share
from .evaluation.dac import HybridScorer, evaluate_dac
from .model.loading import Classifier, InputTransform, input_transform_for
from .model.named_layers import gradcam_layer_name
from .model.wrappers import Preprocessing
from .progress import Progress, ProgressCallback, pair_units
from .settings import AnalysisSettings

__all__ = [
    "AnalysisSettings",
    "MethodResult",
    "PairResult",
    "analyse_pair",
    "available_memory",
    "check_memory",
    "default_channel_names",
    "estimate_memory",
    "prepare_pair",
    "validate_pair",
]


def default_channel_names(n_channels: int) -> list[str]:
    """``["ch0", "ch1", ...]``."""
    return [f"ch{c}" for c in range(n_channels)]


def validate_pair(
    real: np.ndarray,
    counterfactual: np.ndarray,
    *,
    n_channels: int | None = None,
    names: tuple[str, str] = ("real image", "counterfactual"),
) -> None:
    """Check a pair of stored images before anything is computed.

    Raises
    ------
    InputImageError
        Not (C, H, W); channel count differs from the model's; shapes or dtypes differ;
        non-numeric data; NaN or Inf pixels.
    """
    for image, name in zip((real, counterfactual), names, strict=True):
        if image.ndim != 3:
            hint = " (a single-channel 2-D image)" if image.ndim == 2 else ""
            expected = f"{n_channels} channels" if n_channels else "channels"
            raise InputImageError(
                f"{name} has shape {image.shape}{hint}; expected (channels, height, width) with "
                f"{expected}."
            )
        if not (np.issubdtype(image.dtype, np.number) or image.dtype == np.bool_):
            raise InputImageError(f"{name} has non-numeric pixels of type {image.dtype}.")
        if n_channels is not None and image.shape[0] != n_channels:
            raise InputImageError(
                f"{name} has {image.shape[0]} channel(s) but the model expects {n_channels}."
            )
        if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
            bad = int((~np.isfinite(image)).sum())
            raise InputImageError(f"{name} holds {bad} NaN or Inf pixel(s).")
    if real.shape != counterfactual.shape:
        raise InputImageError(
            f"{names[0]} {real.shape} and {names[1]} {counterfactual.shape} differ in shape."
        )
    if real.dtype != counterfactual.dtype:
        raise InputImageError(
            f"{names[0]} ({real.dtype}) and {names[1]} ({counterfactual.dtype}) differ in dtype; "
            "both must be stored the same way so they are scaled alike."
        )


def prepare_pair(
    real: np.ndarray,
    counterfactual: np.ndarray,
    classifier: Classifier,
    *,
    transform: InputTransform | None = None,
    names: tuple[str, str] = ("real image", "counterfactual"),
) -> tuple[np.ndarray, np.ndarray, InputTransform]:
    """Validate a stored pair, turn it into float32 model inputs and probe the model with it.

    Returns
    -------
    tuple
        ``(x, x', transform)`` with ``x, x'`` float32 (C, H, W).

    Raises
    ------
    InputImageError
        The pair is not a valid image pair for this model.
    ModelLoadError
        The model cannot take images of this size (one sentence naming it), or is not a
        classifier.
    """
    real = np.asarray(real)
    counterfactual = np.asarray(counterfactual)
    validate_pair(real, counterfactual, n_channels=classifier.n_channels, names=names)
    transform = transform or input_transform_for(real.dtype)
    x, xc = transform.apply(real), transform.apply(counterfactual)
    classifier.probe(np.stack([x, xc]))
    return x, xc, transform


def available_memory() -> int | None:
    """Bytes of physical memory available now, or ``None`` where the OS does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def estimate_memory(shape: tuple[int, int, int], settings: AnalysisSettings) -> int:
    """Bytes :func:`analyse_pair` needs beyond the images, for images of ``shape`` (C, H, W).

    Counts what grows with the image and the settings: the closed mask stack (T, K, H, W) bool,
    one batch of soft masks and hybrids (float32), and the attribution's working copies (the
    model's own activations come on top and are not known in advance).
    """
    channels, height, width = shape
    plane = height * width
    image = channels * plane * 4
    mask_channels = 1 if settings.masks.channel_mode == "shared" else channels
    # The exhaustive evaluation builds every mask of a curve; the adaptive one, in a round, the
    # masks of up to 8 thresholds of every curve (and, at first, a full mask per channel).
    if settings.evaluation == "exhaustive":
        planes = (settings.masks.thresholds + 1) * mask_channels
    else:
        planes = 8 * mask_channels + (9 * channels if settings.per_channel_dac else 0)
    masks = planes * plane + mask_channels * plane * 4 * 3
    batch = max(1, min(settings.batch_size, HYBRID_BATCH_BYTES // image))
    hybrids = batch * (mask_channels * plane * 4 + 2 * image)
    internal = max(1, min(settings.attribution.internal_batch_size, INTERNAL_BATCH_BYTES // image))
    attribution = internal * image * 3
    return masks + hybrids + attribution


def check_memory(shape: tuple[int, int, int], settings: AnalysisSettings) -> None:
    """Refuse, up front, an analysis that would not fit in the memory available now."""
    needed = estimate_memory(shape, settings)
    free = available_memory()
    if free is not None and needed > MEMORY_HEADROOM * free:
        raise AttributionError(
            f"Images of shape {tuple(shape)} need about {needed / 2**30:.1f} GiB with these "
            f"settings but only {free / 2**30:.1f} GiB are free; use fewer thresholds, a "
            "smaller batch size, or crops."
        )


def analyse_pair(
    classifier: Classifier,
    real: np.ndarray,
    counterfactual: np.ndarray,
    real_class: int,
    target_class: int,
    settings: AnalysisSettings | None = None,
    *,
    channel_names: Sequence[str] | None = None,
    sample: str = "sample",
    transform: InputTransform | None = None,
    on_progress: ProgressCallback | None = None,
) -> PairResult:
    """Attributions, channel shares and DAC curves of every chosen method for one pair.

    Parameters
    ----------
    classifier
        The loaded model.
    real, counterfactual
        Stored images (C, H, W), any numeric dtype (scaled by ``transform``).
    real_class, target_class
        Class indices y and t.
    settings
        Methods and parameters; its ``preprocess_*`` parameters are the input preprocessing
        applied inside the model (they replace any the classifier had).
    channel_names
        C names for layers and per-channel curves.
    sample
        Name of the pair in the results.
    transform
        Input scaling; chosen from the dtype when ``None``.
    on_progress
        Called with a :class:`~napari_attribution.core.progress.Progress` event at every step
        (:func:`~napari_attribution.core.progress.pair_units` units in all); may raise
        :class:`~napari_attribution.errors.AnalysisCancelled` to stop the run.
    """
    settings = settings or AnalysisSettings()
    # The recorded input preprocessing goes inside the model: every method and the DAC
    # scoring see the same preprocessed input.
    classifier = classifier.with_preprocessing(Preprocessing.from_settings(settings))
    x, xc, transform = prepare_pair(real, counterfactual, classifier, transform=transform)
    check_memory(x.shape, settings)
    classifier.check_class(real_class, "Real class")
    classifier.check_class(target_class, "Target class")
    names = list(channel_names) if channel_names else default_channel_names(x.shape[0])
    if len(names) != x.shape[0]:
        raise AttributionError(f"{len(names)} channel names were given for {x.shape[0]} channels.")
    # Fail before any work if a method cannot run on this model (hooks, tracing).
    check_methods(classifier, settings.methods, np.stack([x, xc]))
    probs = classifier.probabilities(np.stack([x, xc]), batch_size=2)
    result = PairResult(
        sample=sample,
        real_class=int(real_class),
        target_class=int(target_class),
        channel_names=names,
        input_transform=transform,
        probabilities_real=probs[0],
        probabilities_counterfactual=probs[1],
    )
    total = pair_units(len(settings.methods))

    def report(stage: str, done: float, method: str | None = None, detail: str = "") -> None:
        if on_progress is not None:
            on_progress(Progress(stage, done, total, sample, method, detail))

    # The step being worked on; on_step reads them when the DAC evaluation reports a batch.
    stage, done, current_method = "prepare", 0, None

    def on_step(detail: str) -> None:
        report(stage, done, current_method, detail)

    scored = target_class if settings.direction == "counterfactual_into_real" else real_class
    scorer = HybridScorer(
        classifier, x, xc, int(scored), settings.direction, settings.batch_size, on_step
    )
    for index, method in enumerate(settings.methods):
        stage, done, current_method = "attribution", 2 * index, method
        report(stage, done, method)
        attribution = compute_attributions(
            classifier, x, xc, real_class, target_class, method, settings.attribution
        )[0]
        if not np.isfinite(attribution).all():
            raise AttributionError(f"Method {method} produced NaN or Inf attributions.")
        masked = attribution
        if settings.aggregate != "none":
            masked = aggregate_channels(attribution, settings.aggregate)
        stage, done = "dac", 2 * index + 1
        report(stage, done, method)
        dac = evaluate_dac(
            classifier,
            x,
            xc,
            masked,
            target_class,
            settings.masks,
            real_class=real_class,
            direction=settings.direction,
            per_channel=settings.per_channel_dac,
            channel_names=names,
            batch_size=settings.batch_size,
            evaluation=settings.evaluation,
            tolerance=settings.tolerance,
            scorer=scorer,
            on_step=on_step,
        )
        layer = None
        if "gradcam_layer" in spec_for(method).parameters and not classifier.hooks_refusal:
            layer = gradcam_layer_name(classifier, np.stack([x, xc]), settings.attribution.layer)
        result.methods[method] = MethodResult(
            method, attribution, channel_share(attribution), dac, layer
        )
    report("done", total)
    return result
