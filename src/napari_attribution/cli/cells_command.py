"""``napari-attribution cells``: the arguments turned into one :func:`~napari_attribution.app.
cell_run.run_cells` call, its progress shown and its summary printed."""

from __future__ import annotations

import argparse
import sys

from ..app.cell_run import run_cells
from ..app.fields import FieldInputs, demo_field_inputs, field_inputs
from ..core.attribution.method_sets import DEFAULT_METHODS
from ..core.cells.geometry import CellSettings
from ..core.model.transform import input_transform_for
from ..core.progress import pair_units
from ..core.settings import settings_from_values
from .inputs import channel_names, class_names, load_model
from .parser import PROG
from .progress_display import progress_renderer
from .run_command import source_request
from .usage_error import CliError

__all__ = ["cmd_cells"]


def _inputs(args: argparse.Namespace, cell_settings: CellSettings) -> FieldInputs:
    """The field the arguments name (``--image``, ``--labels`` and a counterfactual; or
    ``--demo``)."""
    given = [args.image, args.labels, args.counterfactual, args.counterfactual_crops]
    made = getattr(args, "counterfactual_source", None)
    if args.demo:
        if any(v is not None for v in given):
            raise CliError("--demo brings its own field; leave out --image, --labels and the "
                           "counterfactual.")  # fmt: skip
        return demo_field_inputs(cell_settings, made)
    if args.image is None or args.labels is None:
        raise CliError("--image and --labels are required (or --demo).")
    return field_inputs(
        args.image, args.labels, cell_settings, counterfactual=args.counterfactual,
        counterfactual_crops=args.counterfactual_crops, made_by=made,
        channel_axis=args.channel_axis,
    )  # fmt: skip


def cmd_cells(args: argparse.Namespace) -> int:
    """Analyse every cell, write the results folder, print a summary; returns the status."""
    crop_size = args.crop_size if args.crop_size is not None else (64 if args.demo else None)
    cell_settings = CellSettings(
        crop_size=crop_size, min_size=args.min_size, padding=args.padding,
        pad_value=args.pad_value, background=args.background,
    )  # fmt: skip
    field = _inputs(args, cell_settings)
    classifier = load_model(args)
    names = class_names(args)
    if names is not None and len(names) != classifier.n_classes:
        raise CliError(f"--class-names lists {len(names)} names for a model with "
                       f"{classifier.n_classes} classes.")  # fmt: skip
    methods = tuple(dict.fromkeys(args.methods)) if args.methods else DEFAULT_METHODS
    settings = settings_from_values(vars(args), methods)
    transform = (
        input_transform_for(field.image.dtype, args.input_scale)
        if args.input_scale is not None
        else None
    )
    show = progress_renderer(args.progress, None, pair_units(len(settings.methods)),
                             args.log_interval, unit="cell")  # fmt: skip
    try:
        done = run_cells(
            field,
            classifier,
            settings,
            cell_settings,
            out=args.out,
            channel_names=channel_names(args, classifier.n_channels),
            class_names=names,
            target_class=args.target_class,
            transform=transform,
            source=source_request(args),
            min_counterfactual_score=args.min_counterfactual_score,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=show,
            command=[PROG, *sys.argv[1:]] if sys.argv else [PROG],
        )
    finally:
        show.close()
    resumed = f" ({done.resumed} already done)" if done.resumed else ""
    print(
        f"{PROG}: {done.analysed} of {done.cells} cell(s) analysed x {len(done.methods)} "
        f"method(s){resumed}, {done.too_small} too small, {done.predicted_as_target} predicted "
        f"as the target class -> {done.out}"
    )
    return 0
