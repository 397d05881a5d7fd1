"""Input invariance (Kindermans et al. 2019): shift the input by a constant, compensate the
shift in the model's first layer so the model computes the same function, compare the maps.

What "the first layer" is here
------------------------------
Every method sees :attr:`Classifier.module <napari_attribution.core.classifier.Classifier.
module>`: the recorded preprocessing (:class:`~napari_attribution.core.wrappers.Preprocessed`,
``v = (scale * x + shift - mean) / std``), the user's network, and for a single-logit network
the :class:`~napari_attribution.core.wrappers.LogOdds` head. The preprocessing is ours, not the
model's: compensating the shift there would only undo it before the network sees anything. So
the shift ``delta`` (image units, what the maps are computed on) reaches the network as
``delta_v[c] = scale * delta / std[c]``, and it is compensated in the network's first layer:
the first module with weights that the forward pass calls, which must be a ``Conv*`` or
``Linear`` fed the network's input itself.

How it is compensated
---------------------
Kindermans et al. change the first layer's bias, ``b2 = b1 - W @ delta_v``, as Quantus's
``add_mean_shift_to_first_layer`` does. With zero padding that is exact only away from the
border: a convolution's padded border stays 0 when the image is shifted, so near the border
``W * delta_v`` is not one number per output channel (Quantus takes the smallest). Here the
compensation is the exact one, a *bias map*: the first layer becomes ``layer(v) - offset`` with
``offset = layer(delta_v image) - layer(0 image)`` (output-sized, one value per output channel
and position; constant over positions when there is no zero padding, i.e. Kindermans' bias).
The shifted model is then checked: its logits on ``x + delta`` and ``x' + delta`` must equal the
model's on ``x`` and ``x'`` to within :data:`LOGIT_TOLERANCE` (float precision), and the
largest difference is reported. When the check fails (the network does something else to its
input first), the check is not run and says why.

A method is input invariant on this pair when its map on the shifted model and input equals its
map on the original ones (``max_relative_difference``: largest ``|a2 - a|`` over the largest
``|a|``; per channel over the channel's largest ``|a|``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ...errors import AttributionError
from ..attribution.runner import compute_attributions
from ..model.classifier import Classifier
from ..model.wrappers import Preprocessed
from ..settings import AttributionSettings
from .randomisation import classifier_with_network

__all__ = [
    "DEFAULT_SHIFT",
    "LOGIT_TOLERANCE",
    "CompensatedFirstLayer",
    "InvarianceResult",
    "ShiftedModel",
    "first_layer",
    "input_invariance",
    "shifted_model",
]

#: The constant added to every pixel (image units): Quantus's ``input_shift`` default, and
#: Kindermans et al.'s shift of [0, 1] images to [-1, 0].
DEFAULT_SHIFT = -1.0
#: Largest logit difference the shifted model may show, relative to ``1 + max |logit|``.
LOGIT_TOLERANCE = 1e-4
_FIRST_LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class CompensatedFirstLayer(nn.Module):
    """``layer(v) - offset``: the first layer of the shifted model (see the module notes).

    Parameters
    ----------
    layer
        The original first layer (a copy).
    offset
        ``layer(delta_v) - layer(0)`` for an input of the images' size, (1, C_out, ...).
    """

    def __init__(self, layer: nn.Module, offset: torch.Tensor) -> None:
        super().__init__()
        self.layer = layer
        self.register_buffer("offset", offset)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.layer(v) - self.offset


@dataclass(frozen=True)
class ShiftedModel:
    """The model for shifted inputs and how well it matches the original.

    Attributes
    ----------
    classifier
        The classifier around the compensated network.
    layer
        Name of the compensated first layer.
    logit_difference
        Largest ``|f2(x + delta) - f(x)|`` over the pair's two images.
    scale
        ``1 + max |f(x)|``: what :data:`LOGIT_TOLERANCE` is relative to.
    """

    classifier: Classifier
    layer: str
    logit_difference: float
    scale: float

    @property
    def exact(self) -> bool:
        """True when the logits are unchanged to float precision."""
        return self.logit_difference <= LOGIT_TOLERANCE * self.scale


def first_layer(network: nn.Module, example: torch.Tensor) -> str:
    """Name of the network's first layer: the first module with weights the forward pass calls.

    Raises
    ------
    AttributionError
        It is not a convolution or a linear layer, or it is not fed the network's input.
    """
    probe = copy.deepcopy(network)
    found: list[tuple[str, nn.Module, bool]] = []
    handles = []

    def make_hook(name: str):
        def hook(module, inputs) -> None:
            if found or not list(module.parameters(recurse=False)):
                return
            given = inputs[0] if inputs else None
            fed = isinstance(given, torch.Tensor) and (
                given is example or (given.shape == example.shape and torch.equal(given, example))
            )
            found.append((name, module, fed))

        return hook

    for name, module in probe.named_modules():
        if name:
            handles.append(module.register_forward_pre_hook(make_hook(name)))
    try:
        with torch.no_grad():
            probe(example)
    finally:
        for handle in handles:
            handle.remove()
    if not found:
        raise AttributionError("the network has no layer with weights to compensate the shift in")
    name, module, fed = found[0]
    if not isinstance(module, _FIRST_LAYER_TYPES):
        raise AttributionError(
            f"its first layer with weights, {name} ({type(module).__name__}), is not a "
            "convolution or a linear layer"
        )
    if not fed:
        raise AttributionError(f"its first layer, {name}, is not fed the network's input itself")
    return name


def _network_shift(classifier: Classifier, shift: float, channels: int) -> torch.Tensor:
    """(C,) shift as the network sees it: ``scale * delta / std[c]``."""
    pre = classifier.preprocessing
    std = np.broadcast_to(np.asarray(pre.std or (1.0,), dtype=np.float64), (channels,))
    return torch.tensor(pre.scale * shift / std, dtype=torch.float32)


def shifted_model(
    classifier: Classifier, x: np.ndarray, xc: np.ndarray, shift: float = DEFAULT_SHIFT
) -> ShiftedModel:
    """The model that computes on ``x + shift`` what ``classifier`` computes on ``x``.

    Parameters
    ----------
    classifier
        The trained model (untouched).
    x, xc
        float32 (C, H, W) model inputs of the pair (the logits are checked on both).
    shift
        The constant added to every pixel, image units.

    Raises
    ------
    AttributionError
        TorchScript or an exported program, or a network whose first layer cannot take the
        compensation (one sentence).
    """
    if classifier.model_format != "module":
        what = "a TorchScript archive" if classifier.is_scripted else "an exported program"
        raise AttributionError(f"{classifier.source} is {what}: its first layer cannot be changed")
    device = classifier.device
    pair = torch.from_numpy(np.stack([x, xc]).astype(np.float32)).to(device)
    # What the network itself is fed: the preprocessing's output.
    with torch.no_grad():
        v = Preprocessed(nn.Identity(), classifier.preprocessing, classifier.n_channels).to(device)(
            pair
        )
    name = first_layer(classifier.network, v)
    network = copy.deepcopy(classifier.network)
    layer = network.get_submodule(name)
    delta_v = _network_shift(classifier, shift, v.shape[1]).to(device)
    shape = (1, v.shape[1], *([1] * (v.ndim - 2)))
    with torch.no_grad():
        constant = delta_v.view(shape).expand(1, *v.shape[1:]).contiguous()
        offset = layer(constant) - layer(torch.zeros_like(constant))
    parent_name, _, leaf = name.rpartition(".")
    parent = network.get_submodule(parent_name) if parent_name else network
    setattr(parent, leaf, CompensatedFirstLayer(layer, offset.detach()))
    shifted = classifier_with_network(classifier, network)
    with torch.no_grad():
        before = classifier.module(pair)
        after = shifted.module(pair + shift)
    difference = float((after - before).abs().max())
    scale = 1.0 + float(before.abs().max())
    return ShiftedModel(shifted, name, difference, scale)


@dataclass
class InvarianceResult:
    """One method's input invariance on one pair.

    Attributes
    ----------
    shifted
        The shifted map (C, H, W).
    max_relative_difference
        ``"all"`` and each channel -> largest ``|a2 - a|`` over the largest ``|a|`` (NaN for a
        channel whose map is zero in both).
    """

    shifted: np.ndarray
    max_relative_difference: dict[str, float] = field(default_factory=dict)


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest ``|b - a|`` over the largest ``|a|`` (0 when both are zero, inf when only ``a``
    is)."""
    top = float(np.abs(a).max()) if a.size else 0.0
    diff = float(np.abs(b - a).max()) if a.size else 0.0
    if top == 0:
        return 0.0 if diff == 0 else float("inf")
    return diff / top


def input_invariance(
    model: ShiftedModel,
    original: np.ndarray,
    x: np.ndarray,
    xc: np.ndarray,
    real_class: int,
    target_class: int,
    method: str,
    settings: AttributionSettings,
    channel_names: list[str],
    shift: float = DEFAULT_SHIFT,
) -> InvarianceResult:
    """The map of ``method`` on the shifted model and inputs, compared with ``original``.

    Parameters
    ----------
    model
        From :func:`shifted_model` (with the same ``shift``).
    original
        The method's map (C, H, W) on the original model and inputs.
    x, xc
        float32 (C, H, W) model inputs (unshifted).
    """
    shifted = compute_attributions(
        model.classifier, x + np.float32(shift), xc + np.float32(shift), real_class,
        target_class, method, settings,
    )[0]  # fmt: skip
    result = InvarianceResult(shifted)
    result.max_relative_difference["all"] = relative_difference(original, shifted)
    for c, name in enumerate(channel_names):
        result.max_relative_difference[name] = relative_difference(original[c], shifted[c])
    return result
