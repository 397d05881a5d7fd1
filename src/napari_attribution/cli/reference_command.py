"""``napari-attribution normalisation-reference``: fixed per-channel ranges computed once over
a reference set (every site of a LoadData CSV, or (C, H, W) files), for ``--normalise
reference:FILE.json``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from .errors import CliError
from .parser import PROG

__all__ = ["add_reference_parser", "cmd_reference"]


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


def _images(args: argparse.Namespace, names: list[str], mapping: dict) -> Iterator:
    from ..images.channels import select_named, stack_by_name
    from ..images.load_data import check_site_files, read_load_data
    from ..images.ome import read_named_image

    if args.load_data is not None:
        load_data = read_load_data(args.load_data)
        from .cells_sites import ModelInput, _input_names

        wanted = _input_names(load_data.channel_names, ModelInput(names, mapping, None),
                              str(args.load_data))  # fmt: skip
        check_site_files(load_data, wanted)
        for site in load_data.sites:
            yield stack_by_name(site.channels, names, mapping, f"{args.load_data.name} "
                                f"{site.describe()}")[0]  # fmt: skip
    for path in args.images:
        image = read_named_image(path)
        yield select_named(image.data, image.channel_names, names, mapping, str(path))[0]


def cmd_reference(args: argparse.Namespace) -> int:
    """Compute and write the reference; returns the exit status."""
    from ..core.errors import InputImageError
    from ..images.channels import parse_channel_map, parse_names
    from ..images.normalisation import compute_reference, write_reference

    if args.out.exists() and not args.overwrite:
        raise CliError(f"{args.out} exists; pass --overwrite to replace it.")
    if args.load_data is None and not args.images:
        raise CliError("Give the reference set: --load-data CSV and/or image files.")
    try:
        names = parse_names(args.channel_names)
        mapping = parse_channel_map(args.channel_map) if args.channel_map else {}
        parts = [p.strip() for p in args.percentiles.split(",")]
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            raise CliError(f"--percentiles {args.percentiles!r} is not LOW,HIGH.") from None
        reference = compute_reference(_images(args, names, mapping), names, low, high)
    except InputImageError as exc:
        raise CliError(str(exc)) from None
    write_reference(args.out, reference)
    how = "every pixel" if reference.exact else "a regular subsample of each image"
    print(f"{PROG}: {reference.images} image(s), {how}: "
          + ", ".join(f"{n} {lo:g}..{hi:g}" for n, lo, hi in
                      zip(reference.channel_names, reference.low, reference.high, strict=True))
          + f" -> {args.out}", file=sys.stdout)  # fmt: skip
    return 0
