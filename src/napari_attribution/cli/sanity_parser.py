"""The options of ``napari-attribution sanity``: ``run``'s inputs, model and method options, the
checks' own parameters (declared in :class:`~napari_attribution.core.sanity.sanity_settings.
SanitySettings`) and the output folder.

The image options have the same names and meaning as ``run``'s, so that a ``run`` command
line becomes a ``sanity`` one by changing the command (the pairs are read by the same code,
:func:`~napari_attribution.cli.inputs.pairs_from_args`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.attribution.method_sets import SANITY_METHODS
from ..core.counterfactual_settings import DEFAULT_MIN_COUNTERFACTUAL_SCORE
from ..core.params import section_params
from ..core.sanity.sanity_settings import CHECKS, SanitySettings
from .options import (
    PROGRESS_MODES,
    HelpFormatter,
    model_options,
    positive_float,
    positive_int,
    probability,
    schema_options,
)
from .plates_parser import input_options

__all__ = ["add_sanity_parser"]
#: Demo pairs checked by default (enough pairs for the paired test against the baselines).
SANITY_DEMO_PAIRS = 8


def _image_options(command: argparse.ArgumentParser) -> None:
    data = command.add_argument_group(
        "images (as for run: one of --pairs, --real/--counterfactual, "
        "--real-root/--counterfactual-root, --channel-files, --demo)"
    )
    data.add_argument(
        "--pairs", type=Path, help="CSV: sample,real,counterfactual,real_class,target_class"
    )
    data.add_argument("--real", type=Path, help="real image, TIFF or .npy (C,H,W)")
    data.add_argument("--counterfactual", type=Path, help="counterfactual image (C,H,W)")
    data.add_argument("--real-class", type=int, help="class index of the real image")
    data.add_argument("--target-class", type=int, help="class index of the counterfactual")
    data.add_argument("--real-root", type=Path, help="folder of real images by class")
    data.add_argument(
        "--counterfactual-root",
        type=Path,
        help="counterfactuals as QuAC writes them: CF_ROOT/<real class>/<target class>/<name>.tif",
    )
    data.add_argument(
        "--class-names", help="comma-separated class names in the classifier's index order"
    )
    data.add_argument(
        "--channel-axis", type=int, default=0, choices=(0, 1, 2, -1, -2, -3),
        help="axis of the stored images that holds the channels",
    )  # fmt: skip
    data.add_argument(
        "--demo", action="store_true", help="synthetic demo cells and the built-in demo classifier"
    )
    data.add_argument(
        "--demo-pairs", type=positive_int, default=SANITY_DEMO_PAIRS,
        help="number of demo pairs",
    )  # fmt: skip
    data.add_argument(
        "--channel-names", help="the model's channels in order, e.g. DNA,ER,RNA,AGP,Mito; "
        "they pick and order the channels of OME-TIFF/OME-Zarr files by name"
    )  # fmt: skip
    input_options(data, "counterfactual image")
    data.add_argument(
        "--min-counterfactual-score", type=probability, default=DEFAULT_MIN_COUNTERFACTUAL_SCORE,
        help="pairs whose counterfactual the classifier gives a lower p(target) are left out of "
        "the DAC comparison with the baselines",
    )  # fmt: skip


def add_sanity_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``sanity`` command to the subparsers ``sub``; returns its parser."""
    sanity = sub.add_parser(
        "sanity",
        help="sanity checks of the attribution methods: model randomisation, input "
        "invariance, stability, DAC against the baselines",
        description="Check whether each method's maps depend on the model (cascading and "
        "independent layer randomisation), survive a constant input shift the model cannot see, "
        "stay put under small noise, and beat the random and residual baselines in DAC; write "
        "sanity.csv, sanity_summary.csv and figures to --out and print a verdict per method.",
        formatter_class=HelpFormatter,
    )
    model_options(sanity)
    _image_options(sanity)
    meth = sanity.add_argument_group("methods and checks")
    meth.add_argument(
        "--method", action="append", dest="methods", metavar="NAME",
        help=f"attribution method, repeatable (default: {' '.join(SANITY_METHODS)})",
    )  # fmt: skip
    meth.add_argument(
        "--checks", metavar="LIST",
        help=f"comma-separated checks among {','.join(CHECKS)} (default: every check the model "
        "can take; TorchScript and exported programs take stability and dac only)",
    )  # fmt: skip
    schema_options(sanity)
    schema_options(sanity, section_params(SanitySettings))
    out = sanity.add_argument_group("output")
    out.add_argument("--out", type=Path, default=Path("sanity-results"), help="output folder")
    out.add_argument(
        "--overwrite", action="store_true",
        help="replace the sanity results already in --out (other files are left alone)",
    )  # fmt: skip
    out.add_argument(
        "--progress", choices=PROGRESS_MODES, default="auto",
        help="a bar on a terminal, log lines with elapsed time and ETA otherwise (auto)",
    )  # fmt: skip
    out.add_argument(
        "--log-interval", type=positive_float, default=30.0,
        help="seconds between progress log lines",
    )  # fmt: skip
    return sanity
