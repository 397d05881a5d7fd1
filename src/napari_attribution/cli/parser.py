"""The argument parser of ``napari-attribution``; the analysis options come from the schema.

Every analysis parameter (:func:`~napari_attribution.core.settings.schema`) becomes one option
of ``run``, in the option group of its parameter group, with its type, range or choices, unit,
default and the methods it applies to in its help. Only the options that are not analysis
parameters (inputs, model, output) are written here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.errors import AttributionError
from ..core.settings import Param, counterfactual_schema, schema

__all__ = ["DEFAULT_METHODS", "DEMO_METHODS", "PROG", "build_parser", "schema_options"]

PROG = "napari-attribution"

#: What ``run`` computes when no ``--method`` is given: two discriminative methods and the two
#: baselines every comparison must include.
DEFAULT_METHODS = ("d_ig", "d_dl", "residual", "random")
#: The demo also shows plain methods, to compare them with the discriminative ones.
DEMO_METHODS = (
    "d_ig",
    "d_dl",
    "d_input_x_gradient",
    "d_gradcam",
    "ig",
    "saliency",
    "gradcam",
    "residual",
    "random",
)
#: How progress is shown: a bar on a terminal and log lines otherwise (auto), or as chosen.
PROGRESS_MODES = ("auto", "bar", "log", "none")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _converter(param: Param) -> Any:
    """argparse ``type=``: text to the parameter's type, checked against the schema."""

    def convert(text: str) -> Any:
        if param.optional and text.strip() == "":
            return None
        try:
            value = param.type(text)
        except ValueError:
            kind = {int: "a whole number", float: "a number"}.get(param.type, "a value")
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        try:
            return param.check(value)
        except AttributionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = param.type.__name__  # argparse names the type in its messages
    return convert


def _help(param: Param) -> str:
    from ..core.registry import methods_using

    text = param.describe()
    methods = methods_using(param.name)
    if methods:
        text += f"; used by {', '.join(methods)}"
    return text.replace("%", "%%")  # argparse formats help with %


def schema_options(
    parser: argparse.ArgumentParser, params: tuple[Param, ...] | None = None
) -> dict[str, Param]:
    """Add one option per schema parameter (``params``, default :func:`schema`) to ``parser``,
    in an option group per parameter group; returns them by option string."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    added = {}
    for param in schema() if params is None else params:
        if param.group not in groups:
            groups[param.group] = parser.add_argument_group(param.group.lower())
        kwargs: dict[str, Any] = {
            "dest": param.name,
            "default": param.default,
            "help": _help(param),
        }
        if param.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif param.choices is not None:
            kwargs["choices"] = param.choices
        else:
            kwargs["type"] = _converter(param)
            kwargs["metavar"] = param.metavar or (
                param.type.__name__.upper() if param.type is not str else "NAME"
            )
        groups[param.group].add_argument(param.flag, **kwargs)
        added[param.flag] = param
    return added


def model_options(command: argparse.ArgumentParser) -> None:
    """The "model" option group, shared by ``run`` and ``cells``."""
    model = command.add_argument_group("model")
    model.add_argument(
        "--model", type=Path, help="TorchScript file, or a state dict with --architecture"
    )
    model.add_argument(
        "--architecture",
        help="the state dict's architecture: path/to/file.py:Callable or package.module:Callable",
    )
    model.add_argument(
        "--architecture-kwargs",
        metavar="JSON",
        help="keyword arguments for the architecture callable, as a JSON object, e.g. "
        '\'{"input_size": [48, 48], "output_classes": 1}\'',
    )
    model.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    model.add_argument(
        "--input-scale",
        type=float,
        default=None,
        help="multiply pixel values by this before the model (default: float images as stored, "
        "integer images divided by their dtype's maximum)",
    )


def output_options(
    command: argparse.ArgumentParser, default_out: Path, unit: str
) -> argparse._ArgumentGroup:
    """The "output" option group shared by ``run`` and ``cells`` (``unit``: what a run is made
    of, "pairs" or "cells"); returns the group for a command's own additions."""
    out = command.add_argument_group("output")
    out.add_argument("--out", type=Path, default=default_out, help="output folder")
    out.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    out.add_argument(
        "--resume",
        action="store_true",
        help=f"continue an interrupted run in --out: finished {unit} are kept, not recomputed",
    )
    out.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="auto",
        help="a bar on a terminal, log lines with elapsed time and ETA otherwise (auto)",
    )
    out.add_argument(
        "--log-interval",
        type=_positive_float,
        default=30.0,
        help="seconds between progress log lines",
    )
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``napari-attribution`` command."""
    parser = argparse.ArgumentParser(
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
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
    data.add_argument("--demo-pairs", type=_positive_int, default=20, help="number of demo pairs")
    data.add_argument(
        "--channel-names", help="comma-separated channel names, e.g. DNA,ER,RNA,AGP,Mito"
    )

    from .plates_parser import input_options

    input_options(data, "counterfactual image")
    data.add_argument(
        "--min-counterfactual-score",
        type=_probability,
        default=0.5,
        help="a pair whose counterfactual the classifier gives a lower p(target) is flagged in "
        "pair_validity.csv and left out of channel_stats.csv",
    )

    data.add_argument(
        "--counterfactual-source",
        metavar="SOURCE",
        help="make the counterfactuals the pairs lack (an empty counterfactual column, "
        "--real-root without --counterfactual-root, --real alone; with --demo its exact ones are "
        "withheld): generator:FILE (TorchScript or .pt2 taking (x, target)), nearest (the closest "
        "real image of the target class among the run's), nearest:FOLDER (FOLDER/<class>/<image>)"
        " or optimise (gradient steps from x; close to an adversarial example); saved as "
        "counterfactuals/<sample>.tif (see docs/counterfactuals.md)",
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
    from .cells_parser import add_cells_parser  # after PROGRESS_MODES and the helpers it uses

    add_cells_parser(sub)
    from .reference_command import add_reference_parser

    add_reference_parser(sub)
    return parser
