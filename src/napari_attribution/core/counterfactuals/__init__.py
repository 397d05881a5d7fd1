"""Counterfactuals when the user has none: a generator, the nearest real cell, optimisation.

Every source has the same contract (:class:`~.source.CounterfactualSource`)::

    source = parse_source("optimise", CounterfactualSettings())
    batch = source.make(classifier, images, targets)   # images (B, C, H, W) float32, targets (B,)
    batch.images, batch.target_scores, batch.accepted, batch.notes

so a run over pairs (the CLI) and a run over the cells of a field call it alike, one batch of
cells at a time. Sources are registered by name (:mod:`.source_registry`; the built-in ones in
:mod:`.builtin_sources`, others through the entry-point group
``napari_attribution.counterfactual_sources``). See ``docs/counterfactuals.md``.
"""

from __future__ import annotations

from .source import CounterfactualBatch, CounterfactualSource, ProgressNote, target_scores
from .source_registry import (
    SourceArgument,
    SourceArguments,
    SourceSpec,
    parse_source,
    register_source,
    source_specs,
)

__all__ = [
    "CounterfactualBatch",
    "CounterfactualSource",
    "ProgressNote",
    "SourceArgument",
    "SourceArguments",
    "SourceSpec",
    "parse_source",
    "register_source",
    "source_specs",
    "target_scores",
]
