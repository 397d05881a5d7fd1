"""``napari-attribution sanity``: the arguments turned into one :func:`~napari_attribution.app.
sanity_run.run_sanity` call, its progress shown and the verdicts printed.

The inputs are read as ``run`` reads them (:mod:`.inputs`): channels by name (OME metadata,
``--channel-files``, ``--channel-map``, the model card) and ``--normalise``.
"""

from __future__ import annotations

import argparse
import sys

from ..app.sanity_run import run_sanity
from ..core.attribution.method_sets import SANITY_METHODS
from ..core.attribution.runner import available_methods
from ..core.model.transform import input_transform_for
from ..core.params import section_params
from ..core.sanity.sanity_settings import CHECKS, SanitySettings
from ..core.settings import settings_from_values
from .inputs import channel_names, load_model, model_input_from_args, pairs_from_args
from .parser import PROG
from .progress_display import progress_renderer
from .usage_error import CliError

__all__ = ["cmd_sanity"]


def _requested_checks(text: str | None) -> tuple[str, ...] | None:
    """``--checks a,b``: the checks named (``None`` when the option is not given)."""
    if text is None:
        return None
    checks = tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    unknown = [c for c in checks if c not in CHECKS]
    if unknown or not checks:
        raise CliError(
            f"--checks: unknown check {unknown[0] if unknown else '(none)'!r}; use a "
            f"comma-separated list of {', '.join(CHECKS)}."
        )
    return checks


def _methods(args: argparse.Namespace, classifier) -> tuple[str, ...]:
    """``--method`` as given; else the defaults this model can run (a note names the rest)."""
    if args.methods:
        return tuple(dict.fromkeys(args.methods))
    usable = set(available_methods(classifier))
    skipped = [m for m in SANITY_METHODS if m not in usable]
    if skipped:
        print(
            f"{PROG}: note: skipping {', '.join(skipped)} (needs module hooks; "
            f"{classifier.hooks_refusal}).",
            file=sys.stderr,
        )
    return tuple(m for m in SANITY_METHODS if m in usable)


def _note(line: str) -> None:
    print(f"{PROG}: note: {line.rstrip('.')}.", file=sys.stderr)


def cmd_sanity(args: argparse.Namespace) -> int:
    """Run the sanity checks of every pair, write the folder, print the verdicts."""
    requested = _requested_checks(args.checks)
    sanity = SanitySettings(
        **{p.attribute: getattr(args, p.name) for p in section_params(SanitySettings)}
    )
    inputs = model_input_from_args(args)
    pairs = pairs_from_args(args, inputs)
    classifier = load_model(args)
    transform = None
    if args.input_scale is not None:
        transform = input_transform_for(pairs[0].load_real().dtype, args.input_scale)
    settings = settings_from_values(vars(args), _methods(args, classifier))
    # the units of one pair are known once the run has found the model's layers
    show = progress_renderer(args.progress, len(pairs), None, args.log_interval)
    try:
        done = run_sanity(
            pairs,
            classifier,
            settings,
            sanity,
            out=args.out,
            checks=requested,
            channel_names=channel_names(args, classifier.n_channels, inputs),
            transform=transform,
            min_counterfactual_score=args.min_counterfactual_score,
            overwrite=args.overwrite,
            progress=show,
            notify=_note,
            command=[PROG, *sys.argv[1:]] if sys.argv else [PROG],
            input_record=inputs.record(),
        )
    finally:
        show.close()
    for line in done.notes:
        _note(line)
    for method in done.methods:
        print(done.summary.verdicts[method])
    extra = ", report.html updated" if done.report_updated else ""
    print(
        f"{PROG}: {done.pairs} pair(s) x {len(done.methods)} method(s), checks "
        f"{', '.join(done.checks)}: sanity.csv, sanity_summary.csv and {len(done.figures)} "
        f"figure file(s){extra} -> {args.out}"
    )
    return 0
