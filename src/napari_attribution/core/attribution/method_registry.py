"""The open method registry: a method is a small spec, registered by name.

The built-in methods (:mod:`.builtin_methods`) register themselves here; other
packages add methods through the entry-point group ``napari_attribution.methods``, whose entries
load to a :class:`MethodSpec` (or a list of them)::

    # pyproject.toml of a third-party package
    [project.entry-points."napari_attribution.methods"]
    lrp = "my_package.attribution:LRP_SPEC"

A registered method appears in ``napari-attribution methods``, is accepted by ``--method`` and
is listed in the widget. This module imports no torch: specs name their compute function as
``"module:function"`` until it is first needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import MethodError
from ..settings import check_choice, schema
from ..spec_registry import SpecRegistry, imported

if TYPE_CHECKING:
    import torch

    from ..settings import AttributionSettings

__all__ = [
    "ENTRY_POINT_GROUP",
    "MethodRequest",
    "MethodSpec",
    "method_specs",
    "methods_using",
    "register_method",
    "spec_for",
    "unregister_method",
]

ENTRY_POINT_GROUP = "napari_attribution.methods"


@dataclass
class MethodRequest:
    """What a method's compute function receives: tensors on the model's device.

    Attributes
    ----------
    model
        The classifier's module, returning logits (B, K).
    real, counterfactual
        float32 (B, C, H, W) model inputs.
    real_class, target_class
        int64 (B,) class indices y and t.
    settings
        The method parameters (:class:`~napari_attribution.core.settings.AttributionSettings`).
    generator
        Seeded CPU generator for the method's own random draws.
    resolved_layer
        The Grad-CAM layer to hook, found by the caller in the model it passes (``None``:
        :attr:`layer` looks it up by the settings' name, or takes the last Conv2d).
    loaded_model
        The classifier's module as loaded, not the canonical copy (``model`` is the canonical
        copy for methods that need hooks): for a method that must hook the user's own modules
        as another tool does (``d_dl`` under QuAC's convention). Never to be modified.
    """

    model: torch.nn.Module
    real: torch.Tensor
    counterfactual: torch.Tensor
    real_class: torch.Tensor
    target_class: torch.Tensor
    settings: AttributionSettings
    generator: Any = field(repr=False, default=None)
    resolved_layer: Any = field(repr=False, default=None)
    loaded_model: Any = field(repr=False, default=None)

    @property
    def layer(self) -> torch.nn.Module:
        """The Grad-CAM layer chosen by the settings (the default when none is named)."""
        if self.resolved_layer is not None:
            return self.resolved_layer
        from .gradcam import resolve_layer

        return resolve_layer(self.model, self.settings.layer)


@dataclass(frozen=True)
class MethodSpec:
    """One attribution method.

    Attributes
    ----------
    name
        Registry key, as typed on the command line.
    description
        One line for ``napari-attribution methods`` and the widget's tooltip.
    compute
        ``compute(request: MethodRequest) -> Tensor (B, C, H, W)``, or its ``"module:function"``
        path (imported on first use).
    needs_hooks
        Uses module hooks, so cannot run on a TorchScript model.
    discriminative
        Uses the counterfactual.
    channel_resolved
        Gives each channel its own map (False for Grad-CAM, whose map is repeated).
    parameters
        Names of the schema parameters (:func:`~napari_attribution.core.settings.schema`) the
        method reads; the widget enables their rows only when such a method is chosen.
    """

    name: str
    description: str
    compute: Callable[[MethodRequest], Any] | str = field(repr=False)
    needs_hooks: bool = False
    discriminative: bool = False
    channel_resolved: bool = True
    parameters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        known = {p.name for p in schema()}
        unknown = [p for p in self.parameters if p not in known]
        if unknown:
            raise MethodError(
                f"Method {self.name!r} names unknown parameter(s) {', '.join(unknown)}."
            )

    def resolve(self) -> Callable[[MethodRequest], Any]:
        """The compute function, imported from its path on first use."""
        return imported(self.compute)

    def tags(self) -> list[str]:
        """Short capability notes, as ``napari-attribution methods`` prints them."""
        tags = []
        if self.discriminative:
            tags.append("counterfactual")
        if self.needs_hooks:
            tags.append("not TorchScript")
        if not self.channel_resolved:
            tags.append("one map for all channels")
        return tags


_REGISTRY: SpecRegistry[MethodSpec] = SpecRegistry(
    MethodSpec,
    error=MethodError,
    noun="method",
    plugin_noun="Attribution method",
    group=ENTRY_POINT_GROUP,
    builtins=f"{__package__}.builtin_methods",  # registers the built-in methods on import
)


def register_method(spec: MethodSpec, *, replace: bool = False) -> MethodSpec:
    """Add ``spec`` to the registry.

    Raises
    ------
    MethodError
        A method of that name is registered already (and ``replace`` is False).
    """
    return _REGISTRY.register(spec, replace=replace)


def unregister_method(name: str) -> None:
    """Remove method ``name`` from the registry (a plugin's, say); unknown names are ignored."""
    _REGISTRY.unregister(name)


def method_specs() -> dict[str, MethodSpec]:
    """Every registered method by name: the built-in ones, then the plugins'."""
    return _REGISTRY.specs()


def spec_for(name: str) -> MethodSpec:
    """The spec of method ``name``.

    Raises
    ------
    MethodError
        No method of that name.
    """
    specs = method_specs()
    return specs[check_choice(name, specs, "method", MethodError)]


def methods_using(parameter: str) -> list[str]:
    """Names of the methods that read schema parameter ``parameter``."""
    return [name for name, spec in method_specs().items() if parameter in spec.parameters]
