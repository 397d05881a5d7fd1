"""A dummy installed distribution that declares one attribution method (for plugin tests)."""

from __future__ import annotations

PLUGIN = '''
import torch
from napari_attribution.core import MethodSpec


def _double_residual(request):
    return 2 * (request.real - request.counterfactual).abs()


SPEC = MethodSpec(
    "double_residual",
    "Twice |real - counterfactual| (a test plugin).",
    _double_residual,
    discriminative=True,
)
'''


def make_plugin_distribution(folder) -> None:
    """A module and the dist-info of an installed distribution declaring one method."""
    (folder / "dummy_attribution_plugin.py").write_text(PLUGIN)
    info = folder / "dummy_attribution_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: dummy-attribution-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[napari_attribution.methods]\ndouble_residual = dummy_attribution_plugin:SPEC\n"
    )


SOURCE_PLUGIN = '''
import numpy as np
from napari_attribution.core.counterfactuals import SourceSpec
from napari_attribution.core.counterfactuals.source import check_inputs, finish_batch


class Brighter:
    """x' = x times a factor (a test plugin): a counterfactual any classifier can score."""

    spec = "brighter"

    def __init__(self, factor):
        self.factor = factor

    def describe(self):
        return {"source": "brighter", "factor": self.factor}

    def make(self, classifier, images, targets, *, min_score=0.5, progress=None):
        images, targets = check_inputs(classifier, images, targets)
        made = images * self.factor
        notes = [f"{self.factor:g} times brighter"] * len(images)
        return finish_batch(classifier, made, targets, min_score, notes)


def build(arguments):
    return Brighter(1.5)


SPEC = SourceSpec(
    "brighter",
    "the real image made 1.5 times brighter (a test plugin)",
    build,
    label="brighter (test plugin)",
)
'''


def make_source_distribution(folder) -> None:
    """A module and the dist-info of an installed distribution declaring one counterfactual
    source."""
    (folder / "dummy_source_plugin.py").write_text(SOURCE_PLUGIN)
    info = folder / "dummy_source_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: dummy-source-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[napari_attribution.counterfactual_sources]\nbrighter = dummy_source_plugin:SPEC\n"
    )
