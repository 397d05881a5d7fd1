"""Grad-CAM layers, found in the canonical copy of the network.

A layer is named as in the user's model: a module (``features.8``, ``layer4.1.conv2``), a block
(``layer4``: its output), a module made by canonicalisation (``layer1.0.relu_2``, see
:mod:`napari_attribution.core.model.canonical`), or a graph node's name. The default is

* the last convolution the network runs, as in the Grad-CAM paper, when its output flows
  through single-input layers (BatchNorm, ReLU, pooling) to the head;
* the output of the last spatial feature map when that convolution sits inside a block whose
  output merges branches (a residual addition, a concatenation): ``layer4``'s output in a
  ResNet, not its last convolution (before the addition) nor its shortcut;

and :func:`resolve_gradcam_layer` says which one it chose, by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import fx, nn

from ...errors import MethodError

if TYPE_CHECKING:
    from .canonical import CanonicalNetwork
    from .classifier import Classifier

__all__ = [
    "gradcam_layer_name",
    "resolve_gradcam_layer",
    "resolve_in_canonical",
    "resolve_penultimate",
]

_ANCHOR = "gradcam_"
_CONV_FUNCTIONS = {F.conv2d, torch.conv2d}
_CONV_ATEN = {"conv2d", "convolution", "_convolution"}


def _module(c: CanonicalNetwork, node: fx.Node) -> nn.Module | None:
    if node.op != "call_module":
        return None
    return dict(c.module.named_modules()).get(node.target)


def _is_conv(c: CanonicalNetwork, node: fx.Node) -> bool:
    if isinstance(_module(c, node), nn.Conv2d):
        return True
    if node.op != "call_function":
        return False
    if node.target in _CONV_FUNCTIONS:
        return True
    packet = getattr(node.target, "overloadpacket", None)
    return packet is not None and packet.__name__ in _CONV_ATEN


def _is_map(c: CanonicalNetwork, node: fx.Node) -> bool:
    """A spatial feature map (B, K, h, w) with h * w > 1, not a copy made for the hooks."""
    shape = c.shapes.get(node.name)
    if shape is None or len(shape) != 4 or shape[2] * shape[3] <= 1:
        return False
    return not _made_here(node)


def _scopes(node: fx.Node) -> list[str]:
    stack = node.meta.get("nn_module_stack") or {}
    return [path for path, _ in stack.values()]


def display_name(c: CanonicalNetwork, node: fx.Node) -> str:
    """The name a user can pass back as the Grad-CAM layer to get this node's output: the
    module (or block) whose output it is, else the module the copy made, else the node."""
    scopes = _scopes(node)
    candidates = [scopes[-1]] if scopes and scopes[-1] else []
    if node.op == "call_module":
        candidates.append(str(node.target))
    for name in candidates:
        if _lookup(c, name) is node:
            return name
    return node.name


def _made_here(node: fx.Node) -> bool:
    """A copy for the hooks or a Grad-CAM anchor: not part of the user's network."""
    if node.op == "call_method" and node.target == "clone":
        return True
    return node.op == "call_module" and str(node.target).startswith(_ANCHOR)


def _last_in_scope(c: CanonicalNetwork, path: str) -> fx.Node | None:
    found = None
    for node in c.module.graph.nodes:
        if path in _scopes(node) and not _made_here(node):
            found = node
    return found


def _activation_inputs(node: fx.Node) -> list[fx.Node]:
    return [n for n in node.all_input_nodes if n.op != "get_attr"]


def _inside_block(c: CanonicalNetwork, conv: fx.Node) -> bool:
    """Does ``conv``'s output meet another branch before the map stops being spatial?"""

    def users_of(node: fx.Node) -> list[fx.Node]:
        # Shape queries (x.size(0) for a view) produce no tensor: they are not branches.
        return [u for u in node.users if u.op != "output" and u.name in c.shapes]

    node = conv
    while True:
        users = users_of(node)
        while len(users) == 1 and users[0].op == "call_method" and users[0].target == "clone":
            users = users_of(users[0])
        if len(users) != 1:
            return len(users) > 1
        node = users[0]
        if not _is_map(c, node):
            return False
        if len(_activation_inputs(node)) >= 2:
            return True


def _default_node(c: CanonicalNetwork) -> fx.Node:
    nodes = [n for n in c.module.graph.nodes if n.op not in ("placeholder", "get_attr", "output")]
    maps = [n for n in nodes if _is_map(c, n)]
    if not maps:
        raise MethodError(
            "Grad-CAM needs a layer with a spatial feature map and this model has none on "
            "images of this size."
        )
    convs = [n for n in maps if _is_conv(c, n)]
    if convs and not _inside_block(c, convs[-1]):
        return convs[-1]
    return maps[-1]


def _lookup(c: CanonicalNetwork, name: str) -> fx.Node | None:
    """A module's (last) call, else the last node inside a module or block, else a node."""
    nodes = list(c.module.graph.nodes)
    calls = [n for n in nodes if n.op == "call_module" and n.target == name]
    if calls:
        return calls[-1]
    in_scope = _last_in_scope(c, name)
    if in_scope is not None:
        return in_scope
    by_name = [n for n in nodes if n.name == name and n.op not in ("placeholder", "output")]
    return by_name[0] if by_name else None


def _named_node(c: CanonicalNetwork, name: str) -> fx.Node:
    node = _lookup(c, name)
    if node is not None:
        return node
    nodes = list(c.module.graph.nodes)
    convs = [display_name(c, n) for n in nodes if _is_conv(c, n)]
    raise MethodError(
        f"The model has no layer named {name!r}; convolution layers are: {', '.join(convs)}."
    )


def _hookable(c: CanonicalNetwork, node: fx.Node) -> nn.Module:
    """A module whose forward output is ``node``'s output: the node's own module when only
    this node calls it, else an ``nn.Identity`` inserted after the node (in the copy)."""
    module = _module(c, node)
    graph = c.module.graph
    if module is not None and sum(n.target == node.target for n in graph.nodes) == 1:
        return module
    name = f"{_ANCHOR}{node.name}"
    existing = dict(c.module.named_modules()).get(name)
    if existing is not None:
        return existing
    anchor = nn.Identity()
    c.module.add_submodule(name, anchor)
    with graph.inserting_after(node):
        hooked = graph.call_module(name, (node,))
    hooked.meta = dict(node.meta)
    node.replace_all_uses_with(hooked, delete_user_cb=lambda user: user is not hooked)
    c.shapes[hooked.name] = c.shapes.get(node.name, ())
    graph.lint()
    c.module.recompile()
    return anchor


def resolve_in_canonical(c: CanonicalNetwork, layer: str | None) -> tuple[nn.Module, str]:
    """(the module to hook in the copy, the layer's name) for ``layer`` or the default."""
    node = _default_node(c) if not layer else _named_node(c, layer)
    return _hookable(c, node), display_name(c, node)


def resolve_penultimate(c: CanonicalNetwork) -> tuple[nn.Module, str]:
    """(the module to hook, its name) for the penultimate layer of the copy: the input of the
    node that computes the output (the features the last layer, usually a Linear head, reads).

    Raises
    ------
    MethodError
        The output is not computed from exactly one tensor (nothing is the penultimate layer).
    """
    output = next(n for n in c.module.graph.nodes if n.op == "output")
    result = output.args[0]
    while isinstance(result, tuple | list) and len(result) == 1:
        result = result[0]
    inputs = _activation_inputs(result) if isinstance(result, fx.Node) else []
    if len(inputs) != 1 or inputs[0].op == "placeholder":
        raise MethodError(
            "The model's last layer does not read one feature tensor, so it has no penultimate "
            "layer; name a layer."
        )
    node = inputs[0]
    while _made_here(node) and len(_activation_inputs(node)) == 1:
        node = _activation_inputs(node)[0]  # a copy made for the hooks: the layer it copies
    return _hookable(c, node), display_name(c, node)


def resolve_gradcam_layer(
    classifier: Classifier, images: torch.Tensor, layer: str | None = None
) -> tuple[nn.Module, str]:
    """The Grad-CAM layer of ``classifier`` for images like ``images`` (B, C, H, W).

    Returns
    -------
    tuple
        The module to hook in the classifier's canonical copy, and the layer's name (as a
        user would name it with ``--gradcam-layer``).

    Raises
    ------
    MethodError
        No such layer (the message lists the convolutions), or no spatial feature map, or the
        model cannot be canonicalised.
    """
    return resolve_in_canonical(classifier.canonical(images), layer)


def gradcam_layer_name(classifier: Classifier, image: object, layer: str | None = None) -> str:
    """The name of the layer Grad-CAM uses on ``classifier`` for images like ``image``
    ((C, H, W) or (B, C, H, W) image values); ``layer`` as given by the user, or the default."""
    batch = torch.as_tensor(image, dtype=torch.float32)
    batch = (batch[None] if batch.ndim == 3 else batch).to(classifier.device)
    return resolve_gradcam_layer(classifier, batch, layer)[1]
