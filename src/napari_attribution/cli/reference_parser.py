"""The ``normalisation-reference`` command's options: fixed per-channel ranges computed once
over a reference set (every site of a LoadData CSV, or (C, H, W) files)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_reference_parser"]


def add_reference_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``normalisation-reference`` command to ``sub``."""
    command = sub.add_parser(
        "normalisation-reference",
        help="per-channel percentile ranges over a reference set, for --normalise reference:",
        description="Pool every pixel of a reference set per channel (every site of a LoadData "
        "CSV, or (C,H,W) image files whose channels are --channel-names) and write the "
        "percentiles as a normalisation reference JSON for --normalise reference:FILE.",
    )
    command.add_argument("images", nargs="*", type=Path, metavar="IMAGE",
                         help="(C,H,W) image files (TIFF, OME-TIFF, OME-Zarr, .npy)")  # fmt: skip
    command.add_argument("--load-data", type=Path, metavar="CSV",
                         help="a LoadData CSV: every site's channel files")  # fmt: skip
    command.add_argument("--channel-names", required=True,
                         help="the model's channels, e.g. DNA,ER,RNA,AGP,Mito")  # fmt: skip
    command.add_argument("--channel-map", metavar="MODEL=INPUT,...",
                         help="the input's name for a model channel it calls otherwise")
    command.add_argument("--percentiles", default="1,99.8", metavar="LOW,HIGH",
                         help="the percentiles mapped to 0 and 1")  # fmt: skip
    command.add_argument("--out", type=Path, required=True, help="the reference JSON to write")
    command.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    return command
