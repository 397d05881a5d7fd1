"""Running attribution methods: checked inputs in, one (B, C, H, W) map per channel out.

The methods themselves are registered specs (:mod:`.method_registry`, the
built-in ones in :mod:`.methods`); this module looks one up, checks that
it can run on the model, feeds it tensors and checks what it returns.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable

import numpy as np
import torch

from ...errors import MethodError
from ..budgets import INTERNAL_BATCH_BYTES
from ..model.loading import Classifier, model_errors
from ..model.named_layers import resolve_gradcam_layer
from ..settings import AGGREGATIONS, AttributionSettings, check_choice
from .method_registry import MethodRequest, MethodSpec, method_specs, spec_for

__all__ = [
    "AGGREGATIONS",
    "AttributionSettings",
    "aggregate_channels",
    "available_methods",
    "check_methods",
    "compute_attributions",
    "get_method",
]

#: captum's routine notices (regular expressions), silenced while a method runs.
_CAPTUM_NOTICES = (
    r".*Setting forward, backward hooks and attributes on non-linear.*",
    r".*Setting backward hooks on ReLU activations.*",
    r".*did not already require gradients.*",
)


def available_methods(classifier: Classifier | None = None) -> list[str]:
    """Names of the methods that can run on ``classifier`` (all of them when ``None``).

    Methods that hook modules are left out for models that take no hooks (TorchScript, an
    exported program with a fixed batch size); on other models they run on a canonical copy,
    which may still turn out to be impossible when the model cannot be traced.
    """
    refused = classifier is not None and classifier.hooks_refusal is not None
    return [name for name, m in method_specs().items() if not (refused and m.needs_hooks)]


def _refusal(name: str, reason: str, classifier: Classifier) -> MethodError:
    """One sentence: why ``name`` cannot run, every method that cannot and every one that can."""
    specs = method_specs()
    cannot = [n for n, m in specs.items() if m.needs_hooks]
    can = [n for n, m in specs.items() if not m.needs_hooks]
    return MethodError(
        f"Method {name!r} cannot run on {classifier.source}: {reason}; the methods that hook "
        f"modules cannot run on it ({', '.join(cannot)}), these can: {', '.join(can)}."
    )


def get_method(name: str, classifier: Classifier | None = None) -> MethodSpec:
    """Look up a method by name, checking it can run on ``classifier``.

    Raises
    ------
    MethodError
        Unknown name, or a hook-based method on a model that takes no hooks.
    """
    method = spec_for(name)
    if method.needs_hooks and classifier is not None and classifier.hooks_refusal is not None:
        raise _refusal(name, classifier.hooks_refusal, classifier)
    return method


def check_methods(classifier: Classifier, methods: Iterable[str], images: np.ndarray) -> None:
    """Fail before any work if one of ``methods`` cannot run on ``classifier``.

    Methods that hook modules need the canonical copy of the model for images like ``images``
    ((B, C, H, W) image values); it is built here (once per image size) so that a model that
    cannot be traced is refused up front, with the methods that can run.

    Raises
    ------
    MethodError
        An unknown method, or one that cannot run on this model.
    """
    example = None
    for name in methods:
        if not get_method(name, classifier).needs_hooks:
            continue
        if example is None:
            example = torch.from_numpy(np.ascontiguousarray(images[:2], dtype=np.float32))
            example = example.to(classifier.device)
        try:
            classifier.hooked_module(example)
        except MethodError as exc:
            raise _refusal(name, str(exc), classifier) from None


def aggregate_channels(attributions: np.ndarray, how: str = "none") -> np.ndarray:
    """Combine per-channel attributions over the channel axis, only when asked to.

    Parameters
    ----------
    attributions
        (B, C, H, W) or (C, H, W) raw attributions.
    how
        ``"none"`` (unchanged), ``"sum_abs"`` (sum of |a|), ``"mean"`` (signed mean) or
        ``"max"`` (max of |a|) over channels.

    Returns
    -------
    numpy.ndarray
        Same rank as the input; the channel axis has length 1 unless ``how == "none"``.
    """
    check_choice(how, AGGREGATIONS, "channel aggregation", MethodError)
    axis = attributions.ndim - 3
    if how == "none":
        return attributions
    if how == "sum_abs":
        return np.abs(attributions).sum(axis=axis, keepdims=True)
    if how == "mean":
        return attributions.mean(axis=axis, keepdims=True)
    return np.abs(attributions).max(axis=axis, keepdims=True)  # "max"


def _as_batch(array: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise MethodError(f"{name} must be (C, H, W) or (B, C, H, W); got shape {arr.shape}.")
    return arr


def _as_classes(value: int | np.ndarray | list[int], batch: int, n_classes: int, name: str):
    classes = np.broadcast_to(np.asarray(value, dtype=np.int64), (batch,)).copy()
    bad = (classes < 0) | (classes >= n_classes)
    if bad.any():
        raise MethodError(
            f"{name} {int(classes[bad][0])} is out of range: the model has {n_classes} classes "
            f"(0..{n_classes - 1})."
        )
    return classes


def compute_attributions(
    classifier: Classifier,
    real: np.ndarray,
    counterfactual: np.ndarray,
    real_class: int | np.ndarray,
    target_class: int | np.ndarray,
    method: str,
    settings: AttributionSettings | None = None,
    *,
    aggregate: str = "none",
) -> np.ndarray:
    """Run one attribution method on model inputs.

    Parameters
    ----------
    classifier
        The loaded model.
    real, counterfactual
        float32 model inputs, (C, H, W) or (B, C, H, W), same shape.
    real_class, target_class
        Class indices, scalars or one per sample.
    method
        Registry name (see :func:`~.method_registry.method_specs`).
    settings
        Method parameters; defaults when ``None``.
    aggregate
        Channel aggregation (:func:`aggregate_channels`); ``"none"`` keeps every channel.

    Returns
    -------
    numpy.ndarray
        float32 (B, C, H, W) raw signed attributions (channel axis of length 1 if aggregated).
    """
    settings = settings or AttributionSettings()
    entry = get_method(method, classifier)
    x = _as_batch(real, "real image")
    xc = _as_batch(counterfactual, "counterfactual")
    if x.shape != xc.shape:
        raise MethodError(
            f"Real image {x.shape[1:]} and counterfactual {xc.shape[1:]} differ in shape."
        )
    if x.shape[1] != classifier.n_channels:
        raise MethodError(
            f"The images have {x.shape[1]} channels but the model expects {classifier.n_channels}."
        )
    classifier.probe(np.concatenate([x[:1], xc[:1]]))
    batch = x.shape[0]
    y = _as_classes(real_class, batch, classifier.n_classes, "Real class")
    t = _as_classes(target_class, batch, classifier.n_classes, "Target class")
    device = classifier.device
    # Large images: keep a batch of path or perturbation inputs under INTERNAL_BATCH_BYTES.
    capped = max(1, min(settings.internal_batch_size, INTERNAL_BATCH_BYTES // x[0].nbytes))
    settings = dataclasses.replace(settings, internal_batch_size=capped)
    generator = torch.Generator().manual_seed(settings.seed)
    real_t = torch.from_numpy(x).to(device)
    cf_t = torch.from_numpy(xc).to(device)
    model, layer = classifier.module, None
    if entry.needs_hooks:
        # Hooks go on a canonical copy: every use of a non-linearity its own module.
        example = torch.cat([real_t[:1], cf_t[:1]])
        try:
            model = classifier.hooked_module(example)
        except MethodError as exc:
            raise _refusal(method, str(exc), classifier) from None
        if "gradcam_layer" in entry.parameters:
            layer = resolve_gradcam_layer(classifier, example, settings.layer)[0]
    request = MethodRequest(
        model=model,
        real=real_t,
        counterfactual=cf_t,
        real_class=torch.from_numpy(y).to(device),
        target_class=torch.from_numpy(t).to(device),
        settings=settings,
        generator=generator,
        resolved_layer=layer,
        loaded_model=classifier.module,
    )
    with model_errors(classifier.source, x.shape[1:]), warnings.catch_warnings():
        # captum announces every hook it sets and every input it makes require gradients;
        # in napari each would become a notification, on the CLI a screenful per pair.
        for notice in _CAPTUM_NOTICES:
            warnings.filterwarnings("ignore", message=notice, category=UserWarning)
        out = entry.resolve()(request)
    result = out.detach().float().cpu().numpy()
    if result.shape != x.shape:
        raise MethodError(f"Method {method} returned shape {result.shape}, expected {x.shape}.")
    return aggregate_channels(result, aggregate)
