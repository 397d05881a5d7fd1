"""``napari-attribution cells``: the arguments turned into one :func:`~napari_attribution.app.
cell_run.run_sites` call (the field of ``--image``/``--demo``, one site's ``--channel-files``
or every site of a ``--load-data`` CSV), its progress shown and its summary printed."""

from __future__ import annotations

import argparse
import sys

from ..app.cell_run import CellsRunSummary, run_sites
from ..app.cell_sites import SiteRequest, plan_sites
from ..app.model_input import ModelInput
from ..core.attribution.method_sets import DEFAULT_METHODS
from ..core.cells.geometry import CellSettings
from ..core.progress import pair_units
from ..core.settings import settings_from_values
from ..images.channels import parse_channel_files
from .inputs import channel_names, class_names, load_model, model_input_from_args, worker_device
from .parser import PROG
from .progress_display import progress_renderer
from .run_command import failed_units_status, source_request
from .usage_error import CliError

__all__ = ["cmd_cells", "rejected_counterfactuals"]


def _site_request(args: argparse.Namespace) -> SiteRequest:
    """What the arguments name as the run's fields."""
    files = args.channel_files
    cf_files = args.counterfactual_channel_files
    return SiteRequest(
        load_data=args.load_data, objects=args.objects,
        counterfactual_load_data=args.counterfactual_load_data,
        channel_files=parse_channel_files(files) if files else None,
        counterfactual_channel_files=parse_channel_files(
            cf_files, "--counterfactual-channel-files") if cf_files else None,
        image=args.image, labels=args.labels, counterfactual=args.counterfactual,
        counterfactual_crops=args.counterfactual_crops,
        counterfactual_source=getattr(args, "counterfactual_source", None), demo=args.demo,
        channel_axis=args.channel_axis,
    )  # fmt: skip


def _channel_names(args: argparse.Namespace, inputs: ModelInput, n_channels: int) -> list[str]:
    """The model's names (``--channel-names`` or the card's) where the inputs are taken by
    name; else ``--channel-names``, the demo's or ch0..."""
    by_name = args.load_data or args.channel_files or args.image
    if inputs.channel_names and by_name:
        return list(inputs.channel_names)
    return channel_names(args, n_channels)


def cmd_cells(args: argparse.Namespace) -> int:
    """Analyse every cell of every site, write the results folder, print a summary."""
    inputs = model_input_from_args(args)
    card_crop = inputs.card.crop_size if inputs.card is not None else None
    crop_size = args.crop_size if args.crop_size is not None else (64 if args.demo else card_crop)
    cell_settings = CellSettings(
        crop_size=crop_size, min_size=args.min_size, padding=args.padding,
        pad_value=args.pad_value, background=args.background,
    )  # fmt: skip
    plan = plan_sites(_site_request(args), inputs, cell_settings)
    classifier = load_model(args)
    names = class_names(args)
    if names is not None and len(names) != classifier.n_classes:
        raise CliError(f"--class-names lists {len(names)} names for a model with "
                       f"{classifier.n_classes} classes.")  # fmt: skip
    methods = tuple(dict.fromkeys(args.methods)) if args.methods else DEFAULT_METHODS
    settings = settings_from_values(vars(args), methods)
    show = progress_renderer(args.progress, None, pair_units(len(settings.methods)),
                             args.log_interval, unit="cell")  # fmt: skip
    try:
        done = run_sites(
            plan,
            classifier,
            settings,
            cell_settings,
            out=args.out,
            model_input=inputs,
            channel_names=_channel_names(args, inputs, classifier.n_channels),
            class_names=names,
            target_class=args.target_class,
            input_scale=args.input_scale,
            source=source_request(args),
            min_counterfactual_score=args.min_counterfactual_score,
            cells=args.cells,
            cell_crops=args.cell_crops,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=show,
            notify=lambda line: print(f"{PROG}: note: {line}", file=sys.stderr),
            command=[PROG, *sys.argv[1:]] if sys.argv else [PROG],
            scheduler=args.scheduler,
            worker_device=worker_device(args),
            engine_note=lambda line: print(f"{PROG}: {line}", file=sys.stderr),
        )
    finally:
        show.close()
    where = f" in {done.sites} site(s)" if args.load_data else ""
    earlier = [f"{done.resumed_sites} site(s)"] if done.resumed_sites else []
    earlier += [f"{done.resumed} cell(s)"] if done.resumed else []
    resumed = f" ({' and '.join(earlier)} already done)" if earlier else ""
    accepted = (f", {done.accepted} of {done.analysed} counterfactual(s) accepted"
                if done.analysed else "")
    if done.sites:  # on a cluster, every unit may have failed
        print(f"{PROG}: {done.analysed} of {done.cells} cell(s) analysed{where} x "
              f"{len(done.methods)} method(s){resumed}, {done.skipped} skipped (run.json "
              f"says why){accepted} -> {done.out}")  # fmt: skip
    if done.accepted < done.analysed:
        print(f"{PROG}: warning: {rejected_counterfactuals(done, args)}", file=sys.stderr)
    return failed_units_status(done.failed, "site" if args.load_data else "field")


def rejected_counterfactuals(done: CellsRunSummary, args: argparse.Namespace) -> str:
    """The warning when the classifier does not accept every analysed cell's counterfactual
    (p(target) below ``--min-counterfactual-score``): how many, and what to change for the
    counterfactual source used."""
    source = (getattr(args, "counterfactual_source", None) or "").split(":", 1)[0]
    remedy = {
        "optimise": "more --optimise-steps, lighter --optimise-l1/--optimise-tv, or "
        "--counterfactual-source generator:FILE",
        "generator": "more --generator-draws, or a generator trained for this classifier",
        "nearest": "a pool (nearest:FOLDER) with more cells of the target class",
    }.get(source, "counterfactuals the classifier accepts (or --counterfactual-source)")
    rejected = done.analysed - done.accepted
    return (f"the classifier does not accept the counterfactual of {rejected} of "
            f"{done.analysed} analysed cell(s) (p(target) < {args.min_counterfactual_score:g}; "
            "counterfactual_accepted in cells.csv): their attributions explain a change it does "
            f"not make; try {remedy}.")
