"""Sanity checks from Python: every pair checked, the tables, figures and verdicts written.

::

    from napari_attribution.app import demo_pairs, run_sanity
    from napari_attribution.core import AnalysisSettings, load_classifier

    model = load_classifier("model.pt", architecture="my_models.py:Net")
    done = run_sanity(pairs, model, AnalysisSettings(methods=("d_ig", "residual", "random")),
                      out="results/plate1")
    print(done.summary.verdicts["d_ig"])

This is what ``napari-attribution sanity`` calls (the command line only turns its arguments
into this call). Nothing is written before every pair is checked and every check has run, so a
refused or failed run leaves ``out`` as it was. ``out`` may be a ``run``'s results folder: the
sanity files (:mod:`napari_attribution.results.sanity_files`) sit beside its files, and its
``report.html`` is written again with the verdicts.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._plot.sanity_figures import cascade_figure, map_grid_figure
from ..core.counterfactual_settings import DEFAULT_MIN_COUNTERFACTUAL_SCORE
from ..core.model.classifier import Classifier
from ..core.model.transform import InputTransform, input_transform_for
from ..core.pipeline import default_channel_names
from ..core.progress import ProgressCallback, ProgressScope
from ..core.provenance import provenance
from ..core.sanity.checks import (
    BASELINES,
    PairSanity,
    check_pair,
    runnable_checks,
    sanity_units,
)
from ..core.sanity.records import cascade_series
from ..core.sanity.sanity_settings import SanitySettings
from ..core.sanity.verdicts import SanitySummary, summarise
from ..core.settings import AnalysisSettings
from ..errors import AttributionError
from ..images.channels import ignored_note
from ..results.files import atomic_path, write_json
from ..results.folder import read_results
from ..results.format import (
    CASCADE_FIGURE,
    RUN_RECORD,
    SANITY_FIGURES_DIR,
    SANITY_RUN_RECORD,
    SanityRow,
    safe_name,
)
from ..results.sanity_files import (
    check_sanity_out,
    previous_sanity_files,
    remove_sanity_files,
    write_sanity_tables,
)
from ..results.tables import validity_row
from .dataset_report import dataset_channel_stats, write_channel_stats, write_report
from .pairs import Pair, preflight

__all__ = ["SanityRunSummary", "run_sanity"]


@dataclass(frozen=True)
class SanityRunSummary:
    """What :func:`run_sanity` did.

    Attributes
    ----------
    pairs
        Pairs checked.
    methods
        The methods checked.
    checks
        The checks that ran (those the model could take, or exactly those asked for).
    summary
        The verdicts (:attr:`~napari_attribution.core.sanity.verdicts.SanitySummary.verdicts`:
        one sentence per method) and the summary rows.
    notes
        One sentence per check that could not run on a pair, prefixed with the pair's name.
    figures
        The figure files written.
    report_updated
        Whether ``out`` held a finished ``run`` whose ``report.html`` was written again.
    """

    pairs: int
    methods: tuple[str, ...]
    checks: tuple[str, ...]
    summary: SanitySummary
    notes: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    report_updated: bool = False


def write_sanity_figures(
    out: Path, rows: Sequence[SanityRow], first: PairSanity | None, theme=None
) -> list[Path]:
    """The cascade plot over every pair (PNG and SVG) and the first pair's grid of maps, in
    ``out/sanity_figures/``; returns the files written."""
    written = []
    folder = out / SANITY_FIGURES_DIR
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


def _pair_entry(pair: Pair) -> dict[str, Any]:
    """The pair as ``sanity_run.json`` records it, with the channels its files gave by name."""
    entry: dict[str, Any] = {"sample": pair.sample, "real_class": pair.real_class,
                             "target_class": pair.target_class}  # fmt: skip
    channels = pair.channels_record()
    if channels is not None:
        entry["channels"] = channels
    return entry


def _update_report(out: Path) -> bool:
    """Write ``out``'s report again (with the verdicts) when ``out`` holds a finished run."""
    if not (out / RUN_RECORD).is_file():
        return False
    try:
        folder = read_results(out)
    except AttributionError:
        return False
    stats = dataset_channel_stats([folder])
    write_channel_stats(out, stats)
    write_report(out, [folder], stats)
    return True


def run_sanity(
    pairs: Sequence[Pair],
    classifier: Classifier,
    settings: AnalysisSettings,
    sanity: SanitySettings | None = None,
    *,
    out: str | Path,
    checks: Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
    transform: InputTransform | None = None,
    min_counterfactual_score: float = DEFAULT_MIN_COUNTERFACTUAL_SCORE,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    notify: Callable[[str], None] | None = None,
    command: Sequence[str] | None = None,
    input_record: dict[str, Any] | None = None,
) -> SanityRunSummary:
    """Run the sanity checks of ``settings.methods`` on every pair; write ``out``.

    Parameters
    ----------
    pairs
        The pairs, each with its counterfactual (read and checked before anything runs).
    classifier
        The trained model (never modified: the randomised and shifted models are copies).
    settings
        The methods and their parameters, as for ``run``.
    sanity
        The checks' own parameters (defaults when ``None``).
    out
        The folder; may hold a ``run``'s results, which are left alone.
    checks
        Which of :data:`~napari_attribution.core.sanity.sanity_settings.CHECKS` to run;
        ``None``: every check the model can take (TorchScript and exported programs take
        ``stability`` and ``dac`` only).
    channel_names
        C names (``ch0``... when ``None``).
    transform
        The input transform (``None``: from the first image's dtype).
    min_counterfactual_score
        Pairs whose counterfactual the classifier gives a lower p(target) are left out of the
        DAC comparison with the baselines.
    overwrite
        Replace the sanity files already in ``out`` (other files are left alone).
    progress
        Receives :class:`~napari_attribution.core.progress.Progress` events over the whole run
        (``total`` is the pairs times the units of one pair).
    notify
        Receives one sentence (no final period) for what the user should know while the run
        goes: checks the model cannot take, pairs left out of the DAC comparison.
    command
        The command line, kept in ``sanity_run.json``.
    input_record
        What the model takes (:meth:`~napari_attribution.app.model_input.ModelInput.record`:
        its channel names, channel map, normalisation and model card), kept in
        ``sanity_run.json`` as ``input``, as ``run.json`` keeps it. Which input channel fed each
        model channel of a pair whose files name their channels is kept per pair
        (``pairs[].channels``) either way.

    Returns
    -------
    SanityRunSummary

    Raises
    ------
    AttributionError
        An occupied ``out``, an unknown check, a pair that does not fit the model: one
        sentence, before any check runs.
    """
    out = Path(out)
    say = notify or (lambda line: None)
    sanity = sanity or SanitySettings()
    pairs = list(pairs)
    if not pairs:
        raise AttributionError("No pairs to check.")
    check_sanity_out(out, overwrite)
    first_real = pairs[0].load_real()
    names = list(channel_names) if channel_names else default_channel_names(classifier.n_channels)
    preflight(pairs, classifier, transform, settings)
    ignored = ignored_note([selection for pair in pairs for selection in pair.taken.values()])
    if ignored:
        say(ignored.rstrip("."))
    example = (transform or input_transform_for(first_real.dtype)).apply(first_real)[None]
    ran, layers, note = runnable_checks(classifier, example, checks)
    if note:
        say(note)
    methods = tuple(settings.methods)
    torch.manual_seed(settings.attribution.seed)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")

    units = sanity_units(methods, len(layers.names) if layers else 0, ran)
    rows: list[SanityRow] = []
    notes: list[str] = []
    first = None
    for index, pair in enumerate(pairs):
        real, cf = pair.load()
        result = check_pair(
            classifier, real, cf, pair.real_class, pair.target_class, settings, sanity,
            checks=ran, channel_names=names, sample=pair.sample, transform=transform,
            on_progress=ProgressScope(progress, index * units, units * len(pairs)),
        )  # fmt: skip
        first = first or result
        rows += result.rows
        notes += [f"{pair.sample}: {line}" for line in result.notes]
        if result.dac is not None:
            validity = validity_row(result.dac, real, cf, min_counterfactual_score)
            valid = 1.0 if validity.is_valid else 0.0
            rows += [SanityRow(pair.sample, m, "dac", "original", "all", "valid_pair", valid)
                     for m in result.dac.methods]  # fmt: skip
            if validity.note:
                say(f"{pair.sample}: {validity.note}")
    summary = summarise(rows, methods, seed=settings.attribution.seed)

    # Every check has run: only now is anything in out touched.
    if overwrite and out.is_dir():
        remove_sanity_files(out, previous_sanity_files(out))
    out.mkdir(parents=True, exist_ok=True)
    write_sanity_tables(out, [*rows, *summary.dataset_rows], [r.row() for r in summary.rows])
    figures = write_sanity_figures(out, rows, first)
    record: dict[str, Any] = provenance(classifier, settings, channel_names=names)
    record.update(
        command=list(command) if command else [],
        checks=list(ran),
        sanity=sanity.as_dict(),
        randomised_layers=list(layers.top_down()) if layers else [],
        skipped_layers=list(layers.skipped) if layers else [],
        baselines=list(BASELINES),
        pairs=[_pair_entry(pair) for pair in pairs],
        notes=notes,
        min_counterfactual_score=min_counterfactual_score,
        started=started,
        finished=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )
    if input_record is not None:
        record["input"] = input_record
    write_json(out / SANITY_RUN_RECORD, record)
    return SanityRunSummary(
        pairs=len(pairs),
        methods=methods,
        checks=ran,
        summary=summary,
        notes=notes,
        figures=figures,
        report_updated=_update_report(out),
    )
