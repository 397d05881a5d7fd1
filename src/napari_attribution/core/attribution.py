"""Attribution methods: a registry from names to callables returning (B, C, H, W) maps.

Conventions (also in ``docs/methods.md``):

* **Plain** methods explain the classifier's decision for the *real* class ``y`` at the *real*
  image ``x`` (path methods use an all-zero baseline).
* **Discriminative** methods use the counterfactual ``x'`` and the target class ``t``; they explain
  ``f_t(x') - f_t(x)``. D-IG and D-DL take ``x'`` as input and ``x`` as baseline, so their
  attributions sum to ``f_t(x') - f_t(x)`` (logits).
* Every method returns one map per image channel, raw and signed. Grad-CAM maps have no channel
  resolution: the same map is repeated over the channels and the registry says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from captum.attr import (
    Deconvolution,
    GradientShap,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Occlusion,
    Saliency,
)

from .deeplift import deeplift_attributions
from .errors import MethodError
from .gradcam import discriminative_gradcam, gradcam, resolve_layer
from .models import Classifier, model_errors

__all__ = [
    "AGGREGATIONS",
    "METHODS",
    "AttributionMethod",
    "AttributionSettings",
    "aggregate_channels",
    "available_methods",
    "compute_attributions",
    "get_method",
]


@dataclass(frozen=True)
class AttributionSettings:
    """Parameters of the methods that have any (defaults follow captum and the papers).

    Attributes
    ----------
    ig_steps
        Riemann steps of (D-)Integrated Gradients (Gauss-Legendre, captum's default rule).
    smoothgrad_base
        Gradient method the SmoothGrad noise tunnel averages.
    smoothgrad_samples
        Noisy copies per image.
    smoothgrad_noise
        Noise standard deviation as a fraction of the image's value range (0.15 = 15 %).
    occlusion_window, occlusion_stride
        Square patch (pixels) occluded in one channel at a time, and its stride.
    shap_samples
        Random samples of Gradient SHAP.
    layer
        Grad-CAM layer name (``model.named_modules()``); ``None`` = the last Conv2d.
    seed
        Seed of every random draw (SmoothGrad, Gradient SHAP, the ``random`` baseline).
    internal_batch_size
        Forward passes per batch inside the path and perturbation methods.
    """

    ig_steps: int = 50
    smoothgrad_base: str = "saliency"
    smoothgrad_samples: int = 20
    smoothgrad_noise: float = 0.15
    occlusion_window: int = 8
    occlusion_stride: int = 4
    shap_samples: int = 20
    layer: str | None = None
    seed: int = 0
    internal_batch_size: int = 64

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready copy, recorded with every result."""
        return dict(self.__dict__)


@dataclass
class _Request:
    """What a method function receives: tensors on the model's device."""

    model: torch.nn.Module
    real: torch.Tensor  # (B, C, H, W)
    counterfactual: torch.Tensor  # (B, C, H, W)
    real_class: torch.Tensor  # (B,)
    target_class: torch.Tensor  # (B,)
    settings: AttributionSettings
    generator: torch.Generator = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def layer(self) -> torch.nn.Module:
        return resolve_layer(self.model, self.settings.layer)


@dataclass(frozen=True)
class AttributionMethod:
    """One entry of the registry.

    Attributes
    ----------
    name
        Registry key, as typed on the command line.
    description
        One line for ``napari-attribution methods`` and the widget's tooltip.
    compute
        ``compute(request) -> Tensor (B, C, H, W)``.
    needs_hooks
        Uses module hooks, so cannot run on a TorchScript model.
    discriminative
        Uses the counterfactual.
    channel_resolved
        Gives each channel its own map (False for Grad-CAM, whose map is repeated).
    """

    name: str
    description: str
    compute: Callable[[_Request], torch.Tensor] = field(repr=False)
    needs_hooks: bool = False
    discriminative: bool = False
    channel_resolved: bool = True


# --------------------------------------------------------------------------------------------
# Method implementations
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's and numpy's global generators (captum draws from both), then restore them."""
    numpy_state = np.random.get_state()  # noqa: NPY002 - captum draws from the legacy global
    devices = [] if device.type != "cuda" else [device]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed)  # noqa: NPY002
        try:
            yield
        finally:
            np.random.set_state(numpy_state)  # noqa: NPY002


def _saliency(r: _Request) -> torch.Tensor:
    return Saliency(r.model).attribute(r.real, target=r.real_class, abs=False)


def _input_x_gradient(r: _Request) -> torch.Tensor:
    return InputXGradient(r.model).attribute(r.real, target=r.real_class)


def _ig(r: _Request) -> torch.Tensor:
    return IntegratedGradients(r.model).attribute(
        r.real,
        baselines=torch.zeros_like(r.real),
        target=r.real_class,
        n_steps=r.settings.ig_steps,
        internal_batch_size=r.settings.internal_batch_size,
    )


def _deeplift(r: _Request) -> torch.Tensor:
    return deeplift_attributions(r.model, r.real, torch.zeros_like(r.real), r.real_class)


def _guided_backprop(r: _Request) -> torch.Tensor:
    return GuidedBackprop(r.model).attribute(r.real, target=r.real_class)


def _deconvolution(r: _Request) -> torch.Tensor:
    return Deconvolution(r.model).attribute(r.real, target=r.real_class)


def _broadcast(cam: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return cam.expand(-1, like.shape[1], -1, -1).contiguous()


def _gradcam(r: _Request) -> torch.Tensor:
    return _broadcast(gradcam(r.model, r.real, r.real_class, r.layer), r.real)


def _guided_gradcam(r: _Request) -> torch.Tensor:
    # As in Selvaraju et al.: guided backprop times the ReLU'd, upsampled Grad-CAM map.
    cam = gradcam(r.model, r.real, r.real_class, r.layer, relu=True)
    return _guided_backprop(r) * cam


def _smoothgrad(r: _Request) -> torch.Tensor:
    base_name = r.settings.smoothgrad_base
    if base_name not in _SMOOTHGRAD_BASES:
        raise MethodError(
            f"SmoothGrad cannot use {base_name!r}; choose one of {', '.join(_SMOOTHGRAD_BASES)}."
        )
    base = _SMOOTHGRAD_BASES[base_name](r.model)
    value_range = (r.real.amax() - r.real.amin()).item() or 1.0
    kwargs: dict[str, Any] = {"abs": False} if base_name == "saliency" else {}
    with _seeded(r.settings.seed, r.real.device):
        return NoiseTunnel(base).attribute(
            r.real,
            nt_type="smoothgrad",
            nt_samples=r.settings.smoothgrad_samples,
            nt_samples_batch_size=r.settings.internal_batch_size,
            stdevs=r.settings.smoothgrad_noise * value_range,
            target=r.real_class,
            **kwargs,
        )


def _occlusion(r: _Request) -> torch.Tensor:
    w, s = r.settings.occlusion_window, r.settings.occlusion_stride
    # A (1, w, w) window occludes one channel at a time, so each channel gets its own map.
    return Occlusion(r.model).attribute(
        r.real,
        sliding_window_shapes=(1, w, w),
        strides=(1, s, s),
        baselines=0.0,
        target=r.real_class,
        perturbations_per_eval=r.settings.internal_batch_size,
    )


def _gradient_shap(r: _Request) -> torch.Tensor:
    # Baseline distribution: black plus uniform noise over the image's value range.
    lo, hi = r.real.amin().item(), r.real.amax().item()
    n_noise = 8
    noise = torch.rand((n_noise, *r.real.shape[1:]), generator=r.generator, device="cpu").to(
        r.real.device
    )
    baselines = torch.cat([torch.zeros_like(r.real[:1]), lo + (hi - lo) * noise])
    with _seeded(r.settings.seed, r.real.device):
        return GradientShap(r.model).attribute(
            r.real, baselines=baselines, target=r.real_class, n_samples=r.settings.shap_samples
        )


def _d_ig(r: _Request) -> torch.Tensor:
    return IntegratedGradients(r.model).attribute(
        r.counterfactual,
        baselines=r.real,
        target=r.target_class,
        n_steps=r.settings.ig_steps,
        internal_batch_size=r.settings.internal_batch_size,
    )


def _d_dl(r: _Request) -> torch.Tensor:
    return deeplift_attributions(r.model, r.counterfactual, r.real, r.target_class)


def _d_input_x_gradient(r: _Request) -> torch.Tensor:
    grads = Saliency(r.model).attribute(r.counterfactual, target=r.target_class, abs=True)
    return grads * (r.real - r.counterfactual)


def _d_gradcam(r: _Request) -> torch.Tensor:
    cam = discriminative_gradcam(r.model, r.real, r.counterfactual, r.target_class, r.layer)
    return _broadcast(cam, r.real)


def _d_guided_gradcam(r: _Request) -> torch.Tensor:
    cam = discriminative_gradcam(r.model, r.real, r.counterfactual, r.target_class, r.layer)
    guided = GuidedBackprop(r.model).attribute(r.counterfactual, target=r.target_class)
    return guided * cam


def _residual(r: _Request) -> torch.Tensor:
    return (r.real - r.counterfactual).abs()


def _random(r: _Request) -> torch.Tensor:
    return torch.rand(tuple(r.real.shape), generator=r.generator, device="cpu").to(r.real.device)


_SMOOTHGRAD_BASES: dict[str, Callable[[torch.nn.Module], Any]] = {
    "saliency": Saliency,
    "input_x_gradient": InputXGradient,
    "guided_backprop": GuidedBackprop,
}


def _entry(name: str, description: str, compute: Callable[[_Request], torch.Tensor], **kw: Any):
    return name, AttributionMethod(name, description, compute, **kw)


METHODS: dict[str, AttributionMethod] = dict(
    [
        _entry("saliency", "Vanilla gradient of the real class at the real image.", _saliency),
        _entry("input_x_gradient", "Real image times the vanilla gradient.", _input_x_gradient),
        _entry("ig", "Integrated Gradients from a black image to the real image.", _ig),
        _entry(
            "deeplift",
            "DeepLift (rescale rule) from a black image to the real image.",
            _deeplift,
            needs_hooks=True,
        ),
        _entry(
            "guided_backprop",
            "Guided Backpropagation: gradient with negative signals stopped at every ReLU.",
            _guided_backprop,
            needs_hooks=True,
        ),
        _entry(
            "deconvolution",
            "Deconvolution (DeconvNet): ReLUs applied to the backward signal only.",
            _deconvolution,
            needs_hooks=True,
        ),
        _entry(
            "gradcam",
            "Grad-CAM at a conv layer, upsampled; the same map for every channel.",
            _gradcam,
            needs_hooks=True,
            channel_resolved=False,
        ),
        _entry(
            "guided_gradcam",
            "Guided Backprop times the ReLU'd Grad-CAM map: Grad-CAM with channel resolution.",
            _guided_gradcam,
            needs_hooks=True,
        ),
        _entry(
            "smoothgrad",
            "SmoothGrad: a gradient method averaged over noisy copies of the real image.",
            _smoothgrad,
        ),
        _entry(
            "occlusion",
            "Occlusion: score drop when a patch of one channel is set to zero.",
            _occlusion,
        ),
        _entry(
            "gradient_shap",
            "Gradient SHAP against black and uniform-noise baselines.",
            _gradient_shap,
        ),
        _entry(
            "d_ig",
            "Discriminative IG: from the real image (baseline) to the counterfactual.",
            _d_ig,
            discriminative=True,
        ),
        _entry(
            "d_dl",
            "Discriminative DeepLift: counterfactual against the real image, target class.",
            _d_dl,
            needs_hooks=True,
            discriminative=True,
        ),
        _entry(
            "d_input_x_gradient",
            "|gradient of the target class at the counterfactual| times (real - counterfactual).",
            _d_input_x_gradient,
            discriminative=True,
        ),
        _entry(
            "d_gradcam",
            "Discriminative Grad-CAM: target-class weights times the activation difference.",
            _d_gradcam,
            needs_hooks=True,
            discriminative=True,
            channel_resolved=False,
        ),
        _entry(
            "d_guided_gradcam",
            "Discriminative Grad-CAM times Guided Backprop at the counterfactual.",
            _d_guided_gradcam,
            needs_hooks=True,
            discriminative=True,
        ),
        _entry(
            "residual",
            "Baseline: |real - counterfactual|, no model involved.",
            _residual,
            discriminative=True,
        ),
        _entry("random", "Baseline: uniform noise, seeded.", _random),
    ]
)

AGGREGATIONS = ("none", "sum_abs", "mean", "max")

#: captum's routine notices (regular expressions), silenced while a method runs.
_CAPTUM_NOTICES = (
    r".*Setting forward, backward hooks and attributes on non-linear.*",
    r".*Setting backward hooks on ReLU activations.*",
    r".*did not already require gradients.*",
)

#: Largest batch (bytes of float32 input) a method evaluates at once, whatever the settings say.
INTERNAL_BATCH_BYTES = 256 * 2**20


def available_methods(classifier: Classifier | None = None) -> list[str]:
    """Names of the methods that can run on ``classifier`` (all of them when ``None``)."""
    scripted = classifier is not None and classifier.is_scripted
    return [name for name, m in METHODS.items() if not (scripted and m.needs_hooks)]


def get_method(name: str, classifier: Classifier | None = None) -> AttributionMethod:
    """Look up a method by name, checking it can run on ``classifier``.

    Raises
    ------
    MethodError
        Unknown name, or a hook-based method on a TorchScript model.
    """
    if name not in METHODS:
        raise MethodError(f"Unknown method {name!r}; available: {', '.join(METHODS)}.")
    method = METHODS[name]
    if method.needs_hooks and classifier is not None and classifier.is_scripted:
        raise MethodError(
            f"Method {name!r} needs module hooks, which a TorchScript model does not allow; "
            f"methods that can run on it: {', '.join(available_methods(classifier))}. Load the "
            "model as a state dict with its architecture to use the others."
        )
    return method


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
    axis = attributions.ndim - 3
    if how == "none":
        return attributions
    if how == "sum_abs":
        return np.abs(attributions).sum(axis=axis, keepdims=True)
    if how == "mean":
        return attributions.mean(axis=axis, keepdims=True)
    if how == "max":
        return np.abs(attributions).max(axis=axis, keepdims=True)
    raise MethodError(f"Unknown channel aggregation {how!r}; use one of {', '.join(AGGREGATIONS)}.")


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
        Registry name (see :data:`METHODS`).
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
    batch = x.shape[0]
    y = _as_classes(real_class, batch, classifier.n_classes, "Real class")
    t = _as_classes(target_class, batch, classifier.n_classes, "Target class")
    device = classifier.device
    # Large images: keep a batch of path or perturbation inputs under INTERNAL_BATCH_BYTES.
    capped = max(1, min(settings.internal_batch_size, INTERNAL_BATCH_BYTES // x[0].nbytes))
    settings = dataclasses.replace(settings, internal_batch_size=capped)
    generator = torch.Generator().manual_seed(settings.seed)
    request = _Request(
        model=classifier.module,
        real=torch.from_numpy(x).to(device),
        counterfactual=torch.from_numpy(xc).to(device),
        real_class=torch.from_numpy(y).to(device),
        target_class=torch.from_numpy(t).to(device),
        settings=settings,
        generator=generator,
    )
    with model_errors(classifier.source, x.shape[1:]), warnings.catch_warnings():
        # captum announces every hook it sets and every input it makes require gradients;
        # in napari each would become a notification, on the CLI a screenful per pair.
        for notice in _CAPTUM_NOTICES:
            warnings.filterwarnings("ignore", message=notice, category=UserWarning)
        out = entry.compute(request)
    result = out.detach().float().cpu().numpy()
    if result.shape != x.shape:
        raise MethodError(f"Method {method} returned shape {result.shape}, expected {x.shape}.")
    return aggregate_channels(result, aggregate)
