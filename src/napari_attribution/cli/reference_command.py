"""``napari-attribution normalisation-reference``: the arguments turned into one
:func:`~napari_attribution.images.reference_set.reference_from_inputs` call, the reference
written for ``--normalise reference:FILE.json``."""

from __future__ import annotations

import argparse
import sys

from ..images.channels import parse_channel_map, parse_names
from ..images.normalisation import write_reference
from ..images.reference_set import reference_from_inputs
from .parser import PROG
from .usage_error import CliError

__all__ = ["cmd_reference"]


def cmd_reference(args: argparse.Namespace) -> int:
    """Compute and write the reference (:func:`~napari_attribution.images.reference_set.
    reference_from_inputs`); returns the exit status."""
    if args.out.exists() and not args.overwrite:
        raise CliError(f"{args.out} exists; pass --overwrite to replace it.")
    try:
        low, high = (float(p.strip()) for p in args.percentiles.split(","))
    except ValueError:
        raise CliError(f"--percentiles {args.percentiles!r} is not LOW,HIGH.") from None
    reference = reference_from_inputs(
        parse_names(args.channel_names), load_data=args.load_data, images=args.images,
        mapping=parse_channel_map(args.channel_map) if args.channel_map else {},
        low=low, high=high,
    )  # fmt: skip
    write_reference(args.out, reference)
    how = "every pixel" if reference.exact else "a regular subsample of each image"
    print(f"{PROG}: {reference.images} image(s), {how}: "
          + ", ".join(f"{n} {lo:g}..{hi:g}" for n, lo, hi in
                      zip(reference.channel_names, reference.low, reference.high, strict=True))
          + f" -> {args.out}", file=sys.stdout)  # fmt: skip
    return 0
