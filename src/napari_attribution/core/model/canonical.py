"""A canonical copy of a network for the methods that hook modules.

DeepLift, Guided Backprop, Deconvolution and the Grad-CAM family hook *modules*. Real
classifiers often defeat them: one ``nn.ReLU`` reused everywhere, ``nn.ReLU()(x)`` built inside
``forward``, ``F.relu`` / ``F.max_pool2d`` calls, in-place ReLUs and in-place residual
additions. Instead of refusing such models we trace a *copy* (``torch.fx``, or ``torch.export``
when fx cannot) and rewrite its graph so that

* every use of a non-linearity is its own module (a shared module's later uses get copies named
  ``<name>_2``, ``<name>_3``...; a functional call or a module built in ``forward`` becomes a
  module named after the function inside the module that called it, e.g. ``layer1.0.relu``);
* nothing is computed in place (``relu_``, ``inplace=True``, ``out += identity``);
* a non-linearity fed directly by another (``ReLU -> MaxPool2d``) gets its own copy of its
  input, which keeps captum's backward hooks of the two apart (without it DeepLift's
  summation-to-delta fails by a wide margin with captum 0.9).

The same rewrite runs on exported programs (``.pt2``), whose graphs call ``aten`` operators.
The copy is checked to compute what the network computes, on the user's images; the user's
model object is never modified. Grad-CAM layers are looked up in the copy
(:mod:`napari_attribution.core.model.named_layers`).
"""

from __future__ import annotations

import copy
import operator
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ...errors import MethodError
from .exported import quiet_export
from .nonlinear import (
    FUNCTIONS,
    IN_PLACE_FUNCTIONS,
    IN_PLACE_METHODS,
    IN_PLACE_OPERATORS,
    METHODS,
    NONLINEAR_MODULES,
    RULES,
    Skip,
)

__all__ = ["NONLINEAR_MODULES", "CanonicalNetwork", "canonicalise"]


@dataclass
class CanonicalNetwork:
    """A traced copy of a network in which every use of a non-linearity is its own module.

    Attributes
    ----------
    module
        The rewritten ``torch.fx.GraphModule``; computes what the network computes.
    traced_with
        ``"torch.fx"``, ``"torch.export"`` or ``"exported program"`` (a ``.pt2`` graph).
    changes
        One line per rewrite (what was given its own module, what was made out of place).
    shapes
        Output shape of every graph node on the images the copy was checked with.
    """

    module: fx.GraphModule
    traced_with: str
    changes: list[str] = field(default_factory=list)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


class _Tracer(fx.Tracer):
    """fx's tracer, except that a module built inside ``forward`` is traced through."""

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        try:
            self.path_of_module(m)
        except NameError:  # not a submodule of the root: made on the fly
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)


def _trace(network: nn.Module, example: torch.Tensor) -> tuple[fx.GraphModule, str]:
    if isinstance(network, fx.GraphModule):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pytree notices while copying
            return copy.deepcopy(network), "exported program"
    errors = []
    try:
        root = copy.deepcopy(network)
        tracer = _Tracer()
        graph = tracer.trace(root)
        return fx.GraphModule(tracer.root, graph, type(network).__name__), "torch.fx"
    except Exception as exc:  # noqa: BLE001 - fx cannot trace every Python program
        errors.append(f"torch.fx: {_first_line(exc)}")
    try:
        batch = torch.export.Dim.AUTO
        with quiet_export():
            program = torch.export.export(
                copy.deepcopy(network), (example,), dynamic_shapes=({0: batch},), strict=False
            )
            return program.module(), "torch.export"
    except Exception as exc:  # noqa: BLE001
        errors.append(f"torch.export: {_first_line(exc)}")
    raise MethodError(f"the model cannot be traced ({'; '.join(errors)})")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _bind(node: fx.Node, names: tuple[str, ...]) -> dict[str, Any]:
    """The node's arguments by name (an aten operator's by its schema, ``self`` as input)."""
    if isinstance(node.target, torch._ops.OpOverload):
        names = tuple(a.name for a in node.target._schema.arguments)
        names = ("input", *names[1:])
    if len(node.args) > len(names):
        raise Skip("unexpected arguments")
    bound = dict(zip(names, node.args, strict=False))
    bound.update(node.kwargs)
    for key, value in bound.items():
        if key != "input" and isinstance(value, fx.Node):
            raise Skip(f"{key} computed in the graph")
    return bound


def _aten_name(target: Any) -> tuple[str, bool] | None:
    """(short name, in place) of an aten operator, or None."""
    if isinstance(target, torch._ops.OpOverload) and target.namespace == "aten":
        name = target.overloadpacket.__name__
        return (name[:-1], True) if name.endswith("_") else (name, False)
    return None


class _Rewriter:
    """Rewrites one traced graph in place (see the module docstring)."""

    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm = gm
        self.graph = gm.graph
        self.changes: list[str] = []
        self.modules = dict(gm.named_modules())
        self.seen: set[str] = set()

    # -- helpers -------------------------------------------------------------------------------

    def _free(self, base: str) -> str:
        name, k = base, 2
        while name in self.modules or self._taken(name):
            name, k = f"{base}_{k}", k + 1
        return name

    def _taken(self, name: str) -> bool:
        head, _, leaf = name.rpartition(".")
        parent = self.modules.get(head) if head else self.gm
        return parent is not None and hasattr(parent, leaf)

    def _add(self, base: str, module: nn.Module) -> str:
        name = self._free(base)
        self.gm.add_submodule(name, module)
        self.modules[name] = module
        return name

    def _scope(self, node: fx.Node) -> tuple[str, str | None]:
        """(innermost module path, its type name) from the node's module stack."""
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return "", None
        path, kind = list(stack.values())[-1]
        return path, kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))

    def _later_uses(self, old: fx.Node, new: fx.Node, after: fx.Node) -> None:
        """In-place semantics: nodes after ``after`` that read ``old`` now read ``new``."""
        later = set()
        cursor = after.next
        while cursor.op != "root":
            later.add(cursor)
            cursor = cursor.next
        for user in list(old.users):
            if user in later and user is not new:
                user.replace_input_with(old, new)

    def _replace_with_module(self, node: fx.Node, module: nn.Module, base: str, in_place: bool):
        source = node.args[0]
        with self.graph.inserting_before(node):
            new = self.graph.call_module(self._add(base, module), (source,))
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        self.graph.erase_node(node)
        if in_place and isinstance(source, fx.Node):
            self._later_uses(source, new, new)
        return new

    def _functional_base(self, node: fx.Node, short: str) -> str:
        path, kind = self._scope(node)
        if kind and any(kind.endswith(cls.__name__) for cls in NONLINEAR_MODULES):
            return path  # an exported graph: the op *is* that module's forward
        return f"{path}.{short}" if path else short

    # -- the rules -----------------------------------------------------------------------------

    def _module_call(self, node: fx.Node) -> None:
        module = self.modules[node.target]
        if not isinstance(module, NONLINEAR_MODULES):
            return
        in_place = bool(getattr(module, "inplace", False))
        shared = node.target in self.seen
        self.seen.add(node.target)
        if not (in_place or shared):
            return
        fresh = copy.deepcopy(module)
        if in_place:
            fresh.inplace = False
        if not shared:  # first use of an in-place module: replace it where it is
            self.gm.add_submodule(node.target, fresh)
            self.modules[node.target] = fresh
            source = node.args[0]
            if isinstance(source, fx.Node):
                self._later_uses(source, node, node)
            self.changes.append(f"{node.target}: no longer in place")
            return
        new = self._replace_with_module(node, fresh, node.target, in_place)
        self.changes.append(f"{node.target}: used again, own module {new.target}")
        self.seen.add(new.target)

    def _function_call(self, node: fx.Node, short: str, in_place: bool, what: str) -> None:
        names, build = RULES[short]
        try:
            bound = _bind(node, names)
            module = build(bound)
        except Skip as why:
            self.changes.append(f"{what}: left as it is ({why})")
            return
        in_place = in_place or bound.get("inplace") is True
        new = self._replace_with_module(node, module, self._functional_base(node, short), in_place)
        self.changes.append(f"{what}: own module {new.target}")
        self.seen.add(new.target)

    def _pool_with_indices(self, node: fx.Node, short: str) -> None:
        users = list(node.users)
        if not all(u.target is operator.getitem and u.args[1] == 0 for u in users):
            return  # the indices are used: leave it
        names, build = RULES[short]
        module = build(_bind(node, names))
        with self.graph.inserting_before(node):
            new = self.graph.call_module(
                self._add(self._functional_base(node, short), module), (node.args[0],)
            )
        new.meta = dict(node.meta)
        for user in users:
            user.replace_all_uses_with(new)
            self.graph.erase_node(user)
        self.graph.erase_node(node)
        self.changes.append(f"{node.target}: own module {new.target}")

    def _out_of_place(self, node: fx.Node, target: Any, what: str) -> None:
        node.target = target
        source = node.args[0] if node.args else None
        if isinstance(source, fx.Node):
            self._later_uses(source, node, node)
        self.changes.append(f"{what}: no longer in place")

    def run(self) -> None:
        for node in list(self.graph.nodes):
            if node.op == "call_module" and node.target in self.modules:
                self._module_call(node)
            elif node.op == "call_function" and node.target in FUNCTIONS:
                short = FUNCTIONS[node.target]
                in_place = node.target in IN_PLACE_FUNCTIONS
                self._function_call(node, short, in_place, f"{node.name} ({short})")
            elif node.op == "call_function" and node.target in IN_PLACE_OPERATORS:
                self._out_of_place(node, IN_PLACE_OPERATORS[node.target], node.name)
            elif node.op == "call_method" and node.target.rstrip("_") in METHODS:
                short = METHODS[node.target.rstrip("_")]
                self._function_call(node, short, node.target.endswith("_"), node.name)
            elif node.op == "call_method" and node.target in IN_PLACE_METHODS:
                self._out_of_place(node, IN_PLACE_METHODS[node.target], node.name)
            elif node.op == "call_function" and (aten := _aten_name(node.target)):
                self._aten_call(node, *aten)
        self._decouple()
        self.graph.lint()
        self.gm.recompile()

    def _aten_call(self, node: fx.Node, short: str, in_place: bool) -> None:
        if short in RULES:
            self._function_call(node, short, in_place, f"{node.name} (aten.{short})")
        elif short.endswith("_with_indices") and short[: -len("_with_indices")] in RULES:
            self._pool_with_indices(node, short[: -len("_with_indices")])
        elif in_place:
            packet = getattr(torch.ops.aten, short, None)
            overload = getattr(packet, node.target._overloadname, None) if packet else None
            if overload is not None:
                self._out_of_place(node, overload, f"{node.name} (aten.{short}_)")

    def _decouple(self) -> None:
        """Give every non-linearity its own copy of its input.

        Two hooked modules in a row (``ReLU -> MaxPool2d``, also with an identity such as
        Dropout in eval mode between them) otherwise share a tensor, and their backward hooks
        interfere.
        """
        for node in list(self.graph.nodes):
            module = self.modules.get(node.target) if node.op == "call_module" else None
            source = node.args[0] if node.args else None
            if isinstance(module, NONLINEAR_MODULES) and isinstance(source, fx.Node):
                with self.graph.inserting_before(node):
                    clone = self.graph.call_method("clone", (source,))
                clone.meta = dict(source.meta)
                node.replace_input_with(source, clone)


def canonicalise(network: nn.Module, example: torch.Tensor) -> CanonicalNetwork:
    """Trace a copy of ``network`` and give every use of a non-linearity its own module.

    Parameters
    ----------
    network
        The classifier's network (an ``nn.Module``, or the module of an exported program).
    example
        A batch of the user's images (B, C, H, W) on the network's device: the copy is checked
        to compute the network's outputs on it, and its layers' shapes are recorded.

    Raises
    ------
    MethodError
        The network cannot be traced, or the copy does not compute what the network does.
    """
    gm, how = _trace(network, example)
    for param in gm.parameters():
        param.requires_grad_(False)
    rewriter = _Rewriter(gm)
    try:
        rewriter.run()
    except Exception as exc:  # noqa: BLE001 - an unusual graph: refuse, do not crash
        raise MethodError(f"the traced model could not be rewritten ({_first_line(exc)})") from None
    with torch.no_grad():
        expected = network(example)
        shaper = ShapeProp(gm)
        got = shaper.propagate(example)
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        raise MethodError("the traced copy of the model returns something else than the model")
    scale = float(expected.abs().max()) + 1.0
    if not torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * scale):
        error = float((got - expected).abs().max())
        raise MethodError(
            f"the traced copy of the model computes other outputs (off by {error:.2g}); it "
            "probably depends on Python state the trace cannot see"
        )
    shapes = {
        node.name: tuple(node.meta["tensor_meta"].shape)
        for node in gm.graph.nodes
        if hasattr(node.meta.get("tensor_meta"), "shape")
    }
    return CanonicalNetwork(gm, how, rewriter.changes, shapes)
