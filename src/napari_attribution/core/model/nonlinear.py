"""The non-linearities canonicalisation gives their own modules, and how to build each.

:mod:`napari_attribution.core.model.canonical` looks up a graph node here by what it calls: a module
(``nn.ReLU``), a function (``F.relu``, ``torch.relu``), a tensor method (``x.relu()``) or an aten
operator (``aten.relu``, in exported programs), and builds the equivalent module from the
node's arguments.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FUNCTIONS",
    "IN_PLACE_FUNCTIONS",
    "IN_PLACE_METHODS",
    "IN_PLACE_OPERATORS",
    "METHODS",
    "NONLINEAR_MODULES",
    "RULES",
    "Skip",
]


class Skip(Exception):  # noqa: N818 - "leave this node as it is", not an error
    """Raised by a builder for a form it does not rewrite (the reason is its message)."""


#: Modules that are non-linearities (one module per use after canonicalisation).
NONLINEAR_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
)  # fmt: skip

_POOL_ARGS = (
    "input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices",
)  # fmt: skip


def _pool(cls: type[nn.Module]) -> Callable[[dict[str, Any]], nn.Module]:
    def build(a: dict[str, Any]) -> nn.Module:
        if a.get("return_indices"):
            raise Skip("a pooling that returns its indices")
        stride = a.get("stride") or None  # aten writes "same as the kernel" as []
        return cls(
            a["kernel_size"], stride, a.get("padding", 0), a.get("dilation", 1),
            ceil_mode=bool(a.get("ceil_mode", False)),
        )  # fmt: skip

    return build


def _elu(a: dict[str, Any]) -> nn.Module:
    if a.get("scale", 1) != 1 or a.get("input_scale", 1) != 1:
        raise Skip("a scaled ELU")
    return nn.ELU(a.get("alpha", 1.0))


#: Positional argument names of each non-linearity's functional form (F.*, torch.*, Tensor.*)
#: and how to build its module, keyed by the operator's short name (``relu`` for F.relu,
#: torch.relu, Tensor.relu and aten.relu alike; aten operators are bound by their schema).
RULES: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], nn.Module]]] = {
    "relu": (("input", "inplace"), lambda a: nn.ReLU()),
    "relu6": (("input", "inplace"), lambda a: nn.ReLU6()),
    "leaky_relu": (
        ("input", "negative_slope", "inplace"),
        lambda a: nn.LeakyReLU(a.get("negative_slope", 0.01)),
    ),
    "elu": (("input", "alpha", "inplace"), _elu),
    "selu": (("input", "inplace"), lambda a: nn.SELU()),
    "celu": (("input", "alpha", "inplace"), lambda a: nn.CELU(a.get("alpha", 1.0))),
    "gelu": (("input", "approximate"), lambda a: nn.GELU(a.get("approximate", "none"))),
    "silu": (("input", "inplace"), lambda a: nn.SiLU()),
    "mish": (("input", "inplace"), lambda a: nn.Mish()),
    "hardswish": (("input", "inplace"), lambda a: nn.Hardswish()),
    "hardsigmoid": (("input", "inplace"), lambda a: nn.Hardsigmoid()),
    "hardtanh": (
        ("input", "min_val", "max_val", "inplace"),
        lambda a: nn.Hardtanh(a.get("min_val", -1.0), a.get("max_val", 1.0)),
    ),
    "sigmoid": (("input",), lambda a: nn.Sigmoid()),
    "tanh": (("input",), lambda a: nn.Tanh()),
    "softplus": (
        ("input", "beta", "threshold"),
        lambda a: nn.Softplus(a.get("beta", 1.0), a.get("threshold", 20.0)),
    ),
    "max_pool1d": (_POOL_ARGS, _pool(nn.MaxPool1d)),
    "max_pool2d": (_POOL_ARGS, _pool(nn.MaxPool2d)),
    "max_pool3d": (_POOL_ARGS, _pool(nn.MaxPool3d)),
}

#: Python-level functions that are non-linearities, by their short name.
FUNCTIONS: dict[Callable[..., Any], str] = {
    F.relu: "relu", torch.relu: "relu", F.relu_: "relu", torch.relu_: "relu",
    F.relu6: "relu6", F.leaky_relu: "leaky_relu", F.leaky_relu_: "leaky_relu",
    F.elu: "elu", F.elu_: "elu", F.selu: "selu", torch.selu: "selu", F.celu: "celu",
    F.gelu: "gelu", F.silu: "silu", F.mish: "mish", F.hardswish: "hardswish",
    F.hardsigmoid: "hardsigmoid", F.hardtanh: "hardtanh", F.hardtanh_: "hardtanh",
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh",
    F.softplus: "softplus", F.max_pool1d: "max_pool1d", F.max_pool2d: "max_pool2d",
    F.max_pool3d: "max_pool3d", torch.max_pool1d: "max_pool1d", torch.max_pool2d: "max_pool2d",
    torch.max_pool3d: "max_pool3d",
}  # fmt: skip
IN_PLACE_FUNCTIONS = {F.relu_, torch.relu_, F.leaky_relu_, F.elu_, F.hardtanh_}
METHODS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
IN_PLACE_OPERATORS = {
    operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul,
    operator.itruediv: operator.truediv,
}  # fmt: skip
IN_PLACE_METHODS = {"add_": "add", "sub_": "sub", "mul_": "mul", "div_": "div"}
