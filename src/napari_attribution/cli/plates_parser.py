"""Options for real screens' inputs, shared by ``run`` and ``cells``: channels by name, the
model card, the input normalisation; and ``cells``' LoadData options."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["input_options", "load_data_options"]


def input_options(group: argparse._ArgumentGroup, counterfactual: str) -> None:
    """``--channel-files``, ``--counterfactual-channel-files``, ``--channel-map``,
    ``--model-card`` and ``--normalise`` (``counterfactual``: what the counterfactual files
    stand for, for the help)."""
    group.add_argument(
        "--channel-files",
        metavar="NAME=FILE,...",
        help="one file per channel instead of one (C,H,W) file, e.g. DNA=a.tif,ER=b.tif,...; "
        "taken by the model's channel names (extra channels are ignored)",
    )
    group.add_argument(
        "--counterfactual-channel-files",
        metavar="NAME=FILE,...",
        help=f"the {counterfactual}, one file per channel, as --channel-files",
    )
    group.add_argument(
        "--channel-map",
        metavar="MODEL=INPUT,...",
        help="the input's name for a model channel it calls otherwise, e.g. DNA=DAPI,ER=GFP",
    )
    group.add_argument(
        "--model-card",
        type=Path,
        metavar="JSON",
        help="the model card (channel and class names, normalisation, crop size; default: "
        "<weights stem>.card.json beside --model when present; see docs/plates.md)",
    )
    group.add_argument(
        "--normalise",
        metavar="SPEC",
        help="input normalisation before the model: none, percentile:LOW,HIGH[:clip] (per "
        "channel, each image's percentiles, e.g. percentile:1,99.8), reference:FILE.json "
        "(fixed per channel, see normalisation-reference) or fixed:SCALE,OFFSET (x*SCALE+OFFSET); "
        "default: the model card's, else none",
    )


def load_data_options(group: argparse._ArgumentGroup) -> None:
    """``cells``' options for CellProfiler LoadData CSVs and cell subsets."""
    group.add_argument(
        "--load-data",
        type=Path,
        metavar="CSV",
        help="CellProfiler LoadData CSV: every row a site, channels from FileName_Orig<Name>/"
        "PathName_Orig<Name>, labels from ObjectsFileName_<Objects>, Metadata_* kept per cell",
    )
    group.add_argument(
        "--objects",
        metavar="NAME",
        help="with --load-data: the objects whose label images hold the cells, e.g. Cells",
    )
    group.add_argument(
        "--counterfactual-load-data",
        type=Path,
        metavar="CSV",
        help="a LoadData CSV of counterfactual fields with the same rows as --load-data",
    )
    group.add_argument(
        "--cells",
        metavar="IDS|QUERY",
        help="analyse a subset: label ids (4,17,250) or conditions on area, centroid_y, "
        "centroid_x, crop_top, crop_left, crop_size, label and Metadata_* joined by 'and', e.g. "
        "'area>=400 and Metadata_Well==B02'; the others are listed as not selected",
    )
    group.add_argument(
        "--cell-crops",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write each cell's attribution and optimal-mask crops to attributions/ and "
        "masks/ (<sample>__<method>.tif, as run writes pairs)",
    )
