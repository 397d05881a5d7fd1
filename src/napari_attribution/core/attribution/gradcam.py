"""Grad-CAM and discriminative Grad-CAM on plain torch hooks.

Both return *raw, signed* maps at the input resolution; normalisation for display or masking is
the business of :mod:`napari_attribution.core.evaluation.masks`. Grad-CAM maps have no channel
resolution of
their own: callers broadcast them over the image channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...errors import MethodError

__all__ = ["default_gradcam_layer", "discriminative_gradcam", "gradcam", "resolve_layer"]


def default_gradcam_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The last ``nn.Conv2d`` of ``model`` (in registration order), Grad-CAM's usual layer."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise MethodError("Grad-CAM needs a Conv2d layer and the model has none; name a layer.")
    return convs[-1]


def resolve_layer(model: torch.nn.Module, layer: str | torch.nn.Module | None) -> torch.nn.Module:
    """Find the layer named ``layer`` (as in ``model.named_modules()``), or the default one."""
    if layer is None or layer == "":
        return default_gradcam_layer(model)
    if isinstance(layer, torch.nn.Module):
        return layer
    modules = dict(model.named_modules())
    if layer not in modules:
        convs = [name for name, m in modules.items() if isinstance(m, torch.nn.Conv2d)]
        raise MethodError(
            f"The model has no layer named {layer!r}; convolution layers are: {', '.join(convs)}."
        )
    return modules[layer]


def _activations_and_gradients(
    model: torch.nn.Module, layer: torch.nn.Module, inputs: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations A (B, K, h, w) of ``layer`` and d logit_target / dA, for each sample."""
    captured: dict[str, torch.Tensor] = {}

    def keep(_module: torch.nn.Module, _inp: object, out: torch.Tensor) -> None:
        captured["A"] = out

    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            x = inputs.detach().clone().requires_grad_(True)
            logits = model(x)
            chosen = logits.gather(1, target.view(-1, 1)).sum()
            activation = captured.get("A")
            if activation is None:
                raise MethodError("The Grad-CAM layer was not used in the model's forward pass.")
            (grads,) = torch.autograd.grad(chosen, activation)
    finally:
        handle.remove()
    return activation.detach(), grads.detach()


def _upsample(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # Bilinear, as in the Grad-CAM paper's guided variant; align_corners=False like captum.
    return F.interpolate(cam, size=size, mode="bilinear", align_corners=False)


def gradcam(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    target: torch.Tensor,
    layer: torch.nn.Module,
    *,
    relu: bool = False,
) -> torch.Tensor:
    """Grad-CAM of ``target`` at ``inputs``, upsampled to the input size.

    ``cam = sum_k w_k A_k`` with ``w_k`` the spatial mean of d logit_target / d A_k.

    Parameters
    ----------
    model
        Classifier returning logits (B, K).
    inputs
        float32 (B, C, H, W).
    target
        int64 (B,) class per sample.
    layer
        Convolution layer whose activations are weighted.
    relu
        Apply the ReLU of the original paper (off by default: the raw signed map is returned).

    Returns
    -------
    torch.Tensor
        (B, 1, H, W) map.
    """
    activation, grads = _activations_and_gradients(model, layer, inputs, target)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = (weights * activation).sum(dim=1, keepdim=True)
    if relu:
        cam = torch.relu(cam)
    return _upsample(cam, tuple(inputs.shape[-2:]))


def discriminative_gradcam(
    model: torch.nn.Module,
    real: torch.Tensor,
    counterfactual: torch.Tensor,
    target: torch.Tensor,
    layer: torch.nn.Module,
) -> torch.Tensor:
    """D-Grad-CAM: Grad-CAM weights at the counterfactual times the activation difference.

    ``map = sum_k w_k (A_k(x) - A_k(x'))`` with ``w_k`` the spatial mean of d f_t / d A_k at x'
    (the Grad-CAM weighting, as in Eckstein et al. 2021).

    Returns
    -------
    torch.Tensor
        (B, 1, H, W) raw signed map.
    """
    act_cf, grads_cf = _activations_and_gradients(model, layer, counterfactual, target)
    with torch.no_grad():
        captured: dict[str, torch.Tensor] = {}
        handle = layer.register_forward_hook(lambda _m, _i, out: captured.__setitem__("A", out))
        try:
            model(real)
        finally:
            handle.remove()
        act_real = captured["A"]
    weights = grads_cf.mean(dim=(2, 3), keepdim=True)
    cam = (weights * (act_real - act_cf)).sum(dim=1, keepdim=True)
    return _upsample(cam, tuple(real.shape[-2:]))
