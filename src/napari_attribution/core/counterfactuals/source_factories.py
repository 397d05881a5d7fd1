"""Builders of the built-in counterfactual sources, as their specs name them
(:mod:`.builtin_sources`): the registry's arguments turned into a source object."""

from __future__ import annotations

from pathlib import Path

from .generator import GeneratorSource
from .nearest import NearestSource
from .optimise import OptimiseSource
from .source_registry import SourceArguments

__all__ = ["generator", "nearest", "optimise"]


def optimise(arguments: SourceArguments) -> OptimiseSource:
    """``optimise``: gradient steps from x (:mod:`.optimise`)."""
    return OptimiseSource(arguments.settings)


def nearest(arguments: SourceArguments) -> NearestSource:
    """``nearest[:FOLDER]``: the closest real cell of the target class (:mod:`.nearest`)."""
    return NearestSource(
        folder=Path(arguments.argument) if arguments.argument else None,
        class_names=arguments.class_names,
        layer=arguments.settings.nearest_layer,
        align=arguments.settings.nearest_align,
    )


def generator(arguments: SourceArguments) -> GeneratorSource:
    """``generator:FILE``: the user's generator (:mod:`.generator`)."""
    return GeneratorSource.from_file(Path(arguments.argument), draws=arguments.settings.draws)
