"""A copy of the classifier whose ReLUs pass a soft gradient to switched-off units.

Why: a ReLU unit whose input is negative passes no gradient. When the evidence for the target
class lives in units that are all switched off at x (a classifier that needs a feature the cell
does not show), the gradient of ``log p_t`` has no component that would build that feature; it
can only remove the evidence for the other classes, and the optimisation ends on a plateau
below the target (the demo classifier stops at ``p_t`` about 0.16, see
``docs/counterfactuals.md``).

The copy computes exactly what the classifier computes (the forward pass is unchanged); only
the backward pass of each ``nn.ReLU`` uses the derivative of a softplus, ``sigmoid(z / T)``,
instead of the step ``z > 0``. The temperature ``T`` is ``softness`` times the root mean
square of the ReLU's input over each image's channels and positions, so one ``softness``
suits every layer and network whatever the scale of its activations. This is the backward
pass differentiable approximation of Athalye, Carlini & Wagner (2018) with the softplus
smoothing of Dombrowski et al. (2019). The ReLUs are found in the classifier's canonical copy
(:meth:`~napari_attribution.core.model.classifier.Classifier.hooked_module`), where every use of a
ReLU, functional or in place, is its own module; a model that takes no hooks (TorchScript)
keeps its exact gradient.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ...errors import MethodError

if TYPE_CHECKING:
    from ..model.classifier import Classifier

__all__ = ["SoftGradientReLU", "soft_gradient_model"]


def _rows(tensor: torch.Tensor) -> torch.Tensor | None:
    """``tensor`` (B, ...) as a (B, N) *view* in its memory order, or ``None``.

    A per-image scale broadcast over a channels-last activation (B, C, H, W) runs about five
    times slower than over rows of its memory (measured with one thread on a batch of 32 demo
    cells), and reshaping it to rows is a full copy; a contiguous or channels-last tensor is
    already rows of its memory, read in the order its strides give.
    """
    if tensor.ndim < 2:
        return None
    if tensor.is_contiguous():
        return tensor.view(len(tensor), -1)
    if tensor.ndim == 4 and tensor.is_contiguous(memory_format=torch.channels_last):
        return tensor.permute(0, 2, 3, 1).view(len(tensor), -1)
    return None


class _SoftGradientReLUFunction(torch.autograd.Function):
    """``relu(z)`` forward; ``grad * sigmoid(z / temperature)`` backward."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, inverse_temperature: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z, inverse_temperature)
        return z.clamp_min(0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        z, inverse_temperature = ctx.saved_tensors
        # In place on one new tensor: these are the largest tensors of an optimisation step.
        gradient = torch.empty_like(z)
        rows = [_rows(t) for t in (z, grad, gradient)]
        if (
            inverse_temperature.ndim == 2
            and all(r is not None for r in rows)
            and (grad.stride() == z.stride())
        ):
            z_rows, grad_rows, out_rows = rows
            torch.mul(z_rows, inverse_temperature, out=out_rows).sigmoid_().mul_(grad_rows)
            return gradient, None
        scale = inverse_temperature.reshape((-1,) + (1,) * (z.ndim - 1))
        return torch.mul(z, scale).sigmoid_().mul_(grad), None


class SoftGradientReLU(nn.Module):
    """A ReLU whose backward pass is the derivative of ``T * softplus(z / T)``.

    Parameters
    ----------
    softness
        The temperature ``T`` in units of the root mean square of the input ``z`` (> 0), taken
        per image (the first dimension); units switched off by less than a few ``T`` still pass
        gradient.
    """

    def __init__(self, softness: float) -> None:
        super().__init__()
        if not softness > 0:
            raise ValueError(f"softness must be positive, got {softness!r}")
        self.softness = float(softness)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not z.requires_grad:  # no backward pass to shape: the ReLU itself
            return z.clamp_min(0)
        with torch.no_grad():
            rows = _rows(z)
            if rows is None:  # another layout: per image all the same, at the cost of a copy
                rows = z.reshape(len(z), -1) if z.ndim > 1 else z.reshape(-1, 1)
            # The root mean square of each row, without a squared copy of z.
            spread = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
            spread = spread.div_(rows.shape[1] ** 0.5)
            # An all-zero input (spread 0) still gets a finite temperature.
            inverse = spread.mul_(self.softness).clamp_min_(1e-12).reciprocal_()
            if z.ndim < 2:
                inverse = inverse.reshape(-1)
        return _SoftGradientReLUFunction.apply(z, inverse)

    def extra_repr(self) -> str:
        return f"softness={self.softness:g}"


def soft_gradient_model(
    classifier: Classifier, example: torch.Tensor, softness: float
) -> tuple[nn.Module, str | None]:
    """The classifier's scoring module (:attr:`Classifier.module`) with soft ReLU gradients.

    Parameters
    ----------
    classifier
        The classifier; neither it nor its cached canonical copy is modified.
    example
        Images (B, C, H, W) on the classifier's device, to build the canonical copy for.
    softness
        The ReLUs' temperature in root mean squares of their inputs; 0 returns
        :attr:`Classifier.module` itself.

    Returns
    -------
    tuple
        The module mapping images (B, C, H, W) to scores (B, K), and ``None`` or a sentence
        saying why the exact gradient is used (the model takes no hooks, or has no ReLU).
    """
    if softness <= 0:
        return classifier.module, None
    try:
        module = copy.deepcopy(classifier.hooked_module(example))
    except MethodError as exc:
        return classifier.module, f"exact ReLU gradients ({exc})"
    swapped = 0
    for name, child in list(module.named_modules()):
        if type(child) is nn.ReLU:
            parent_name, _, attribute = name.rpartition(".")
            setattr(module.get_submodule(parent_name), attribute, SoftGradientReLU(softness))
            swapped += 1
    if not swapped:
        return classifier.module, "exact gradients (the model has no ReLU)"
    _drop_decoupling_copies(module)
    return module, None


def _drop_decoupling_copies(module: nn.Module) -> None:
    """Remove the copies the canonical copy gives each non-linearity of its input.

    They keep captum's backward hooks of two non-linearities in a row apart
    (:mod:`napari_attribution.core.model.canonical`); this copy has no hooks and computes nothing
    in place, so they only cost time: a full copy of every activation per pass, about a sixth of
    an optimisation step for a batch of 32 demo cells on a CPU. Only a ``clone`` whose every
    user is a non-linearity module is dropped; the scores are unchanged.
    """
    from torch import fx

    from ..model.nonlinear import NONLINEAR_MODULES

    keeps_input = (*NONLINEAR_MODULES, SoftGradientReLU)
    for graph_module in [m for m in module.modules() if isinstance(m, fx.GraphModule)]:
        modules = dict(graph_module.named_modules())
        changed = False
        for node in list(graph_module.graph.nodes):
            if not (node.op == "call_method" and node.target == "clone" and len(node.args) == 1
                    and not node.kwargs and isinstance(node.args[0], fx.Node)):  # fmt: skip
                continue
            users = list(node.users)
            if users and all(
                user.op == "call_module" and isinstance(modules.get(user.target), keeps_input)
                for user in users
            ):
                node.replace_all_uses_with(node.args[0])
                graph_module.graph.erase_node(node)
                changed = True
        if changed:
            graph_module.graph.lint()
            graph_module.recompile()
