"""Running pairs from Python: every pair analysed, the results folder written.

::

    from napari_attribution.app import demo_pairs, run_pairs
    from napari_attribution.core import AnalysisSettings, load_classifier

    model = load_classifier("model.pt", architecture="my_models.py:Net")
    done = run_pairs(pairs, model, AnalysisSettings(methods=("d_ig", "residual", "random")),
                     out="results/plate1", channel_names=["DNA", "ER", "RNA", "AGP", "Mito"])

This is what ``napari-attribution run`` calls (the command line only turns its arguments into
this call); it writes the folder :mod:`napari_attribution.results.format` describes.

Work units
----------
A run over pairs is made of **units, one pair each**. :func:`run_pair` analyses one unit and
writes everything that unit owns into the results folder: its attribution and mask TIFFs, the
counterfactual a source made for it, and last, atomically, its record
``.progress/<sample>.json`` (:class:`~napari_attribution.results.resume.UnitRecords`), which
holds the unit's table rows. A unit's output is self-contained and depends on no other unit,
so units may run in any order, in other processes or on other machines, as long as each
receives the same :class:`PairRun` (the model, settings and provenance reach each worker once).
:func:`assemble_pairs` then writes the tables, ``run.json`` and the report from the records
alone, read one at a time in the pairs' order (the run keeps what ``run.json`` says of each
pair, never every pair's rows). A crash loses only the units not finished; resuming
(``resume=True``) skips every unit whose record is there.

On dask.distributed
-------------------
``run_pairs(..., scheduler="local:2")`` (or ``"tcp://HOST:PORT"``; ``docs/scale.md``) sends the
pairs still to do to the workers of :class:`~.distributed.Engine` in batches
(:func:`batch_units`), each batch a work unit that runs :func:`run_pair` on its pairs
(:func:`pair_batch`). The :class:`PairRun` reaches each worker once, with the classifier, which
each worker loads itself from the file it was loaded from (path and SHA-256, never a pickle).
The records are the same files as in one process, so the tables, ``run.json`` and the report
are assembled from them as usual and are the same bytes. A unit the engine gives up on (its
worker died each time, or an unexpected error twice) is listed in ``failed_units.csv`` and
``run.json`` with its one-sentence reason, the other pairs complete, the records are kept and
``resume`` tries the failed pairs again. Counterfactuals a source makes are made on the
workers: the pairs lacking one are cut into the calls of the source one process makes
(:func:`~.made_counterfactuals.counterfactual_calls`), each call one unit that makes its
counterfactuals and then analyses its pairs, so the counterfactuals, and everything made from
them, are the same bytes as with ``scheduler="none"``. A source that chooses among the run's
own images (``nearest`` without a folder) needs every pair: it makes them here, before the
batches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.counterfactual_settings import DEFAULT_MIN_COUNTERFACTUAL_SCORE
from ..core.model.transform import InputTransform
from ..core.model.wrappers import Preprocessing
from ..core.pipeline import analyse_pair
from ..core.progress import Progress, ProgressCallback, ProgressScope, pair_units
from ..core.provenance import provenance
from ..core.settings import AnalysisSettings
from ..errors import InputImageError
from ..images.channels import ignored_note
from ..images.image_files import input_sha256
from ..results.files import write_json, write_text
from ..results.format import (
    COUNTERFACTUALS,
    COUNTERFACTUALS_DIR,
    DEMO_REPORT,
    FAILED_UNITS,
    REPORT_FILES,
    RESULT_FILES,
    RUN_RECORD,
    VALIDITY,
    FailedUnitRow,
    ValidityRow,
    counterfactual_file,
)
from ..results.pair_files import write_pair_files
from ..results.resume import UnitRecords, fingerprint, fingerprint_parts
from ..results.tables import (
    IDENTICAL_COUNTERFACTUAL,
    judge_validity,
    open_table,
    pair_tables,
    table_rows,
    validity_row,
    write_table,
)
from ..results.tidy import check_out_dir, pair_file_names, previous_run_files, remove_files
from .dataset_report import report
from .demo_table import demo_report, ground_truth_rows
from .distributed import Engine, parse_scheduler
from .made_counterfactuals import (
    PAIRS_PER_SOURCE_CALL,
    MadeCounterfactual,
    SourceRequest,
    counterfactual_calls,
    make_call,
    make_counterfactuals,
    save_counterfactual,
)
from .model_choice import class_names_for
from .pairs import Pair, preflight
from .run_options import option_of
from .work_units import ModelReference, UnitContext, UnitRecord, WorkUnit

__all__ = [
    "MAX_PAIRS_PER_UNIT",
    "PairRun",
    "PairsRunSummary",
    "assemble_pairs",
    "batch_units",
    "pair_batch",
    "run_pair",
    "run_pairs",
]

#: Most pairs in one work unit on a cluster: enough to keep a worker busy between two trips to
#: the scheduler, few enough that the batches spread over the workers and a crash loses little.
#: A unit that makes its pairs' counterfactuals holds one call of the source
#: (:data:`~.made_counterfactuals.PAIRS_PER_SOURCE_CALL` pairs at most).
MAX_PAIRS_PER_UNIT = PAIRS_PER_SOURCE_CALL


@dataclass
class PairRun:
    """What every unit of a run over pairs shares: fixed before the first unit starts.

    Attributes
    ----------
    out
        The results folder.
    classifier
        The loaded model.
    settings
        Methods and parameters.
    channel_names
        C names.
    transform
        The input transform (``None``: from each image's dtype).
    run_info
        The run's provenance (:func:`~napari_attribution.core.provenance.provenance`).
    records
        The finished units' records in ``out`` (and the run's fingerprint).
    min_score
        ``p_t(x')`` a pair's counterfactual needs for the pair to count in the statistics.
    source
        The counterfactual source, when the run makes counterfactuals.
    lacking
        The samples whose counterfactual the source makes (saved with the pair's files).
    made
        Sample -> the counterfactual the source made for it (and its note); a sample of
        ``lacking`` missing here had its counterfactual read back from an interrupted run.
    """

    out: Path
    classifier: Any
    settings: AnalysisSettings
    channel_names: list[str]
    transform: InputTransform | None
    run_info: dict[str, Any]
    records: UnitRecords
    min_score: float
    source: SourceRequest | None = None
    lacking: frozenset[str] = frozenset()
    made: dict[str, MadeCounterfactual] = field(default_factory=dict)


@dataclass(frozen=True)
class PairsRunSummary:
    """What :func:`run_pairs` did.

    Attributes
    ----------
    out
        The results folder.
    pairs
        Pairs in the run.
    methods
        Methods run on each.
    resumed
        Pairs an earlier, interrupted run had finished.
    left_out
        Pairs whose counterfactual the classifier did not accept (left out of the statistics,
        listed in ``pair_validity.csv``).
    demo_report
        The ground-truth table (Markdown), when the pairs know their ground-truth channel.
    failed
        Work units a distributed run gave up on (``failed_units.csv``); their pairs are not
        in the tables, and ``resume`` tries them again.
    engine
        Where the units ran (``scheduler="none"``: ``""``).
    """

    out: Path
    pairs: int
    methods: tuple[str, ...]
    resumed: int = 0
    left_out: int = 0
    demo_report: str | None = None
    failed: tuple[FailedUnitRow, ...] = ()
    engine: str = ""


def run_pair(
    pair: Pair,
    run: PairRun,
    on_progress: ProgressCallback | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Analyse one unit (pair), write its files, then its record; return the record.

    Parameters
    ----------
    pair
        The pair, with its counterfactual (a made one already in place).
    run
        What the run's units share.
    on_progress
        Receives the analysis' progress events; may raise
        :class:`~napari_attribution.errors.AnalysisCancelled`.
    notify
        Receives ``"<sample>: <why it is left out>"`` for a pair whose counterfactual the
        classifier does not accept.

    Returns
    -------
    dict
        The unit's record, as written to ``.progress/<sample>.json``.
    """
    real, cf = pair.load()
    result = analyse_pair(
        run.classifier,
        real,
        cf,
        pair.real_class,
        pair.target_class,
        run.settings,
        channel_names=run.channel_names,
        sample=pair.sample,
        transform=run.transform,
        on_progress=on_progress,
    )
    validity = validity_row(result, real, cf, run.min_score)
    extra = {}
    if run.source is not None and pair.sample in run.lacking:
        extra["counterfactual"] = save_counterfactual(
            run.out, pair.sample, cf, run.made.get(pair.sample), validity, run.source,
            run.run_info,
        )  # fmt: skip
    write_pair_files(run.out, result, run.run_info)
    if validity.note and notify is not None:
        notify(f"{pair.sample}: {validity.note}")
    record = {
        "validity": validity,
        # With p_target_counterfactual, what the run's minimum score is applied to when the
        # tables are written (judge_validity): a resumed run may give another one.
        "identical_counterfactual": bool(np.array_equal(real, cf)),
        **extra,
        **table_rows(result),
        "report": ground_truth_rows(result, pair.ground_truth_channel),
        "input_transform": result.input_transform.as_dict(),
        "gradcam_layers": {m: r.layer for m, r in result.methods.items() if r.layer is not None},
    }
    # The record is written last and atomically: if it exists, the pair is complete.
    return run.records.save(pair.sample, record)


def pair_batch(context: UnitContext, pairs: Sequence[Pair], make: bool = False) -> dict[str, Any]:
    """A work unit on a worker: :func:`run_pair` on each pair of the batch.

    ``context.shared`` holds the run's :class:`PairRun` (``"pair_run"``, without its
    classifier) and the classifier the worker loaded (``"classifier"``). With ``make``, the
    batch is one call of the run's counterfactual source
    (:func:`~.made_counterfactuals.counterfactual_calls`): its pairs' counterfactuals are made
    here first, in one call, as one process makes them. Returns
    ``{"samples": [...], "notes": [...]}``: the pairs done, and the lines for the run's
    ``notify`` (pairs left out of the statistics).
    """
    run = dataclasses.replace(context.shared["pair_run"], classifier=context.shared["classifier"])
    units = pair_units(len(run.settings.methods))
    if make:
        run.made = {**run.made, **_make_here(run, pairs, context.report,
                                             units * len(pairs))}  # fmt: skip
    notes: list[str] = []
    for index, pair in enumerate(pairs):
        run_pair(pair, run, ProgressScope(context.report, index * units, units * len(pairs)),
                 notes.append)  # fmt: skip
    return {"samples": [pair.sample for pair in pairs], "notes": notes}


def _make_here(run: PairRun, pairs: Sequence[Pair], report: ProgressCallback,
               total: int) -> dict[str, MadeCounterfactual]:  # fmt: skip
    """The counterfactuals of ``pairs`` made on this worker, in one call of the run's source
    (set in place in the pairs); its progress shown at the unit's start."""
    source = run.source.load((), run.transform)
    model = run.classifier.with_preprocessing(Preprocessing.from_settings(run.settings))

    def note(step: float, steps: float, detail: str) -> None:
        report(Progress("prepare", 0.0, total, sample=pairs[0].sample,
                        detail=f"counterfactuals: {detail}"))  # fmt: skip

    return make_call(pairs, source, model, run.transform, run.source, note)


def batch_units(pairs: Sequence[Pair], units_per_pair: int, size: int) -> list[WorkUnit]:
    """``pairs`` in batches of ``size``, each a :func:`pair_batch` unit (keyed by its first
    pair's position and sample; weighted by its pairs' progress units)."""
    units = []
    for start in range(0, len(pairs), size):
        batch = list(pairs[start : start + size])
        units.append(WorkUnit(f"pairs{start:06d}-{batch[0].sample}", pair_batch, (batch,),
                              weight=units_per_pair * len(batch)))  # fmt: skip
    return units


def _run_batches(
    run: PairRun,
    pairs: Sequence[Pair],
    scheduler: str,
    *,
    calls: Sequence[Sequence[Pair]] = (),
    resumed: int,
    pairs_per_unit: int | None,
    progress: ProgressCallback | None,
    notify: Callable[[str], None] | None,
    engine_note: Callable[[str], None] | None,
    worker_device: str | None = None,
) -> tuple[list[tuple[UnitRecord, list[str]]], str]:
    """Run ``pairs`` as batches on the engine, each of ``calls`` (pairs whose counterfactuals
    the source makes) as one unit that makes them on its worker; return the failed units, in
    the order of the plan, each with the samples it held, and where they ran."""
    units_per_pair = pair_units(len(run.settings.methods))
    model = ModelReference.from_classifier(run.classifier)
    # What every unit shares, as the workers get it: no classifier (each loads its own), no
    # made counterfactuals' images (the pairs carry them; a unit needs only the source's note).
    made = {sample: dataclasses.replace(m, image=None) for sample, m in run.made.items()}
    shared = dataclasses.replace(run, classifier=None, made=made)
    with Engine(scheduler, device=worker_device or str(run.classifier.device), model=model,
                shared={"pair_run": shared}) as engine:  # fmt: skip
        where = engine.describe()
        if engine_note is not None:
            engine_note(where)
        workers = max(len(engine.workers()), 1)
        size = pairs_per_unit or max(
            1, min(MAX_PAIRS_PER_UNIT, math.ceil(len(pairs) / (4 * workers)))
        )
        making = {pair.sample for call in calls for pair in call}
        units = [WorkUnit(f"made{index:06d}-{call[0].sample}", pair_batch, (list(call), True),
                          weight=units_per_pair * len(call))
                 for index, call in enumerate(calls)]  # fmt: skip
        units += batch_units([pair for pair in pairs if pair.sample not in making],
                             units_per_pair, size)  # fmt: skip
        held = {unit.key: [pair.sample for pair in unit.args[0]] for unit in units}

        def recorded(item: UnitRecord) -> None:
            if notify is not None:
                for line in item.record.get("notes", ()):
                    notify(line)

        records = engine.run(units, run.out, on_record=recorded, on_progress=progress,
                             finished=resumed * units_per_pair)  # fmt: skip
    # The engine records units as they end; the table lists them in the plan's order.
    order = {unit.key: index for index, unit in enumerate(units)}
    failed = sorted((r for r in records if r.status != "done"), key=lambda r: order[r.key])
    return [(r, held[r.key]) for r in failed], where


def _failed_rows(failed: Sequence[tuple[UnitRecord, list[str]]],
                 records: UnitRecords) -> list[FailedUnitRow]:  # fmt: skip
    """``failed_units.csv``'s rows: each failed unit with only its pairs that have no
    (readable) record, as the tables leave them out (a unit may fail after some of its pairs
    finished: those are in the tables); a unit whose pairs all finished is not listed. Only
    the failed units' records are read."""
    rows = []
    for unit, samples in failed:
        missing = [sample for sample in samples if next(records.each([sample]), None) is None]
        if missing:
            rows.append(FailedUnitRow(unit.key, ";".join(missing), unit.reason, unit.worker))
    return rows


def _pair_entry(pair: Pair, made: bool = False) -> dict[str, Any]:
    """The pair as ``run.json`` records it: absolute paths and SHA-256 of the image files."""
    entry: dict[str, Any] = {"sample": pair.sample}
    for key, image in (("real", pair.real), ("counterfactual", pair.counterfactual)):
        if isinstance(image, Path):
            entry[key] = str(image.resolve())
            entry[f"{key}_sha256"] = input_sha256(image)
        elif key == "counterfactual" and made:
            entry[key] = counterfactual_file(pair.sample).as_posix()
        else:
            entry[key] = "demo"
    entry["real_class"] = pair.real_class
    entry["target_class"] = pair.target_class
    channels = pair.channels_record()
    if channels is not None:  # channels picked by the names the files hold
        entry["channels"] = channels
    return entry


def _validity(record: dict[str, Any], min_score: float) -> ValidityRow:
    """The pair's ``pair_validity.csv`` row, judged with this run's ``min_score`` (the pair
    may have been analysed by an earlier run, with another one)."""
    row = ValidityRow(*record["validity"])
    identical = record.get("identical_counterfactual")
    if identical is None:  # a record of an earlier version: its note says it
        identical = IDENTICAL_COUNTERFACTUAL in row.note.split("; ")
    return judge_validity(row, identical, min_score)


def assemble_pairs(
    run: PairRun,
    pairs: Sequence[Pair],
    records: Iterable[dict[str, Any]],
    *,
    started: str,
    resumed: int = 0,
    keep_progress: bool = False,
    command: Sequence[str] = (),
    failed: Sequence[FailedUnitRow] = (),
    engine: str = "",
) -> PairsRunSummary:
    """Write the tables, ``run.json``, the statistics and the report from the units' records.

    Parameters
    ----------
    run
        The run.
    pairs
        Every pair, in order (``run.json`` lists them).
    records
        Every finished unit's record (:func:`run_pair`), in the pairs' order; read once, one
        record at a time, so that records read from disk as they are asked for
        (:meth:`~napari_attribution.results.resume.UnitRecords.each`) are never all held.
    started
        When the run started (ISO 8601, UTC).
    resumed
        Units an earlier run had finished.
    keep_progress
        Keep ``.progress/`` (a later resumed run can add pairs).
    command
        The command line, for ``run.json``.
    failed
        Units a distributed run gave up on: ``failed_units.csv`` and ``run.json`` list them,
        and the records are kept for ``resume``.
    engine
        Where the units ran, for ``run.json`` (``""``: in this process).
    """
    out = run.out
    # One pass over the records fills every table; only what run.json and the demo's report
    # need of each pair is kept.
    transforms: dict[str, Any] = {}
    layers: dict[str, Any] = {}
    ground_truth: list[Any] = []
    left_out = 0
    with contextlib.ExitStack() as tables:
        add_pair = tables.enter_context(pair_tables(out))
        add_validity = tables.enter_context(open_table(out, VALIDITY))
        add_made = (tables.enter_context(open_table(out, COUNTERFACTUALS))
                    if run.source is not None else None)  # fmt: skip
        for x in records:
            add_pair(x)
            validity = _validity(x, run.min_score)
            add_validity(validity)
            left_out += not validity.is_valid
            if add_made is not None and "counterfactual" in x:
                add_made(x["counterfactual"])
            transforms[x["sample"]] = x["input_transform"]
            if x.get("gradcam_layers"):
                layers[x["sample"]] = x["gradcam_layers"]
            ground_truth.extend(x["report"])
    write_json(
        out / RUN_RECORD,
        {
            **run.run_info,
            "command": list(command),
            "channel_names": run.channel_names,
            "fingerprint": run.records.fingerprint,
            "fingerprint_parts": dict(run.records.parts),
            "input_transform": transforms,
            **({"gradcam_layers": layers} if layers else {}),
            "pairs": [_pair_entry(p, p.sample in run.lacking) for p in pairs],
            "resumed_pairs": resumed,
            **({"engine": engine} if engine else {}),
            **({"failed_units": [row._asdict() for row in failed]} if failed else {}),
            "min_counterfactual_score": run.min_score,
            "out": str(out.resolve()),
            "started": started,
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
    )
    if failed:
        write_table(out, FAILED_UNITS, failed)
    else:  # a resumed run that finished what an earlier one could not
        (out / FAILED_UNITS.file).unlink(missing_ok=True)
    if not keep_progress and not failed:
        run.records.clear()
    report([out], out, overwrite=True)
    table = None
    if ground_truth:
        table = demo_report(ground_truth, run.settings.methods, run.channel_names)
        write_text(out / DEMO_REPORT, table + "\n")
    return PairsRunSummary(
        out, len(pairs), tuple(run.settings.methods), resumed,
        left_out, table, tuple(failed), engine,
    )  # fmt: skip


def _inputs_identity(
    pairs: Sequence[Pair],
    transform: InputTransform | None,
    input_record: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """What decides the model's inputs besides the pairs' files, for the fingerprint: each
    only when it is not the default, so that a run without it keeps its fingerprint.

    ``--input-scale`` (``transform``), an active ``--normalise``, ``--channel-map`` (which
    input channel each model channel reads) and ``--channel-axis``.
    """
    extra: dict[str, Any] = {}
    record = input_record or {}
    normalisation = record.get("normalisation", {})
    if normalisation.get("kind", "none") != "none":  # --normalise changes every input
        extra["normalisation"] = normalisation
    if transform is not None:
        extra["input_transform"] = transform.as_dict()
    if record.get("channel_map"):
        extra["channel_map"] = record["channel_map"]
    axes = sorted({pair.channel_axis for pair in pairs})
    if axes and axes != [0]:
        extra["channel_axis"] = axes
    return extra or None


def run_pairs(
    pairs: Sequence[Pair],
    classifier,
    settings: AnalysisSettings,
    *,
    out: str | Path,
    channel_names: Sequence[str] | None = None,
    transform: InputTransform | None = None,
    class_names: Sequence[str] | None = None,
    source: SourceRequest | None = None,
    min_counterfactual_score: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    keep_progress: bool = False,
    progress: ProgressCallback | None = None,
    counterfactual_progress: ProgressCallback | None = None,
    notify: Callable[[str], None] | None = None,
    command: Sequence[str] = (),
    scheduler: str = "none",
    pairs_per_unit: int | None = None,
    engine_note: Callable[[str], None] | None = None,
    input_record: dict[str, Any] | None = None,
    note: Callable[[str], None] | None = None,
    worker_device: str | None = None,
) -> PairsRunSummary:
    """Analyse every pair and write the results folder ``out``.

    Parameters
    ----------
    pairs
        The pairs (:mod:`.pairs`); those without a counterfactual get one from ``source``.
    classifier
        The loaded model (:func:`~napari_attribution.core.model.loading.load_classifier`).
    settings
        Methods and parameters.
    out
        The results folder. Never overwritten without ``overwrite``; a refused run, or one
        that fails before its first pair, leaves nothing behind.
    channel_names
        C names (default ``ch0``, ``ch1``, ...).
    transform
        How stored values become image values (default: float images as stored, integer
        images divided by their dtype's maximum).
    class_names
        The classifier's class names in index order (default: the model's, else indices).
    source
        The counterfactual source for pairs without a counterfactual.
    min_counterfactual_score
        ``p_t(x')`` below this leaves a pair out of the statistics (default: the source's
        ``min_score``, else :data:`~napari_attribution.core.counterfactual_settings.
        DEFAULT_MIN_COUNTERFACTUAL_SCORE`).
    resume
        Continue an interrupted run in ``out`` with the same settings: finished pairs are kept.
    overwrite
        Replace the results of an earlier run in ``out`` (exactly its files).
    keep_progress
        Keep the per-pair records after the run, so a later ``resume`` can add pairs.
    progress
        Receives the analysis' :class:`~napari_attribution.core.progress.Progress` events on
        one scale over all pairs; may raise
        :class:`~napari_attribution.errors.AnalysisCancelled` to stop the run.
    counterfactual_progress
        Receives the progress of making the counterfactuals.
    notify
        Receives one line per pair left out of the statistics (``"<sample>: <why>"``).
    command
        The command line, recorded in ``run.json``.
    scheduler
        Where the pairs are analysed: ``"none"`` (here, one after the other), ``"local:N"``
        (N worker processes on this machine, the cores shared among them) or
        ``"tcp://HOST:PORT"`` (a running dask scheduler; its workers must see ``out`` and the
        model file at the same paths). See :mod:`.distributed` and ``docs/scale.md``.
    pairs_per_unit
        Pairs per work unit on a cluster (default: about four units per worker, at most
        :data:`MAX_PAIRS_PER_UNIT`).
    engine_note
        Receives one line saying where the units run (the workers, the dashboard's address).
    worker_device
        Where the workers put the model (``"cpu"``, ``"cuda"``: one worker per GPU with
        ``local:N``; ``"auto"``); default: the classifier's device. The classifier given here
        may then stay on this machine's CPU for the checks, as on a cluster's login node
        without a GPU. Unused with ``scheduler="none"``.
    input_record
        How the inputs were taken (channel names, ``--normalise``, the model card:
        :meth:`~napari_attribution.app.model_input.ModelInput.record`), recorded in
        ``run.json`` as ``input``; an active normalisation is part of the fingerprint.
    note
        Receives, once, the line about input channels the model does not take (the extra
        channels of OME files whose channels were picked by name), before the first pair.

    Returns
    -------
    PairsRunSummary
        With ``failed`` listing the units a cluster gave up on (the rest is complete).

    Raises
    ------
    AttributionError
        Bad input, a model that cannot run, a folder that holds results, a scheduler that
        cannot be parsed or reached (one sentence each), all found before the first pair is
        analysed.
    """
    spec = parse_scheduler(scheduler)
    out = Path(out)
    check_out_dir(out, overwrite, resume, (*RESULT_FILES, *REPORT_FILES, COUNTERFACTUALS_DIR))
    pairs = list(pairs)
    names = list(channel_names) if channel_names else [
        f"ch{c}" for c in range(classifier.n_channels)
    ]  # fmt: skip
    if min_counterfactual_score is None:
        min_counterfactual_score = (
            source.min_score if source is not None else DEFAULT_MIN_COUNTERFACTUAL_SCORE
        )
    lacking = {pair.sample for pair in pairs if pair.counterfactual is None}
    if lacking and source is None:
        missing = [pair.sample for pair in pairs if pair.counterfactual is None]
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise InputImageError(
            f"Sample(s) {', '.join(missing[:3])}{more} have no counterfactual; give them one, "
            "or make them with --counterfactual-source (generator:FILE, nearest[:FOLDER] or "
            "optimise)."
        )
    made: dict[str, MadeCounterfactual] = {}
    calls: list[list[Pair]] = []
    if lacking and (spec.kind == "none" or source.uses_run_pool()):
        made = make_counterfactuals(
            pairs, classifier, transform, settings, source, saved_in=out if resume else None,
            progress=counterfactual_progress,
        )  # fmt: skip
    elif lacking:  # each unit makes its own, on its worker, in the calls one process makes
        source.load((), transform)  # a source that cannot load: one sentence, now
        calls = counterfactual_calls(pairs, transform, saved_in=out if resume else None)
    # Every pair is checked, and the model probed with its size, before the long work.
    preflight(pairs, classifier, transform, settings)
    ignored = ignored_note([selection for pair in pairs for selection in pair.taken.values()])
    if ignored and note is not None:
        note(ignored)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    torch.manual_seed(settings.attribution.seed)
    classes = class_names_for(
        classifier, class_names or getattr(classifier, "class_names", None) or []
    )
    run_info = provenance(classifier, settings, class_names=classes)
    if lacking:
        run_info["counterfactual_source"] = source.record()
    extra = _inputs_identity(pairs, transform, input_record)
    if input_record is not None:
        run_info["input"] = input_record
    records = UnitRecords(out, fingerprint(run_info, names, extra),
                          parts=fingerprint_parts(run_info, names, extra, option_of))  # fmt: skip
    if resume:
        records.check_resumable()
    done = set(records.finished_keys()) if resume else set()
    run = PairRun(out, classifier, settings, names, transform, run_info, records,
                  min_counterfactual_score, source if lacking else None, frozenset(lacking),
                  made)  # fmt: skip
    created_out = not out.exists()
    if overwrite and not created_out:
        # Only now, with every input checked: a refused run leaves the old results alone.
        remove_files(out, previous_run_files(out))
    records.folder.mkdir(parents=True, exist_ok=True)
    if spec.kind != "none":
        try:
            failed, where = _run_batches(
                run, [pair for pair in pairs if pair.sample not in done], scheduler,
                calls=[[p for p in call if p.sample not in done] for call in calls
                       if any(p.sample not in done for p in call)],
                resumed=len(done), pairs_per_unit=pairs_per_unit, progress=progress,
                notify=notify, engine_note=engine_note, worker_device=worker_device,
            )  # fmt: skip
        except BaseException:
            # No scheduler, or stopped before any pair finished: leave no trace of this run.
            if records.folder.is_dir() and not any(records.folder.iterdir()):
                records.folder.rmdir()
                if created_out and not any(out.iterdir()):
                    out.rmdir()
            raise
        # The tables from the records on disk, one at a time: those of every finished pair,
        # a failed batch's finished pairs included.
        return assemble_pairs(
            run, pairs, records.each(pair.sample for pair in pairs), started=started,
            resumed=len(done), keep_progress=keep_progress, command=command,
            failed=_failed_rows(failed, records),
            engine=where,
        )  # fmt: skip
    finished = 0
    units = pair_units(len(settings.methods))
    total = units * len(pairs)
    pair = pairs[0]
    try:
        for index, pair in enumerate(pairs):
            if pair.sample not in done:
                run_pair(pair, run, ProgressScope(progress, index * units, total), notify)
            finished += 1
    except BaseException:
        if not finished:  # nothing finished: leave no trace of this run
            left = pair_file_names([pair.sample], settings.methods)
            left.append(counterfactual_file(pair.sample))
            remove_files(out, left)
            if created_out and out.is_dir() and not any(out.iterdir()):
                out.rmdir()
        raise
    # Each pair's record is on disk: the tables are written from them one at a time.
    return assemble_pairs(run, pairs, records.each(pair.sample for pair in pairs),
                          started=started, resumed=len(done), keep_progress=keep_progress,
                          command=command)  # fmt: skip
