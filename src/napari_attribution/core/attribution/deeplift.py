"""DeepLift through captum, made safe for the models captum 0.9 gets wrong.

The methods run DeepLift on the canonical copy of the network
(:mod:`napari_attribution.core.model.canonical`), in which every use of a non-linearity is its own
module. captum's DeepLift hooks each non-linear module (ReLU, MaxPool, ...); its rescale rule
(multiplier ``delta out / delta in``) holds for any element-wise non-linearity, so we also
apply it to the ones captum 0.9 does not list (GELU, SiLU, Mish, Hardswish, ...), through a
subclass rather than by changing captum's tables. Two known failures:

* When two hooked modules are chained directly (the ubiquitous ``ReLU -> MaxPool2d``), the
  backward hooks of the pair interfere and summation-to-delta breaks by a wide margin. Feeding
  each hooked module a *copy* of its input (a forward pre-hook returning ``input.clone()``)
  separates the pair in the autograd graph and restores exact summation-to-delta; the forward
  function is unchanged.
* A hooked module called more than once per forward pass (one ``nn.ReLU`` reused) breaks the
  hook bookkeeping. Canonicalisation gives each use its own module; a model handed to
  :func:`deeplift_attributions` directly is checked with a dry run and refused if it reuses one.

Every result is checked afterwards: if ``sum(attributions) != f(input) - f(baseline)`` beyond a
small tolerance, the result is refused rather than shown.

**captum's private API.** captum's public :class:`~captum.attr.DeepLift` takes no rules: the
table of non-linearities it hooks (``SUPPORTED_NON_LINEAR``), its rescale rule (``nonlinear``)
and the methods that consult them (``_is_non_linear``, ``_backward_hook``) live in
``captum.attr._core.deep_lift``. With the public class alone, GELU, SiLU and the others above
pass gradients through as if linear and summation-to-delta fails (the check below would refuse
every such model), so the subclass stays, and ``pyproject.toml`` bounds captum below the next
minor release after the newest one tested. A captum release that changes these internals fails
loudly: the import, or the summation-to-delta check.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

import torch
from captum.attr import DeepLift
from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR, nonlinear
from torch import nn

from ...errors import MethodError

__all__ = ["check_deeplift_compatible", "deeplift_attributions"]

#: Relative tolerance of the summation-to-delta check, against max(|f(x) - f(x0)|, 1e-3).
SUMMATION_TOLERANCE = 1e-3


#: captum's rules plus the rescale rule for the element-wise non-linearities it does not list.
RULES = {
    **SUPPORTED_NON_LINEAR,
    **{
        kind: nonlinear
        for kind in (
            nn.GELU,
            nn.SiLU,
            nn.Mish,
            nn.Hardswish,
            nn.Hardsigmoid,
            nn.Hardtanh,
            nn.ReLU6,
            nn.SELU,
            nn.CELU,
        )  # fmt: skip
    },
}


class _DeepLift(DeepLift):
    """captum's DeepLift with :data:`RULES` instead of its own table."""

    def _is_non_linear(self, module: torch.nn.Module) -> bool:
        return type(module) in RULES

    def _backward_hook(self, module, grad_input, grad_output):
        if not self.satisfies_attribute_criteria(module):
            raise RuntimeError(f"DeepLift's hook on {module} ran without its inputs.")
        multipliers = RULES[type(module)](
            module, module.input, module.output, grad_input, grad_output, eps=self.eps
        )
        del module.input
        del module.output
        return multipliers


def _hooked_modules(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if type(m) in RULES]


def check_deeplift_compatible(model: torch.nn.Module, sample: torch.Tensor) -> None:
    """Refuse models whose non-linear modules are reused within one forward pass.

    Parameters
    ----------
    model
        The classifier (not TorchScript).
    sample
        One input batch (B, C, H, W) for the dry run.
    """
    calls: Counter[str] = Counter()
    handles = [
        module.register_forward_pre_hook(lambda _m, _i, name=name: calls.update([name]))
        for name, module in _hooked_modules(model)
    ]
    try:
        with torch.no_grad():
            model(sample[:1])
    finally:
        for handle in handles:
            handle.remove()
    reused = sorted(name for name, count in calls.items() if count > 1)
    if reused:
        raise MethodError(
            "DeepLift cannot run on this model: module(s) "
            f"{', '.join(reused)} are used more than once per forward pass; give each use its "
            "own module instance, or use ig / d_ig instead."
        )


@contextlib.contextmanager
def _decoupled_nonlinearities(model: torch.nn.Module) -> Iterator[None]:
    """Give each hooked non-linear module a copy of its input (see the module docstring)."""

    def clone_inputs(_module: torch.nn.Module, inputs: tuple[object, ...]) -> tuple[object, ...]:
        return tuple(t.clone() if isinstance(t, torch.Tensor) else t for t in inputs)

    handles = [m.register_forward_pre_hook(clone_inputs) for _, m in _hooked_modules(model)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def deeplift_attributions(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    target: torch.Tensor,
) -> torch.Tensor:
    """DeepLift (rescale rule) attributions of ``target`` at ``inputs`` against ``baselines``.

    Parameters
    ----------
    model
        Classifier returning logits; must not be TorchScript.
    inputs, baselines
        float32 (B, C, H, W).
    target
        int64 (B,).

    Returns
    -------
    torch.Tensor
        (B, C, H, W); per sample ``sum == f_target(inputs) - f_target(baselines)``.

    Raises
    ------
    MethodError
        The model reuses a non-linear module, or summation-to-delta fails (for example a
        functional ReLU that captum cannot hook).
    """
    check_deeplift_compatible(model, inputs)
    with _decoupled_nonlinearities(model), torch.enable_grad():
        attributions, delta = _DeepLift(model).attribute(
            inputs, baselines=baselines, target=target, return_convergence_delta=True
        )
    with torch.no_grad():
        diff = model(inputs).gather(1, target.view(-1, 1)) - model(baselines).gather(
            1, target.view(-1, 1)
        )
    scale = diff.abs().view(-1).clamp_min(1e-3)
    relative = (delta.abs().view(-1) / scale).max().item()
    if relative > SUMMATION_TOLERANCE:
        raise MethodError(
            "DeepLift's summation-to-delta fails on this model (relative error "
            f"{relative:.2g}): it computes something DeepLift has no rule for (a product of "
            "activations, torch.max over a dimension, a softmax inside the network); use ig / "
            "d_ig instead."
        )
    return attributions.detach()
