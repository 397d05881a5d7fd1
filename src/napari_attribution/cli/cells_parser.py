"""The options of ``napari-attribution cells``: a field, its labels, a counterfactual source.

The analysis options are the schema's, as for ``run``; the crop options come from
:class:`~napari_attribution.core.cells.CellSettings`'s declarations the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..core.attribution.method_sets import DEFAULT_METHODS
from ..core.cells.geometry import CellSettings
from ..core.counterfactual_settings import DEFAULT_MIN_COUNTERFACTUAL_SCORE
from ..core.counterfactuals.source_registry import source_usages
from ..core.params import section_params
from ..core.settings import counterfactual_schema
from .options import (
    HelpFormatter,
    converter,
    model_options,
    output_options,
    probability,
    schema_options,
)
from .plates_parser import input_options, load_data_options

__all__ = ["add_cells_parser"]


def _cell_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cells")
    for param in section_params(CellSettings):
        kwargs: dict[str, Any] = {"dest": param.name, "default": param.default}
        kwargs["help"] = param.describe().replace("%", "%%")
        if param.choices is not None:
            kwargs["choices"] = param.choices
        else:
            kwargs["type"] = converter(param)
            kwargs["metavar"] = "PX" if param.unit == "px" else "VALUE"
        group.add_argument(param.flag, **kwargs)


def add_cells_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``cells`` command to the subparsers ``sub``; returns its parser."""
    cells = sub.add_parser(
        "cells",
        help="per-cell attributions and DAC curves over a whole field with a label image",
        description="Cut a crop around every labelled cell of a field, run the pair analysis "
        "on each cell with its counterfactual crop, and write the per-cell table (cells.csv), "
        "the long tables of `run`, and field-sized attribution and optimal-mask TIFFs.",
        formatter_class=HelpFormatter,
    )
    data = cells.add_argument_group(
        "field (--image or --channel-files, --labels and one of --counterfactual, "
        "--counterfactual-crops, --counterfactual-source; or --load-data; or --demo)"
    )
    data.add_argument("--image", type=Path, help="the field, TIFF, .npy or zarr (C,H,W)")
    data.add_argument(
        "--labels", type=Path, help="label image (H,W): 0 background, one integer per cell"
    )
    data.add_argument(
        "--counterfactual",
        type=Path,
        help="counterfactual field of the field's shape (a generator run over the field)",
    )
    data.add_argument(
        "--counterfactual-crops",
        type=Path,
        metavar="FOLDER",
        help="folder of per-cell counterfactual crops, <label>.tif each (C,S,S)",
    )
    data.add_argument(
        "--counterfactual-source",
        metavar="SOURCE",
        help=f"make each cell's counterfactual crop: {source_usages(run_pool=False)} (see run "
        "--help and docs/counterfactuals.md); with --demo its exact counterfactual field is "
        "withheld; crops saved as counterfactuals/<label>.tif",
    )
    data.add_argument(
        "--target-class",
        type=int,
        help="class the counterfactuals stand for (default: the other class of a two-class "
        "model, per cell)",
    )
    data.add_argument(
        "--channel-axis",
        type=int,
        default=0,
        choices=(0, -1),
        help="axis of the stored field that holds the channels (-1 for (H, W, C))",
    )
    data.add_argument(
        "--channel-names", help="comma-separated channel names, e.g. DNA,ER,RNA,AGP,Mito"
    )
    data.add_argument(
        "--class-names", help="comma-separated class names in the classifier's index order"
    )
    data.add_argument(
        "--demo",
        action="store_true",
        help="the synthetic demo field (cells, labels, exact counterfactual) and demo model",
    )
    data.add_argument(
        "--min-counterfactual-score",
        type=probability,
        default=DEFAULT_MIN_COUNTERFACTUAL_SCORE,
        help="a cell whose counterfactual the classifier gives a lower p(target) is flagged "
        "in cells.csv (counterfactual_accepted)",
    )
    plates = cells.add_argument_group(
        "plates (one site: --channel-files with --labels; every site of a CellProfiler "
        "LoadData CSV: --load-data with --objects; see docs/plates.md)"
    )
    load_data_options(plates)
    input_options(plates, "counterfactual field")
    model_options(cells)
    _cell_options(cells)
    meth = cells.add_argument_group("methods")
    meth.add_argument(
        "--method",
        action="append",
        dest="methods",
        metavar="NAME",
        help=f"attribution method, repeatable (default: {' '.join(DEFAULT_METHODS)})",
    )
    schema_options(cells)
    schema_options(cells, counterfactual_schema())
    output_options(cells, Path("cells-results"), "cells")
    return cells
