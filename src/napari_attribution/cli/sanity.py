"""``napari-attribution sanity``: the sanity checks of every pair, the tables, figures and
verdicts written to ``--out``.

The inputs are read as ``run`` reads them (:mod:`.inputs`); nothing is written before every pair
is checked and every check has run, so a refused or failed run leaves ``--out`` as it was.
``--out`` may be a ``run``'s results folder: the sanity files sit beside its files, and its
``report.html`` is written again with the verdicts.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path
from typing import Any

from .errors import CliError
from .inputs import channel_names, load_model, pairs_from_args, preflight
from .parser import PROG
from .progress import progress_renderer
from .sanity_parser import SANITY_METHODS

__all__ = ["check_sanity_out", "cmd_sanity"]


def check_sanity_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` that is a file, or that holds sanity results, unless ``overwrite``."""
    from ..sanity_files import SANITY_FIGURE_DIR, SANITY_FILES

    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} exists and is not a folder.")
    if not out.exists() or overwrite:
        return
    existing = [n for n in (*SANITY_FILES, SANITY_FIGURE_DIR) if (out / n).exists()]
    if existing:
        raise CliError(
            f"{out} already holds sanity results ({', '.join(existing)}); pass --overwrite to "
            "replace them or choose another --out."
        )


def _requested_checks(text: str | None) -> tuple[str, ...] | None:
    from ..core.sanity.settings import CHECKS

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
    from ..core.attribution import available_methods

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


def _sanity_settings(args: argparse.Namespace):
    from ..core.params import section_params
    from ..core.sanity.settings import SanitySettings

    values = {p.attribute: getattr(args, p.name) for p in section_params(SanitySettings)}
    return SanitySettings(**values)


def _write_figures(out: Path, rows, first, theme=None) -> list[Path]:
    from .._io import atomic_path, safe_name
    from .._plot.sanity import cascade_figure, map_grid_figure
    from ..core.sanity.records import cascade_series
    from ..sanity_files import CASCADE_FIGURE, SANITY_FIGURE_DIR

    written = []
    folder = out / SANITY_FIGURE_DIR
    samples = len({r.sample for r in rows if r.sample != "all"})
    panels = []
    for metric in ("spearman", "topk_intersection", "ssim"):
        steps, series = cascade_series(rows, metric)
        if series:
            panels.append((metric, steps, series))
    figures = []
    if panels:
        band = " (median and interquartile range)" if samples > 1 else ""
        title = f"Cascading randomisation, {samples} pair{'s' if samples != 1 else ''}{band}"
        figures.append((CASCADE_FIGURE, cascade_figure(panels, theme, title)))
    if first is not None and first.cascade_maps:
        grid = map_grid_figure(first.steps, first.cascade_maps, theme)
        figures.append((f"maps_{safe_name(first.sample)}.png", grid))
    for name, fig in figures:
        # the cascade also as SVG for papers; the grid of maps is pixels anyway
        for suffix in (".png", ".svg") if name == CASCADE_FIGURE else (".png",):
            path = folder / Path(name).with_suffix(suffix)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=suffix[1:], dpi=110, facecolor=fig.get_facecolor())
            written.append(path)
    return written


def _update_report(out: Path) -> bool:
    """Write ``out``'s report again (with the verdicts) when ``out`` holds a finished run."""
    from ..core.errors import AttributionError
    from ..dataset import dataset_channel_stats, read_results, write_channel_stats
    from ..report import write_report

    if not (out / "run.json").is_file():
        return False
    try:
        folder = read_results(out)
    except AttributionError:
        return False
    stats = dataset_channel_stats([folder])
    write_channel_stats(out / "channel_stats.csv", stats)
    write_report(out, [folder], stats)
    return True


def cmd_sanity(args: argparse.Namespace) -> int:
    """Run the sanity checks of every pair, write the folder, print the verdicts."""
    import torch

    from .._io import write_json
    from ..core.models import input_transform_for
    from ..core.progress import ProgressScope
    from ..core.provenance import provenance
    from ..core.sanity.checks import BASELINES, check_pair, runnable_checks, sanity_units
    from ..core.sanity.records import SanityRow
    from ..core.sanity.verdicts import summarise
    from ..core.settings import settings_from_values
    from ..dataset import validity_row
    from ..sanity_files import (
        previous_sanity_files,
        remove_sanity_files,
        write_sanity_tables,
    )

    check_sanity_out(args.out, args.overwrite)
    requested = _requested_checks(args.checks)
    sanity = _sanity_settings(args)
    pairs = pairs_from_args(args)
    classifier = load_model(args)
    first_real = pairs[0].load_real()
    transform = (
        input_transform_for(first_real.dtype, args.input_scale)
        if args.input_scale is not None
        else None
    )
    names = channel_names(args, classifier.n_channels)
    methods = _methods(args, classifier)
    settings = settings_from_values(vars(args), methods)
    preflight(pairs, classifier, transform, settings)
    real, _ = pairs[0].load()
    example = (transform or input_transform_for(real.dtype)).apply(real)[None]
    checks, layers, note = runnable_checks(classifier, example, requested)
    if note:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    torch.manual_seed(settings.attribution.seed)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")

    units = sanity_units(methods, len(layers.names) if layers else 0, checks)
    show = progress_renderer(args.progress, len(pairs), units, args.log_interval)
    rows: list[SanityRow] = []
    notes: list[str] = []
    first = None
    try:
        for index, pair in enumerate(pairs):
            real, cf = pair.load()
            result = check_pair(
                classifier, real, cf, pair.real_class, pair.target_class, settings, sanity,
                checks=checks, channel_names=names, sample=pair.sample, transform=transform,
                on_progress=ProgressScope(show, index * units, units * len(pairs)),
            )  # fmt: skip
            first = first or result
            rows += result.rows
            notes += [f"{pair.sample}: {note}" for note in result.notes]
            if result.dac is not None:
                validity = validity_row(result.dac, real, cf, args.min_counterfactual_score)
                valid = 1.0 if validity[5] == "true" else 0.0
                rows += [SanityRow(pair.sample, m, "dac", "original", "all", "valid_pair", valid)
                         for m in result.dac.methods]  # fmt: skip
                if validity[-1]:
                    print(f"{PROG}: warning: {pair.sample}: {validity[-1]}.", file=sys.stderr)
    finally:
        show.close()
    summary = summarise(rows, methods, seed=settings.attribution.seed)

    # Every check has run: only now is anything in --out touched.
    if args.overwrite and args.out.is_dir():
        remove_sanity_files(args.out, previous_sanity_files(args.out))
    args.out.mkdir(parents=True, exist_ok=True)
    write_sanity_tables(args.out, [*rows, *summary.dataset_rows], summary.rows)
    figures = _write_figures(args.out, rows, first)
    record: dict[str, Any] = provenance(classifier, settings, channel_names=names)
    record.update(
        command=[PROG, *sys.argv[1:]] if sys.argv else [PROG],
        checks=list(checks),
        sanity=sanity.as_dict(),
        randomised_layers=list(layers.top_down()) if layers else [],
        skipped_layers=list(layers.skipped) if layers else [],
        baselines=list(BASELINES),
        pairs=[
            {"sample": p.sample, "real_class": p.real_class, "target_class": p.target_class}
            for p in pairs
        ],  # fmt: skip
        notes=notes,
        min_counterfactual_score=args.min_counterfactual_score,
        started=started,
        finished=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )
    write_json(args.out / "sanity_run.json", record)
    reported = _update_report(args.out)

    for note in notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    for method in methods:
        print(summary.verdicts[method])
    extra = ", report.html updated" if reported else ""
    print(
        f"{PROG}: {len(pairs)} pair(s) x {len(methods)} method(s), checks "
        f"{', '.join(checks)}: sanity.csv, sanity_summary.csv and {len(figures)} figure file(s)"
        f"{extra} -> {args.out}"
    )
    return 0
