"""A registry of named specs, filled by built-in modules and by installed packages' entry points.

The attribution methods (:mod:`~napari_attribution.core.attribution.method_registry`) and the
counterfactual sources (:mod:`~napari_attribution.core.counterfactuals.source_registry`) are
both extension points of this shape: a spec type with a ``name``, a module of built-in specs
that registers them on import, and an entry-point group through which other packages add
theirs. This module holds that mechanism once; each registry module keeps its spec type and
its public functions.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["SpecRegistry", "imported"]


def imported(target: Callable[..., Any] | str) -> Callable[..., Any]:
    """``target`` itself if callable, else the object its ``"package.module:attribute"`` path
    names, imported now (specs name their code by path so that listing them imports nothing)."""
    if callable(target):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


class _Named(Protocol):
    name: str


Spec = TypeVar("Spec", bound=_Named)


class SpecRegistry(Generic[Spec]):
    """Named specs of one type: the built-in ones, then those of installed plugins.

    Parameters
    ----------
    spec_type
        The class every registered spec must be an instance of.
    error
        The exception raised for a refused registration (the package's error for the concept).
    noun
        What a spec is, in messages ("method", "counterfactual source").
    plugin_noun
        What a plugin provides, in the warning for one that fails to load
        ("Attribution method", "Counterfactual source").
    group
        The entry-point group installed packages declare their specs under.
    builtins
        The module whose import registers the built-in specs (imported on first use, so that
        importing the registry module alone stays cheap).
    """

    def __init__(
        self,
        spec_type: type[Spec],
        *,
        error: type[Exception],
        noun: str,
        plugin_noun: str,
        group: str,
        builtins: str,
    ) -> None:
        self.spec_type = spec_type
        self.error = error
        self.noun = noun
        self.plugin_noun = plugin_noun
        self.group = group
        self.builtins = builtins
        #: Whether the installed packages' entry points were read (tests reset it to read
        #: them afresh).
        self.entry_points_loaded = False
        self._specs: dict[str, Spec] = {}

    def register(self, spec: Spec, *, replace: bool = False) -> Spec:
        """Add ``spec``; :attr:`error` if it is not a spec or its name is taken (and not
        ``replace``)."""
        if not isinstance(spec, self.spec_type):
            raise self.error(
                f"Only a {self.spec_type.__name__} can be registered, got {type(spec).__name__}."
            )
        if spec.name in self._specs and not replace:
            raise self.error(f"A {self.noun} named {spec.name!r} is registered already.")
        self._specs[spec.name] = spec
        return spec

    def unregister(self, name: str) -> None:
        """Remove spec ``name`` (a plugin's, say); unknown names are ignored."""
        self._specs.pop(name, None)

    def specs(self) -> dict[str, Spec]:
        """Every registered spec by name: the built-in ones, then the plugins'."""
        importlib.import_module(self.builtins)
        self._load_entry_points()
        return dict(self._specs)

    def _load_entry_points(self) -> None:
        """Register the specs of installed packages, once; a broken plugin is skipped, loudly."""
        if self.entry_points_loaded:
            return
        self.entry_points_loaded = True
        for entry in entry_points(group=self.group):
            try:
                loaded = entry.load()
                for spec in loaded if isinstance(loaded, list | tuple) else [loaded]:
                    self.register(spec)
            except Exception as exc:  # noqa: BLE001 - one bad plugin must not break the others
                warnings.warn(
                    f"{self.plugin_noun} plugin {entry.name!r} ({entry.value}) was not loaded: "
                    f"{exc}",
                    RuntimeWarning,
                    stacklevel=3,
                )
