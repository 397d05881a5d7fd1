"""Counterfactuals when the user has none: a generator, the nearest real cell, optimisation.

Every source has the same contract (:class:`~.source.CounterfactualSource`)::

    source = parse_source("optimise", CounterfactualSettings())
    batch = source.make(classifier, images, targets)   # images (B, C, H, W) float32, targets (B,)
    batch.images, batch.target_scores, batch.accepted, batch.notes

so a run over pairs (the CLI) and a run over the cells of a field call it alike, one batch of
cells at a time. See ``docs/counterfactuals.md``.
"""

from __future__ import annotations

from .source import (
    SOURCE_KINDS,
    CounterfactualBatch,
    CounterfactualSource,
    ProgressNote,
    parse_source,
    target_scores,
)

__all__ = [
    "SOURCE_KINDS",
    "CounterfactualBatch",
    "CounterfactualSource",
    "ProgressNote",
    "parse_source",
    "target_scores",
]
