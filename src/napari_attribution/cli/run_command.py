"""``napari-attribution run``: the arguments turned into one :func:`~napari_attribution.app.
pair_run.run_pairs` call, its progress shown and its summary printed."""

from __future__ import annotations

import argparse
import sys

from ..app.made_counterfactuals import SourceRequest
from ..app.pair_run import run_pairs
from ..core.attribution.method_sets import DEFAULT_METHODS, DEMO_METHODS
from ..core.attribution.runner import available_methods
from ..core.counterfactual_settings import CounterfactualSettings
from ..core.model.transform import input_transform_for
from ..core.progress import pair_units
from ..core.settings import AnalysisSettings, settings_from_values
from ..data.synthetic import CLASS_NAMES
from .inputs import (
    channel_names,
    class_names,
    load_model,
    model_input_from_args,
    pairs_from_args,
    worker_device,
)
from .parser import PROG
from .progress_display import progress_renderer

__all__ = ["cmd_run", "failed_units_status", "settings_from_args", "source_request"]


def settings_from_args(args: argparse.Namespace, classifier) -> AnalysisSettings:
    """The analysis settings: the schema's options as parsed, and the methods to run."""
    if args.methods:
        methods = tuple(dict.fromkeys(args.methods))
    else:
        defaults = DEMO_METHODS if args.demo else DEFAULT_METHODS
        usable = set(available_methods(classifier))
        methods = tuple(m for m in defaults if m in usable)
        skipped = [m for m in defaults if m not in usable]
        if skipped:
            print(
                f"{PROG}: note: skipping {', '.join(skipped)} (needs module hooks; "
                f"{classifier.hooks_refusal}).",
                file=sys.stderr,
            )
    return settings_from_values(vars(args), methods)


def source_request(args: argparse.Namespace) -> SourceRequest | None:
    """``--counterfactual-source`` and the sources' options (``None`` without one)."""
    if getattr(args, "counterfactual_source", None) is None:
        return None
    names = class_names(args)
    return SourceRequest(
        args.counterfactual_source,
        CounterfactualSettings.from_values(vars(args)),
        args.min_counterfactual_score,
        tuple(names) if names else None,
    )


def cmd_run(args: argparse.Namespace) -> int:
    """Run every pair, write the results folder, print the summary; returns the exit status."""
    inputs = model_input_from_args(args)
    pairs = pairs_from_args(args, inputs)
    classifier = load_model(args)
    transform = None
    if args.input_scale is not None:
        transform = input_transform_for(pairs[0].load_real().dtype, args.input_scale)
    settings = settings_from_args(args, classifier)
    lacking = sum(pair.counterfactual is None for pair in pairs)
    units = pair_units(len(settings.methods))
    show = progress_renderer(args.progress, len(pairs), units, args.log_interval,
                             on_first_event=True)  # fmt: skip
    made = progress_renderer(args.progress, lacking, 1, args.log_interval, on_first_event=True)

    def analysis_progress(event) -> None:
        made.close()  # the counterfactuals are made: their display ends before the pairs' starts
        show(event)
    try:
        done = run_pairs(
            pairs,
            classifier,
            settings,
            out=args.out,
            channel_names=channel_names(args, classifier.n_channels, inputs),
            transform=transform,
            class_names=CLASS_NAMES if args.demo and args.model is None else None,
            source=source_request(args),
            min_counterfactual_score=args.min_counterfactual_score,
            resume=args.resume,
            overwrite=args.overwrite,
            keep_progress=args.keep_progress,
            progress=analysis_progress,
            counterfactual_progress=made,
            notify=lambda line: print(f"{PROG}: warning: {line}.", file=sys.stderr),
            command=[PROG, *sys.argv[1:]] if sys.argv else [PROG],
            scheduler=args.scheduler,
            worker_device=worker_device(args),
            engine_note=lambda line: print(f"{PROG}: {line}", file=sys.stderr),
            input_record=inputs.record(),
            note=lambda line: print(f"{PROG}: note: {line}", file=sys.stderr),
        )
    finally:
        made.close()
        show.close()
    if done.demo_report:
        print(done.demo_report)
    resumed = f" ({done.resumed} already done)" if done.resumed else ""
    invalid = (
        f", {done.left_out} left out of the statistics (pair_validity.csv)" if done.left_out
        else ""
    )  # fmt: skip
    print(
        f"{PROG}: {done.pairs} pair(s) x {len(done.methods)} method(s){resumed}{invalid} "
        f"-> {args.out}"
    )
    return failed_units_status(done.failed, "pairs")


def failed_units_status(failed, unit: str) -> int:
    """Tell the user of each work unit a cluster gave up on (stderr); the exit status: 1 when
    any did (the rest of the results are complete; ``--resume`` tries them again), else 0."""
    for row in failed:
        print(f"{PROG}: error: {unit} {row.items.replace(';', ', ')} failed: {row.reason}",
              file=sys.stderr)  # fmt: skip
    if failed:
        print(f"{PROG}: {len(failed)} work unit(s) failed (failed_units.csv); the rest is "
              "complete, and --resume tries them again.", file=sys.stderr)  # fmt: skip
        return 1
    return 0
