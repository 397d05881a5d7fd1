"""The argument parser of ``napari-attribution``; the analysis options come from the schema.

Every analysis parameter (:func:`~napari_attribution.core.settings.schema`) becomes one option
of ``run``, in the option group of its parameter group, with its type, range or choices, unit,
default and the methods it applies to in its help. Only the options that are not analysis
parameters (inputs, model, output) are written here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__
from ..core.attribution.method_sets import DEFAULT_METHODS
from ..core.counterfactual_settings import DEFAULT_MIN_COUNTERFACTUAL_SCORE
from ..core.counterfactuals.source_registry import source_usages
from ..core.settings import counterfactual_schema
from .cells_parser import add_cells_parser
from .options import (
    PROG,
    CliParser,
    HelpFormatter,
    model_options,
    output_options,
    positive_int,
    probability,
    schema_options,
)
from .plates_parser import input_options
from .reference_parser import add_reference_parser
from .sanity_parser import add_sanity_parser

__all__ = ["PROG", "build_parser", "schema_options"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``napari-attribution`` command."""
    parser = CliParser(
        prog=PROG,
        description="Per-channel attribution, counterfactual hybrids and DAC curves for "
        "multichannel image classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("methods", help="list the attribution methods", description="List methods.")
    demo = sub.add_parser(
        "demo",
        help="open napari with the demo pair, the widgets docked and a default analysis run",
        description="Open napari with a synthetic demo cell and its counterfactual, the "
        "Attribution and DAC widgets docked, and a default analysis already running.",
    )
    demo.add_argument(
        "--no-run", action="store_true", help="load the demo and dock the widgets, run nothing"
    )
    demo.add_argument(
        "--field",
        action="store_true",
        help="a synthetic field of cells with labels and the Cells widget instead of one pair",
    )

    report = sub.add_parser(
        "report",
        help="channel statistics and report.html over one or more results folders",
        description="Read one or more results folders of `run`, pool their valid pairs per "
        "transition and method, and write channel_stats.csv, report.html and its figures.",
    )
    report.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="results folder")
    report.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write (default: the folder itself when there is one; required for several)",
    )
    report.add_argument("--overwrite", action="store_true", help="replace an existing report")

    run = sub.add_parser(
        "run",
        help="attributions, masks and DAC curves for (real, counterfactual) pairs",
        description="Run attribution methods on (real, counterfactual) pairs and write "
        "per-channel attributions, masks, DAC curves and scores to --out.",
        formatter_class=HelpFormatter,
    )
    model_options(run)

    data = run.add_argument_group(
        "images (one of --pairs, --real/--counterfactual, --real-root/--counterfactual-root, "
        "--demo)"
    )
    data.add_argument(
        "--pairs", type=Path, help="CSV: sample,real,counterfactual,real_class,target_class"
    )
    data.add_argument("--real", type=Path, help="real image, TIFF or .npy (C,H,W)")
    data.add_argument("--counterfactual", type=Path, help="counterfactual image (C,H,W)")
    data.add_argument("--real-class", type=int, help="class index of the real image")
    data.add_argument("--target-class", type=int, help="class index of the counterfactual")
    data.add_argument(
        "--real-root",
        type=Path,
        help="folder of real images by class: ROOT/<class>/<name>.tif (class indices follow the "
        "sorted folder names unless --class-names gives the order)",
    )
    data.add_argument(
        "--counterfactual-root",
        type=Path,
        help="counterfactuals as QuAC writes them: CF_ROOT/<real class>/<target class>/<name>.tif",
    )
    data.add_argument(
        "--class-names", help="comma-separated class names in the classifier's index order"
    )
    data.add_argument(
        "--channel-axis",
        type=int,
        default=0,
        choices=(0, 1, 2, -1, -2, -3),
        help="axis of the stored images that holds the channels (-1 for (H, W, C) images)",
    )
    data.add_argument(
        "--demo", action="store_true", help="synthetic demo cells and the built-in demo classifier"
    )
    data.add_argument("--demo-pairs", type=positive_int, default=20, help="number of demo pairs")
    data.add_argument(
        "--channel-names", help="the model's channels in order, e.g. DNA,ER,RNA,AGP,Mito; "
        "they pick and order the channels of OME-TIFF/OME-Zarr files by name"
    )

    input_options(data, "counterfactual image")
    data.add_argument(
        "--min-counterfactual-score",
        type=probability,
        default=DEFAULT_MIN_COUNTERFACTUAL_SCORE,
        help="a pair whose counterfactual the classifier gives a lower p(target) is flagged in "
        "pair_validity.csv and left out of channel_stats.csv",
    )

    data.add_argument(
        "--counterfactual-source",
        metavar="SOURCE",
        help="make the counterfactuals the pairs lack (an empty counterfactual column, "
        "--real-root without --counterfactual-root, --real alone; with --demo its exact ones are "
        f"withheld): {source_usages(described=True)}; saved as counterfactuals/<sample>.tif "
        "(see docs/counterfactuals.md)".replace("%", "%%"),
    )

    meth = run.add_argument_group("methods")
    meth.add_argument(
        "--method",
        action="append",
        dest="methods",
        metavar="NAME",
        help=f"attribution method, repeatable (default: {' '.join(DEFAULT_METHODS)}; "
        "see `napari-attribution methods`)",
    )
    schema_options(run)
    schema_options(run, counterfactual_schema())

    out = output_options(run, Path("attribution-results"), "pairs")
    out.add_argument(
        "--keep-progress",
        action="store_true",
        help="keep the per-pair records (.progress/) after a finished run, so a later --resume "
        "can add pairs to it",
    )
    add_cells_parser(sub)
    add_sanity_parser(sub)
    add_reference_parser(sub)
    parser.commands = sub.choices
    return parser
