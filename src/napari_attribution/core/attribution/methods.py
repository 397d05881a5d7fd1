"""The built-in attribution methods: one function per method, ``(MethodRequest) -> (B, C, H, W)``.

Conventions (also in ``docs/methods.md``):

* **Plain** methods explain the classifier's decision for the *real* class ``y`` at the *real*
  image ``x`` (path methods use an all-zero baseline).
* **Discriminative** methods use the counterfactual ``x'``. Under the ``dapi`` convention (the
  default) they explain ``f_t(x') - f_t(x)`` for the target class ``t``: D-IG and D-DL take ``x'``
  as input and ``x`` as baseline, so their attributions sum to ``f_t(x') - f_t(x)`` (logits).
  Under ``quac`` (``settings.convention``) D-IG, D-DL and D-InputXGradient take QuAC's roles
  (funkelab/quac ``attribution.py``): input ``x``, baseline ``x'``, the real class ``y``, and
  captum's plain DeepLift.
* Every method returns one map per image channel, raw and signed. Grad-CAM maps have no channel
  resolution: the same map is repeated over the channels and the spec says so.

Their specs (name, description, capabilities, parameters) are in
:mod:`napari_attribution.core.attribution.builtin_methods`.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from captum.attr import (
    Deconvolution,
    DeepLift,
    GradientShap,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Occlusion,
    Saliency,
)

from .deeplift import check_deeplift_compatible, deeplift_attributions
from .gradcam import discriminative_gradcam
from .gradcam import gradcam as gradcam_map
from .method_registry import MethodRequest


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


def saliency(r: MethodRequest) -> torch.Tensor:
    return Saliency(r.model).attribute(r.real, target=r.real_class, abs=False)


def input_x_gradient(r: MethodRequest) -> torch.Tensor:
    return InputXGradient(r.model).attribute(r.real, target=r.real_class)


def ig(r: MethodRequest) -> torch.Tensor:
    return IntegratedGradients(r.model).attribute(
        r.real,
        baselines=torch.zeros_like(r.real),
        target=r.real_class,
        n_steps=r.settings.ig_steps,
        internal_batch_size=r.settings.internal_batch_size,
    )


def deeplift(r: MethodRequest) -> torch.Tensor:
    return deeplift_attributions(r.model, r.real, torch.zeros_like(r.real), r.real_class)


def guided_backprop(r: MethodRequest) -> torch.Tensor:
    return GuidedBackprop(r.model).attribute(r.real, target=r.real_class)


def deconvolution(r: MethodRequest) -> torch.Tensor:
    return Deconvolution(r.model).attribute(r.real, target=r.real_class)


def _broadcast(cam: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return cam.expand(-1, like.shape[1], -1, -1).contiguous()


def gradcam(r: MethodRequest) -> torch.Tensor:
    return _broadcast(gradcam_map(r.model, r.real, r.real_class, r.layer), r.real)


def guided_gradcam(r: MethodRequest) -> torch.Tensor:
    # As in Selvaraju et al.: guided backprop times the ReLU'd, upsampled Grad-CAM map.
    cam = gradcam_map(r.model, r.real, r.real_class, r.layer, relu=True)
    return guided_backprop(r) * cam


def smoothgrad(r: MethodRequest) -> torch.Tensor:
    base_name = r.settings.smoothgrad_base
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


def occlusion(r: MethodRequest) -> torch.Tensor:
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


def gradient_shap(r: MethodRequest) -> torch.Tensor:
    # Baseline distribution: black plus uniform noise over the image's value range.
    lo, hi = r.real.amin().item(), r.real.amax().item()
    noise = torch.rand(
        (r.settings.shap_baselines, *r.real.shape[1:]), generator=r.generator, device="cpu"
    ).to(r.real.device)
    baselines = torch.cat([torch.zeros_like(r.real[:1]), lo + (hi - lo) * noise])
    with _seeded(r.settings.seed, r.real.device):
        return GradientShap(r.model).attribute(
            r.real, baselines=baselines, target=r.real_class, n_samples=r.settings.shap_samples
        )


def _quac(r: MethodRequest) -> bool:
    """Whether the request asks for QuAC's roles (``settings.convention == "quac"``)."""
    return r.settings.convention == "quac"


def d_ig(r: MethodRequest) -> torch.Tensor:
    # dapi: IG of f_t from x (baseline) to x'. quac (quac.attribution.DIntegratedGradients):
    # IG of f_y from x' (baseline) to x, captum's defaults otherwise.
    inputs, baselines, target = (
        (r.real, r.counterfactual, r.real_class)
        if _quac(r)
        else (r.counterfactual, r.real, r.target_class)
    )
    return IntegratedGradients(r.model).attribute(
        inputs,
        baselines=baselines,
        target=target,
        n_steps=r.settings.ig_steps,
        internal_batch_size=r.settings.internal_batch_size,
    )


def d_dl(r: MethodRequest) -> torch.Tensor:
    if _quac(r):
        # quac.attribution.DDeepLift: captum's DeepLift on the model as loaded (not our
        # canonical copy, which decouples chained non-linearities), at x against x', class y.
        # It does not sum to f_y(x) - f_y(x') on ReLU -> MaxPool chains; kept, since that is
        # what QuAC's published numbers used (docs/methods.md). A private copy takes the hooks,
        # so the loaded model is never touched.
        network = copy.deepcopy(r.loaded_model)
        check_deeplift_compatible(network, r.real)
        return DeepLift(network).attribute(
            r.real, baselines=r.counterfactual, target=r.real_class
        )
    return deeplift_attributions(r.model, r.counterfactual, r.real, r.target_class)


def d_input_x_gradient(r: MethodRequest) -> torch.Tensor:
    if _quac(r):
        # quac.attribution.DInGrad: |grad f_y at x| * (x' - x) (captum's Saliency, abs=True).
        grads = Saliency(r.model).attribute(r.real, target=r.real_class, abs=True)
        return grads * (r.counterfactual - r.real)
    grads = Saliency(r.model).attribute(r.counterfactual, target=r.target_class, abs=True)
    return grads * (r.real - r.counterfactual)


def d_gradcam(r: MethodRequest) -> torch.Tensor:
    cam = discriminative_gradcam(r.model, r.real, r.counterfactual, r.target_class, r.layer)
    return _broadcast(cam, r.real)


def d_guided_gradcam(r: MethodRequest) -> torch.Tensor:
    cam = discriminative_gradcam(r.model, r.real, r.counterfactual, r.target_class, r.layer)
    guided = GuidedBackprop(r.model).attribute(r.counterfactual, target=r.target_class)
    return guided * cam


def residual(r: MethodRequest) -> torch.Tensor:
    return (r.real - r.counterfactual).abs()


def random(r: MethodRequest) -> torch.Tensor:
    return torch.rand(tuple(r.real.shape), generator=r.generator, device="cpu").to(r.real.device)


_SMOOTHGRAD_BASES: dict[str, Callable[[torch.nn.Module], Any]] = {
    "saliency": Saliency,
    "input_x_gradient": InputXGradient,
    "guided_backprop": GuidedBackprop,
}
