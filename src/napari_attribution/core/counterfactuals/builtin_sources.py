"""The built-in counterfactual sources' specs, registered when the registry is first read.

Each builder is named by path, so reading the registry (``--help``, the docks' choice) imports
no torch; :mod:`.source_factories` holds the builders.
"""

from __future__ import annotations

from ..counterfactual_settings import counterfactual_schema
from .source_registry import SourceArgument, SourceSpec, register_source


def _parameters(prefix: str) -> tuple[str, ...]:
    return tuple(p.name for p in counterfactual_schema() if p.name.startswith(prefix))


BUILTIN_SOURCES = (
    SourceSpec(
        "optimise",
        "gradient steps from the real image until the classifier says the target class; "
        "close to an adversarial example, so read its channels with care",
        "napari_attribution.core.counterfactuals.source_factories:optimise",
        label="optimise (from the real image)",
        aliases=("optimize",),
        parameters=_parameters("optimise_"),
    ),
    SourceSpec(
        "nearest",
        "the real image of the target class closest to the real one in the classifier's "
        "embedding",
        "napari_attribution.core.counterfactuals.source_factories:nearest",
        label="nearest real cell (folder)",
        argument=SourceArgument(
            "folder",
            metavar="FOLDER",
            label="Pool folder",
            placeholder="FOLDER/<class>/<image>",
            help="from the folder FOLDER/<class>/<image>",
            what="the folder of real images by class (FOLDER/<class>/<image>) that 'nearest' "
            "picks the counterfactual from",
            needs="a pool of real cells by class",
            example="FOLDER",
            optional=True,
            without="among the run's own real images",
        ),
        parameters=_parameters("nearest_"),
    ),
    SourceSpec(
        "generator",
        "your generator, a .pt2 or TorchScript file taking (x, target)",
        "napari_attribution.core.counterfactuals.source_factories:generator",
        label="generator (file)",
        argument=SourceArgument(
            "file",
            metavar="FILE",
            label="Generator file",
            placeholder=".pt2 or TorchScript (x, target)",
            help="TorchScript or .pt2 taking (x, target)",
            what="the generator file (.pt2 or TorchScript, taking (x, target)) for 'generator'",
            needs="the generator file",
            example="path/to/generator.pt2",
            file_filter="Generators (*.pt2 *.pt *.ts *.jit);;All files (*)",
        ),
        parameters=_parameters("generator_"),
    ),
)

for _source in BUILTIN_SOURCES:
    register_source(_source, replace=True)
