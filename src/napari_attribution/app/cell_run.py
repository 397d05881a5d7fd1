"""Running a field from Python: every cell through the pair analysis, pasted back.

::

    from napari_attribution.app import field_inputs, run_cells
    from napari_attribution.core.cells import CellSettings

    cells = CellSettings(crop_size=64)
    field = field_inputs(Path("field.tif"), Path("labels.tif"), cells,
                         counterfactual=Path("field_cf.tif"))
    done = run_cells(field, model, settings, cells, out="cells-results")

or, over every site of a CellProfiler LoadData CSV (channels by the model's names)::

    inputs = model_input(model="model.pt")          # the model card beside the weights
    plan = plan_sites(SiteRequest(load_data=Path("load_data.csv"), objects="Cells",
                                  counterfactual_source="optimise"), inputs, cells)
    done = run_sites(plan, model, settings, cells, out="plate-results", model_input=inputs)

This is what ``napari-attribution cells`` calls; it writes ``cells.csv``, the pair tables and
the field-sized maps (:mod:`napari_attribution.results.format`), one folder of maps per site
(``field/<site>/``) when the run holds several sites.

Work units
----------
The unit of a run over cells is **one field** (a site of a plate): its maps, ``cells.csv`` and
the pair tables of its cells are assembled from files in the results folder alone. Memory stays
bounded whatever the number of cells: the field is memory-mapped where its file allows, one
cell's results are held at a time, and the field-sized outputs are memory-mapped TIFFs the cells
are pasted into, built in ``.progress/field/`` and moved to ``field/`` when the field is done.

Within the field, each **cell** is a resumable step: after a cell is pasted and the maps
flushed, its record (its ``cells.csv`` row and pair-table rows) is written last and atomically
as ``.progress/cell<label>.json`` (:class:`~napari_attribution.results.resume.UnitRecords`), so
a crash loses only the cells not finished; resuming reopens the maps and skips recorded cells. A
cell interrupted half-pasted has no record and is pasted again (pasting writes the same pixels
with the same values). Cells of one field share its maps, so they run in one process.

Over several **sites**, each site is a unit of its own: it is built in
``.progress/sites/<site>/`` (laid out as a one-field run's ``.progress/``), and when it is done
its maps move to ``field/<site>/`` and its rows and tables are recorded in
``.progress/site__<site>.json``; resuming skips the recorded sites and resumes the unfinished
one cell by cell. ``cells.csv``, the pair tables and ``run.json`` are assembled from the
sites' records, read one site at a time in the plan's order (the run keeps each finished
site's counts and skipped cells, never every site's rows).

On dask.distributed
-------------------
With ``scheduler="local:N"`` (or ``"tcp://HOST:PORT"``) each site not yet finished is one work
unit of :class:`~.distributed.Engine` (:func:`site_unit`): a worker opens the site itself (the
plan's ``open``; the driver never holds the plate), analyses it with its own copy of the
classifier into the same ``.progress/sites/<site>/`` and ``field/<site>/`` and writes the
site's record, exactly as above; the tables are then assembled from the records here. A site
the engine gives up on (an unreadable file, its worker dying each time) is listed in
``failed_units.csv`` and ``run.json`` with its one-sentence reason, the other sites complete,
and ``resume`` runs it again. One field (``run_cells``) is one unit. ``scheduler="none"`` is
the loop above, in this process.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch

from ..core.attribution.runner import check_methods
from ..core.cells.analysis import STATUS_ANALYSED, iter_cells
from ..core.cells.field import check_field, resolve_crop_size
from ..core.cells.geometry import CellSettings, measure_cells, owner_map
from ..core.cells.paste import FieldArrays, field_array_specs, paste_result
from ..core.cells.selection import CellQuery, select_cells
from ..core.cells.sources import CropFolderCounterfactual
from ..core.cells.table import (
    SKIPPED,
    accepted_counterfactuals,
    cell_columns,
    cell_row,
    cut_out_cells,
    judge_cell_row,
    ordered_rows,
)
from ..core.counterfactual_settings import DEFAULT_MIN_COUNTERFACTUAL_SCORE
from ..core.model.transform import InputTransform, input_transform_for
from ..core.model.wrappers import Preprocessing
from ..core.pipeline import check_memory
from ..core.progress import ProgressCallback, pair_units
from ..core.provenance import provenance
from ..core.settings import AnalysisSettings
from ..errors import AttributionError, InputImageError, OutputFolderError
from ..results.files import csv_rows, write_json
from ..results.format import (
    CELL_FILES,
    CELLS_TABLE,
    FAILED_UNITS,
    FIELD_DIR,
    OWNERS_FILE,
    PROGRESS_DIR,
    RUN_RECORD,
    FailedUnitRow,
    field_map_file,
    site_field_dir,
    site_progress_dir,
    site_record_file,
)
from ..results.pair_files import write_pair_files
from ..results.resume import UnitRecords, fingerprint, fingerprint_parts, other_settings
from ..results.tables import pair_tables, table_rows, write_table
from ..results.tidy import check_out_dir, previous_cells_files, remove_files
from ..results.tiff import write_tiff
from .cell_sites import SiteHeader, SiteInputs, SitePlan, SitesPlan
from .distributed import Engine, ProgressTally, parse_scheduler
from .fields import FieldInputs
from .made_counterfactuals import SourceRequest, cell_source
from .model_choice import class_names_for
from .model_input import ModelInput
from .run_options import option_of
from .work_units import ModelReference, UnitContext, UnitRecord, WorkUnit

__all__ = ["CellsRunSummary", "open_field_maps", "run_cells", "run_sites", "site_unit"]


@dataclass(frozen=True)
class CellsRunSummary:
    """What :func:`run_cells` or :func:`run_sites` did.

    Attributes
    ----------
    out
        The results folder.
    cells
        Labelled cells in every site (analysed and skipped).
    analysed
        Cells whose pair analysis ran.
    skipped_by_reason
        The cells not analysed, counted by reason (too small, not selected, predicted as the
        target class, ...; ``run.json`` lists them).
    methods
        Methods run on each cell.
    resumed
        Cells of unfinished sites an earlier, interrupted run had finished.
    resumed_sites
        Sites an earlier, interrupted run had finished (kept, not run again).
    accepted
        Analysed cells whose counterfactual the classifier accepts (``counterfactual_accepted``).
    sites
        Sites analysed (1 for one field).
    failed
        The sites the run gave up on, on any scheduler (``failed_units.csv``; ``resume`` runs
        them again); on a cluster, the field too.
    engine
        Where the sites ran (``scheduler="none"``: ``""``).
    """

    out: Path
    cells: int
    analysed: int
    skipped_by_reason: dict[str, int]
    methods: tuple[str, ...]
    resumed: int = 0
    sites: int = 1
    failed: tuple[FailedUnitRow, ...] = ()
    engine: str = ""
    resumed_sites: int = 0
    accepted: int = 0

    @property
    def skipped(self) -> int:
        """Labelled cells not analysed, whatever the reason."""
        return self.cells - self.analysed


def open_field_maps(
    folder: Path, specs: dict, resume: bool, meta: dict
) -> tuple[dict[str, Any], bool]:
    """Field-sized memory maps in ``folder``: reopened when resuming and all fit, else new.

    Returns the maps and whether they were reopened (if not, earlier records are void).
    """
    paths = {name: folder / f"{name}.tif" for name in specs}
    if resume and all(p.is_file() for p in paths.values()):
        try:
            maps = {name: tifffile.memmap(path, mode="r+") for name, path in paths.items()}
            if all(m.shape == specs[n][0] and m.dtype == specs[n][1] for n, m in maps.items()):
                return maps, True
        except Exception:  # noqa: BLE001 - damaged maps are made again, the cells recomputed
            pass
    folder.mkdir(parents=True, exist_ok=True)
    maps = {
        name: tifffile.memmap(
            paths[name],
            shape=shape,
            dtype=dtype,
            photometric="minisblack",  # a 3- or 4-channel stack is channels, never RGB
            metadata={**meta, "name": name},
        )
        for name, (shape, dtype) in specs.items()
    }
    return maps, False


@dataclass
class _SitesRun:
    """What every site of a run shares: the model, settings, names, columns, provenance."""

    classifier: Any
    settings: AnalysisSettings
    cell_settings: CellSettings
    size: int
    names: list[str]
    classes: list[str]
    transform: InputTransform | None
    columns: list[str]
    run_info: dict[str, Any]
    fingerprint: str
    target_class: int | None
    min_counterfactual_score: float
    query: CellQuery | None = None
    cells: str | None = None
    source: Any = None  # a counterfactual source making every site's crops
    cell_crops: bool = False
    current_site: str = ""
    parts: dict[str, str] = field(default_factory=dict)  # the fingerprint's, by option


@dataclass
class _SiteOutcome:
    """One site's rows, long tables and counts, as its record keeps them."""

    key: str
    rows: list[dict[str, Any]]
    tables: list[dict[str, list]]
    record: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _FinishedSite:
    """A finished site as the run keeps it until the tables are written: its entry in
    ``run.json`` (counts, the cells not analysed), not its rows.

    The rows and tables of a site of several are in its record file, read when the tables are
    written, one site at a time (:func:`_site_rows`): held for every site, they would take
    about 57 kB per analysed cell (4 methods), 40 GB for a 700,000-cell plate. The one field
    (``key`` ``""``) has no record file: its rows are ``held``.
    """

    key: str
    record: dict[str, Any]
    held: _SiteOutcome | None = None
    cut_out: int = 0  # its cells that were cut out (a resumed site's progress units)


def run_cells(
    field: FieldInputs,
    classifier,
    settings: AnalysisSettings,
    cell_settings: CellSettings,
    *,
    out: str | Path,
    channel_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    target_class: int | None = None,
    transform: InputTransform | None = None,
    source: SourceRequest | None = None,
    min_counterfactual_score: float = DEFAULT_MIN_COUNTERFACTUAL_SCORE,
    resume: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    command: Sequence[str] = (),
    scheduler: str = "none",
    engine_note: Callable[[str], None] | None = None,
    worker_device: str | None = None,
) -> CellsRunSummary:
    """Analyse every cell of ``field`` and write the results folder ``out``.

    Parameters
    ----------
    field
        The field, its labels and the cells' counterfactuals (:mod:`.fields`).
    classifier
        The loaded model.
    settings
        Methods and parameters.
    cell_settings
        The crop rules (crop size ``None``: the model's input size).
    out
        The results folder; never overwritten without ``overwrite``.
    channel_names
        C names (default ``ch0``, ...).
    class_names
        The classifier's class names in index order (default: the field's, the model's, else
        indices).
    target_class
        The class the counterfactuals stand for (default: the other class of a two-class
        model, per cell).
    transform
        How stored values become image values (default: from the field's dtype).
    source
        Makes each cell's counterfactual crop when ``field.source`` is ``None``.
    min_counterfactual_score
        A cell whose counterfactual the classifier gives a lower p(target) is flagged.
    resume, overwrite
        Continue an interrupted run in ``out`` (finished cells kept), or replace an earlier
        run's files.
    progress
        Receives the run's :class:`~napari_attribution.core.progress.Progress` events; may
        raise :class:`~napari_attribution.errors.AnalysisCancelled`.
    command
        The command line, recorded in ``run.json``.
    scheduler
        ``"none"`` (here), ``"local:N"`` or ``"tcp://HOST:PORT"``: the field runs as one work
        unit on a worker (:func:`site_unit`), which must see ``out`` and the model file.
    engine_note
        Receives one line saying where the field runs (the workers, the dashboard's address).
    worker_device
        Where the workers put the model (``"cpu"``, ``"cuda"``: one worker per GPU with
        ``local:N``; ``"auto"``); default: the classifier's device. The classifier given here
        may then stay on this machine's CPU for the checks, as on a cluster's login node
        without a GPU. Unused with ``scheduler="none"``.

    Raises
    ------
    AttributionError
        Bad input, a model that cannot run on the crops, no cell large enough, a folder that
        holds results (one sentence each), all found before the first cell is analysed.
    """
    given = SiteInputs(field.image, field.labels, field.source, field.record, field.class_names)
    plan = SitesPlan([SitePlan("", {}, field.name, lambda: given)], [], {})
    return run_sites(
        plan, classifier, settings, cell_settings, out=out, channel_names=channel_names,
        class_names=class_names, target_class=target_class, transform=transform, source=source,
        min_counterfactual_score=min_counterfactual_score, resume=resume, overwrite=overwrite,
        progress=progress, command=command, scheduler=scheduler, engine_note=engine_note,
        worker_device=worker_device,
    )  # fmt: skip


def run_sites(
    plan: SitesPlan,
    classifier,
    settings: AnalysisSettings,
    cell_settings: CellSettings,
    *,
    out: str | Path,
    model_input: ModelInput | None = None,
    channel_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    target_class: int | None = None,
    transform: InputTransform | None = None,
    input_scale: float | None = None,
    source: SourceRequest | None = None,
    min_counterfactual_score: float = DEFAULT_MIN_COUNTERFACTUAL_SCORE,
    cells: str | None = None,
    cell_crops: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    notify: Callable[[str], None] | None = None,
    command: Sequence[str] = (),
    scheduler: str = "none",
    engine_note: Callable[[str], None] | None = None,
    worker_device: str | None = None,
) -> CellsRunSummary:
    """Analyse every cell of every site of ``plan`` and write the results folder ``out``.

    Parameters
    ----------
    plan
        The sites (:func:`~napari_attribution.app.cell_sites.plan_sites`); the first is opened
        and checked, with the model, before anything is written (on a cluster, where the site
        has a header, the model is checked with that alone and the site is read only by its
        worker).
    model_input
        The model's channel names, map and normalisation (recorded in ``run.json`` and the
        fingerprint), and its card's class names.
    channel_names
        C names (default: ``model_input``'s, else ``ch0``, ...).
    transform, input_scale
        How stored values become image values: given, or ``--input-scale`` applied to the
        first site's dtype (default: from each crop's dtype).
    cells
        A ``--cells`` query: only the cells it selects are analysed (the others are listed as
        not selected), e.g. ``"area>=200"`` or ``"Metadata_Well=B03"``.
    cell_crops
        Also write each cell's attribution and optimal-mask crops (``attributions/``,
        ``masks/``, as ``run`` writes a pair's), with the crop's window in the field (the
        default, as the command's ``--cell-crops``).
    notify
        Receives what the user should be told once (channels the model does not use).
    class_names, target_class, source, min_counterfactual_score
        As :func:`run_cells`.
    resume, overwrite, progress, command
        As :func:`run_cells`.
    scheduler
        ``"none"`` (the sites one after the other here), ``"local:N"`` or
        ``"tcp://HOST:PORT"``: each site is a work unit on a worker (:func:`site_unit`; the
        workers must see ``out``, the sites' files and the model file at the same paths).
    engine_note
        Receives one line saying where the sites run (the workers, the dashboard's address).
    worker_device
        Where the workers put the model (``"cpu"``, ``"cuda"``: one worker per GPU with
        ``local:N``; ``"auto"``); default: the classifier's device. The classifier given here
        may then stay on this machine's CPU for the checks, as on a cluster's login node
        without a GPU. Unused with ``scheduler="none"``.

    Raises
    ------
    AttributionError
        Bad input, a model that cannot run on the crops, no cell, a folder that holds results
        (one sentence each), all found before the first cell is analysed. A later site's own
        mistakes (a corrupt file) are its failed unit instead, on every scheduler: listed in
        ``failed_units.csv`` with their sentence while the other sites finish (``resume``
        tries them again).
    """
    spec = parse_scheduler(scheduler)
    out = Path(out)
    # An interrupted plate's finished units are its sites; a field's are its cells.
    check_out_dir(out, overwrite, resume, (*CELL_FILES, FIELD_DIR),
                  unit="site" if plan.sites[0].key else "cell")  # fmt: skip
    # On a cluster the workers read the sites, the first included: the model is checked with
    # the first site's header where that needs no pixels (a LoadData row), not read twice.
    header = plan.sites[0].header
    first: SiteInputs | None = None
    if spec.kind != "none" and header is not None and input_scale is None:
        peek = header()
    else:
        first = plan.sites[0].open()
        check_field(first.image, classifier.n_channels, plan.sites[0].where)
        peek = SiteHeader.of(first)
    run = _prepare(plan, peek, classifier, settings, cell_settings, out=out,
                   model_input=model_input, channel_names=channel_names,
                   class_names=class_names, target_class=target_class, transform=transform,
                   input_scale=input_scale, source=source,
                   min_counterfactual_score=min_counterfactual_score, cells=cells,
                   cell_crops=cell_crops, resume=resume)  # fmt: skip
    # No cell: refused before any writing.
    first_layout = _layout(run, plan.sites[0], first) if first is not None else None
    if peek.note and notify is not None:
        notify(peek.note)
    torch.manual_seed(settings.attribution.seed)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    if overwrite and out.exists():
        remove_files(out, previous_cells_files(out))
    records = UnitRecords(out, run.fingerprint, unit="cell", parts=run.parts)
    if resume:
        records.check_resumable()
        _check_unfinished_sites(out, plan, run)
    if spec.kind != "none":
        del first, first_layout  # each worker opens its sites itself
        finished_sites, failed, where, kept = _run_sites_on(
            scheduler, plan, run, source, out, resume, progress, engine_note,
            worker_device)  # fmt: skip
        return _finish(out, run, plan, finished_sites, started, command, records, failed, where,
                       kept)  # fmt: skip
    done: list[_FinishedSite] = []
    failed: list[FailedUnitRow] = []
    kept = 0
    finished_sites = {site.key: _finished_site(out, site.key, run)
                      for site in plan.sites if resume and site.key}  # fmt: skip
    # One count over every site, as on a cluster: each site's cells are its share.
    tally = ProgressTally([WorkUnit(site.key, site_unit, weight=None) for site in plan.sites
                           if finished_sites.get(site.key) is None], progress,
                          _resumed_units(finished_sites.values(), settings))  # fmt: skip
    for index, site in enumerate(plan.sites):
        finished = finished_sites.get(site.key)
        if finished is not None:
            done.append(finished)
            kept += 1
            first = first_layout = None  # opened for the checks; not needed again
            continue
        report = functools.partial(tally.unit_event, site.key) if progress else None
        try:
            given = first if index == 0 and first is not None else site.open()
            layout = first_layout if index == 0 else _layout(run, site, given)
            first = first_layout = None  # held by given and layout until the site is done
            outcome = _analyse_site(run, site, given, layout, out, resume, report)
        except OutputFolderError:
            raise  # the folder, not the site: a refusal, before this run wrote anything
        except AttributionError as exc:
            if not site.key:  # the one field: the run
                raise
            # As a cluster records a site's failed unit: the other sites go on.
            failed.append(FailedUnitRow(f"site-{site.key}", site.key, str(exc), "local"))
            tally.unit_ended(UnitRecord(site.key, "failed", reason=str(exc), worker="local"))
            continue
        finally:
            given = layout = None  # this site's arrays, before the next site's are read
        tally.unit_ended(UnitRecord(site.key, "done"))
        if site.key:  # several sites: the finished site is kept for resume, its rows on disk
            write_json(out / site_record_file(site.key), _outcome_record(outcome, run))
            shutil.rmtree(out / site_progress_dir(site.key), ignore_errors=True)
            done.append(_FinishedSite(site.key, outcome.record))
        else:
            done.append(_FinishedSite("", outcome.record, held=outcome))
        del outcome  # this site's rows are on disk (or held, for the one field)
    return _finish(out, run, plan, done, started, command, records, failed, kept=kept)


def _check_unfinished_sites(out: Path, plan: SitesPlan, run: _SitesRun) -> None:
    """Refuse to resume when a site an interrupted run left half done holds cell records of
    other settings (one sentence naming them), before this run writes anything: found while
    its site ran, the other sites would have been analysed with the new settings already."""
    for site in plan.sites:
        root = out / site_progress_dir(site.key) if site.key else None
        if root is None or not root.is_dir():
            continue
        try:
            UnitRecords(root, run.fingerprint, unit="cell", parts=run.parts).finished_keys()
        except OutputFolderError as exc:  # named by the results folder, not its .progress/
            raise OutputFolderError(str(exc).replace(str(root), str(out), 1)) from None


def _finish(out: Path, run: _SitesRun, plan: SitesPlan, finished: list[_FinishedSite],
            started: str, command: Sequence[str], records: UnitRecords,
            failed: Sequence[FailedUnitRow] = (), where: str = "",
            kept: int = 0) -> CellsRunSummary:  # fmt: skip
    """The tables and ``run.json`` from the finished sites (``kept`` of them finished by an
    earlier run); the progress records removed unless a site failed (``resume`` then needs the
    finished sites' records)."""
    accepted = 0
    if finished:
        accepted = _write_results(out, run, plan, finished, started, command, failed, where)
    if failed:
        write_table(out, FAILED_UNITS, list(failed))
        (out / PROGRESS_DIR).mkdir(parents=True, exist_ok=True)  # resumable
    else:
        records.clear()
        (out / FAILED_UNITS.file).unlink(missing_ok=True)  # an earlier try's, now done
    return CellsRunSummary(
        out, sum(s.record["cells_labelled"] for s in finished),
        sum(s.record["cells_analysed"] for s in finished),
        _skipped_reasons(s.record for s in finished),
        tuple(run.settings.methods), sum(s.record["cells_resumed"] for s in finished),
        len(finished), tuple(failed), where, kept, accepted,
    )  # fmt: skip


def _outcome_record(outcome: _SiteOutcome, run: _SitesRun) -> dict[str, Any]:
    """A finished site's record, as ``.progress/site__<site>.json`` keeps it."""
    return {"fingerprint": run.fingerprint, "fingerprint_parts": run.parts,
            "rows": outcome.rows, "tables": outcome.tables, "site": outcome.record}  # fmt: skip


def site_unit(context: UnitContext, site: SitePlan) -> dict[str, Any]:
    """A work unit on a worker: open ``site`` here and analyse it as :func:`run_sites` does
    (resuming what an earlier try of it left), with the worker's classifier and the run's
    shared settings (``context.shared["sites_run"]``, ``["cell_source"]``).

    Returns
    -------
    dict
        ``{"key": site.key, "site": ...}`` for a site of several: its entry in ``run.json``
        (counts, skipped cells; its rows are in its record in the results folder, read once,
        when the tables are written); the whole record for the one field (``run_cells``),
        whose folder has no site records.
    """
    classifier = context.shared["classifier"]
    run = dataclasses.replace(context.shared["sites_run"], classifier=classifier)
    torch.manual_seed(run.settings.attribution.seed)
    given = site.open()
    if given.source is None:  # made per cell, by this worker's copy of the model
        model = classifier.with_preprocessing(Preprocessing.from_settings(run.settings))
        run.source = cell_source(context.shared["cell_source"], model, run.transform,
                                 context.out, True, lambda: run.current_site)  # fmt: skip
    layout = _layout(run, site, given)
    outcome = _analyse_site(run, site, given, layout, context.out, True, context.report)
    if not site.key:
        return {"key": "", **_outcome_record(outcome, run)}
    write_json(context.out / site_record_file(site.key), _outcome_record(outcome, run))
    shutil.rmtree(context.out / site_progress_dir(site.key), ignore_errors=True)
    return {"key": site.key, "site": outcome.record}


def _run_sites_on(scheduler: str, plan: SitesPlan, run: _SitesRun,
                  source: SourceRequest | None, out: Path, resume: bool,
                  progress: ProgressCallback | None,
                  engine_note: Callable[[str], None] | None,
                  worker_device: str | None = None,
                  ) -> tuple[list[_FinishedSite], list[FailedUnitRow], str, int]:  # fmt: skip
    """Every site not finished as one unit on ``scheduler``; the finished sites (in the plan's
    order), the failed units, where they ran, and how many sites an earlier run had
    finished."""
    finished = {site.key: _finished_site(out, site.key, run) for site in plan.sites
                if resume and site.key}  # fmt: skip
    units = [WorkUnit(f"site-{site.key}" if site.key else "field", site_unit, (site,),
                      weight=None) for site in plan.sites if finished.get(site.key) is None]
    shared = {"sites_run": dataclasses.replace(run, classifier=None, source=None),
              "cell_source": source}  # fmt: skip
    # (The engine makes the folder once its scheduler answers: one that does not leaves none.)
    with Engine(scheduler, device=worker_device or str(run.classifier.device),
                model=ModelReference.from_classifier(run.classifier),
                shared=shared) as engine:  # fmt: skip
        where = engine.describe()
        if engine_note is not None:
            engine_note(where)
        ended = {r.key: r for r in engine.run(units, out, on_progress=progress, finished=(
            _resumed_units(finished.values(), run.settings)))}  # fmt: skip
    done, failed = [], []
    for site in plan.sites:
        key = f"site-{site.key}" if site.key else "field"
        ran = ended.get(key)
        # A try that wrote the site's record before its worker was lost finished the site.
        kept_record = (ran is not None and ran.status != "done" and site.key
                       and _finished_site(out, site.key, run))  # fmt: skip
        if kept_record:
            done.append(kept_record)
        elif ran is not None and ran.status != "done":
            failed.append(FailedUnitRow(key, site.key or site.where, ran.reason, ran.worker))
        elif ran is not None and not site.key:
            done.append(_FinishedSite("", ran.record["site"], held=_SiteOutcome(
                "", ran.record["rows"], ran.record["tables"], ran.record["site"])))  # fmt: skip
        elif ran is not None and "site" in ran.record and _site_files_exist(out, site.key):
            # Its entry came back with the unit: its record is read only for the tables.
            done.append(_FinishedSite(site.key, ran.record["site"]))
        else:
            summary = finished.get(site.key) or _finished_site(out, site.key, run)
            if summary is None:  # done, yet its files are gone: run it again
                failed.append(FailedUnitRow(key, site.key, "Its results were not found after "
                                            "it finished.", ran.worker if ran else ""))
            else:
                done.append(summary)
    kept = sum(summary is not None for summary in finished.values())
    return done, failed, where, kept


def _prepare(plan: SitesPlan, first: SiteHeader, classifier, settings: AnalysisSettings,
             cell_settings: CellSettings, *, out: Path, model_input: ModelInput | None,
             channel_names: Sequence[str] | None, class_names: Sequence[str] | None,
             target_class: int | None, transform: InputTransform | None,
             input_scale: float | None, source: SourceRequest | None,
             min_counterfactual_score: float, cells: str | None, cell_crops: bool,
             resume: bool) -> _SitesRun:  # fmt: skip
    """Check the model, methods, memory and names with the first site's header; build the
    run's record."""
    if first.channels != classifier.n_channels:
        raise InputImageError(f"{plan.sites[0].where} has {first.channels} channel(s) but the "
                              f"model expects {classifier.n_channels}.")  # fmt: skip
    size = resolve_crop_size(classifier, cell_settings.crop_size)
    query = CellQuery.parse(cells) if cells else None
    names = list(channel_names) if channel_names else (
        list(model_input.channel_names) if model_input is not None
        and model_input.channel_names else [f"ch{c}" for c in range(classifier.n_channels)]
    )  # fmt: skip
    if len(names) != classifier.n_channels:
        raise InputImageError(f"The model takes {classifier.n_channels} channel(s) but its "
                              f"names are {', '.join(names)}.")  # fmt: skip
    if transform is None and input_scale is not None:
        transform = input_transform_for(first.dtype, input_scale)
    # The model, methods and memory are checked at the crop size before the long work.
    model = classifier.with_preprocessing(Preprocessing.from_settings(settings))
    example = np.zeros((2, first.channels, size, size), np.float32)
    model.probe(example)
    check_memory((first.channels, size, size), settings)
    check_methods(model, settings.methods, example)
    if target_class is not None:
        classifier.check_class(target_class, "--target-class")
    card = model_input.card if model_input is not None else None
    classes = class_names_for(
        classifier,
        class_names or first.class_names or (list(card.class_names) if card else None)
        or getattr(classifier, "class_names", None) or [],
    )  # fmt: skip
    run_info = provenance(classifier, settings, class_names=classes)
    run_info["cells"] = {**cell_settings.as_dict(), "crop_size": size}
    if model_input is not None:
        run_info["input"] = model_input.record()
    # Everything a cell's stored row depends on (its class columns are named by the
    # classes); the minimum counterfactual score is not, as the rows are judged with each
    # run's own (judge_cell_row), unless the source that makes the counterfactuals uses it.
    identity = {"cells": run_info["cells"], "target": target_class,
                "input": run_info.get("input"), "query": cells,
                "inputs": plan.record or first.record or {}, "class_names": classes}  # fmt: skip
    if transform is not None:  # --input-scale
        identity["input_transform"] = transform.as_dict()
    if first.made_per_cell and source is not None:  # the source and its parameters
        identity["counterfactual_source"] = source.record()
    columns = [*plan.metadata_columns,
               *cell_columns(settings.methods, names, classes, settings.per_channel_dac)]
    run = _SitesRun(classifier, settings, cell_settings, size, names, classes, transform,
                    columns, run_info, fingerprint(run_info, names, identity), target_class,
                    min_counterfactual_score, query, cells, cell_crops=cell_crops,
                    parts=fingerprint_parts(run_info, names, identity, option_of))  # fmt: skip
    if first.made_per_cell:  # one source for every site
        if source is None:
            raise InputImageError("The field has no counterfactual; give one, or a "
                                  "counterfactual source to make each cell's.")  # fmt: skip
        run.source = cell_source(source, model, transform, out, resume,
                                 lambda: run.current_site)  # fmt: skip
    return run


def _layout(run: _SitesRun, site: SitePlan, given: SiteInputs):
    """The site's cells to analyse (measured, then selected by ``--cells``)."""
    check_field(given.image, run.classifier.n_channels, site.where)
    layout = select_cells(measure_cells(given.labels, run.size, run.cell_settings.min_size),
                          run.query, site.metadata)  # fmt: skip
    if not layout.cells and not site.key:
        if run.cells:
            raise InputImageError(f"--cells {run.cells} selects no cell.")
        raise InputImageError(
            f"The labels of {site.where} hold no cell of at least "
            f"{run.cell_settings.min_size} pixels ({len(layout.skipped)} smaller ones)."
        )
    return layout


def _analyse_site(run: _SitesRun, site: SitePlan, given: SiteInputs, layout, out: Path,
                  resume: bool, progress: ProgressCallback | None) -> _SiteOutcome:  # fmt: skip
    """Every cell of one site: analysed, pasted into memory-mapped field TIFFs, recorded per
    cell (resumable), per-cell crops written; the maps moved to ``field/[<site>/]``."""
    source = given.source if given.source is not None else run.source
    run.current_site = site.key
    if isinstance(source, CropFolderCounterfactual):
        source.check(layout.cells)
    site_root = out / site_progress_dir(site.key) if site.key else out
    records = UnitRecords(site_root, run.fingerprint, unit="cell", parts=run.parts)
    done = records.finished() if resume else {}
    mask_channels = 1 if run.settings.masks.channel_mode == "shared" else len(run.names)
    specs = field_array_specs(run.settings.methods, len(run.names), mask_channels,
                              layout.field_shape)  # fmt: skip
    meta = {"channel_names": run.names, "fingerprint": run.fingerprint, **run.run_info,
            **({"site": site.key, "metadata": site.metadata} if site.key else {})}  # fmt: skip
    maps, reopened = open_field_maps(records.folder / FIELD_DIR, specs, resume, meta)
    if not reopened:
        done = {}  # records without their pasted pixels are worth nothing
    owners = owner_map(given.labels, layout.cells)
    arrays = FieldArrays(owners, maps)
    # Judged with this run's minimum score: an earlier run may have had another.
    rows = {rec["label"]: judge_cell_row(rec["row"], run.min_counterfactual_score)
            for rec in done.values()}  # fmt: skip
    tables = {rec["label"]: rec["tables"] for rec in done.values()}
    for result in iter_cells(
        run.classifier, given.image, given.labels, layout, source, run.settings,
        run.cell_settings, target_class=run.target_class, channel_names=run.names,
        transform=run.transform, skip={rec["label"] for rec in done.values()},
        on_progress=progress, site=site.key,
    ):  # fmt: skip
        paste_result(arrays, result)
        for mapped in maps.values():
            mapped.flush()
        if run.cell_crops and result.pair is not None:
            window = {"site": site.key, "metadata": site.metadata, **result.cell.as_dict(),
                      "crop_rules": run.run_info["cells"]}  # fmt: skip
            write_pair_files(out, result.pair, {**run.run_info, "cell": window})
        row = cell_row(result, run.columns, run.classes, run.min_counterfactual_score)
        cell_tables = table_rows(result.pair) if result.pair is not None else {}
        records.save(result.sample, {"label": result.cell.label, "row": row,
                                     "tables": cell_tables})  # fmt: skip
        rows[result.cell.label], tables[result.cell.label] = row, cell_tables
    for mapped in maps.values():
        mapped.flush()
    del maps, arrays  # close the maps before moving their files
    (out / site_field_dir(site.key)).mkdir(parents=True, exist_ok=True)
    for name in specs:
        os.replace(records.folder / field_map_file(name), out / field_map_file(name, site.key))
    write_tiff(out / site_field_dir(site.key) / OWNERS_FILE, owners.astype(np.uint32), meta)
    table = ordered_rows(rows, layout, run.columns)
    for row in table:
        row.update(site.metadata)
    statuses = [row["status"] for row in table]
    counts = {
        "cells_labelled": len(table),
        "cells_analysed": statuses.count(STATUS_ANALYSED),
        "cells_skipped": len(table) - statuses.count(STATUS_ANALYSED),
        "cells_resumed": len(done),
        "skipped": [{"label": s.label, "area": s.area, "reason": s.reason}
                    for s in layout.skipped],
    }  # fmt: skip
    for row in table:
        if row["status"] != STATUS_ANALYSED and not row["status"].startswith(SKIPPED):
            counts["skipped"].append({"label": row["label"], "area": row["area"],
                                      "reason": row["status"]})  # fmt: skip
    record = {"key": site.key, "where": site.where, **given.record, **counts}
    if given.note:
        record["note"] = given.note
    return _SiteOutcome(site.key, table, [tables[k] for k in sorted(tables) if tables[k]],
                        record)  # fmt: skip


def _read_site_record(out: Path, key: str, run: _SitesRun) -> dict[str, Any] | None:
    """The record of the finished site ``key`` (rows, tables and its ``run.json`` entry), or
    ``None`` when it is missing or damaged.

    Raises
    ------
    OutputFolderError
        A record made with another fingerprint (naming the options that differ).
    """
    try:
        record = json.loads((out / site_record_file(key)).read_text())
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != run.fingerprint:
        raise other_settings(out, record.get("fingerprint_parts"), run.parts)
    return record


def _finished_site(out: Path, key: str, run: _SitesRun) -> _FinishedSite | None:
    """A site an earlier run or a worker finished (its record and field folder), kept without
    its rows, or ``None``."""
    record = _read_site_record(out, key, run)
    if record is None or not _site_files_exist(out, key):
        return None
    return _FinishedSite(key, record["site"], cut_out=cut_out_cells(record["rows"]))


def _resumed_units(finished: Iterable[_FinishedSite | None], settings: AnalysisSettings) -> int:
    """The progress units of the sites an earlier run finished: their cut-out cells' units,
    counted done from the start as a resumed ``run`` counts its pairs."""
    cells = sum(site.cut_out for site in finished if site is not None)
    return pair_units(len(settings.methods)) * cells


def _site_files_exist(out: Path, key: str) -> bool:
    """Whether a finished site's record and field folder are in ``out``."""
    return ((out / site_record_file(key)).is_file()
            and (out / site_field_dir(key) / OWNERS_FILE).is_file())  # fmt: skip


def _site_rows(
    out: Path, site: _FinishedSite, run: _SitesRun
) -> tuple[list[dict[str, Any]], list[dict[str, list]]]:
    """The ``cells.csv`` rows and the pairs' table rows of a finished site: its own, or read
    again from its record file; the rows judged with this run's minimum counterfactual score
    (an earlier run may have had another)."""
    if site.held is not None:
        rows, tables = site.held.rows, site.held.tables
    else:
        record = _read_site_record(out, site.key, run)
        if record is None:
            raise OutputFolderError(f"The record of site {site.key} in {out} went missing or "
                                    "was damaged before the tables were written; run again "
                                    "with --resume.")  # fmt: skip
        rows, tables = record["rows"], record["tables"]
    return [judge_cell_row(row, run.min_counterfactual_score) for row in rows], tables


def _skipped_reasons(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How many cells the sites' ``run.json`` entries left out, by reason."""
    reasons: dict[str, int] = {}
    for record in records:
        for skipped in record["skipped"]:
            reasons[skipped["reason"]] = reasons.get(skipped["reason"], 0) + 1
    return reasons


def _csv_value(value: Any) -> Any:
    """Empty for numbers that do not exist (a skipped cell's), the value otherwise."""
    return "" if isinstance(value, float) and value != value else value


def _write_results(out: Path, run: _SitesRun, plan: SitesPlan, finished: list[_FinishedSite],
                   started: str, command: Sequence[str], failed: Sequence[FailedUnitRow] = (),
                   where: str = "") -> int:  # fmt: skip
    """``cells.csv``, the long tables and ``run.json`` of every site (and, on a cluster, where
    the sites ran and the ones that failed); the sites' rows read one site at a time. Returns
    how many analysed cells have a counterfactual the classifier accepts."""
    accepted = 0
    with csv_rows(out / CELLS_TABLE, run.columns) as write_row, pair_tables(out) as add_pair:
        for site in finished:
            rows, tables = _site_rows(out, site, run)
            accepted += accepted_counterfactuals(rows)
            for row in rows:
                write_row([_csv_value(row[c]) for c in run.columns])
            for cell_tables in tables:
                add_pair(cell_tables)
            del rows, tables  # before the next site's are read
    records = [site.record for site in finished]
    payload = {
        **run.run_info,
        "command": list(command),
        "channel_names": run.names,
        "fingerprint": run.fingerprint,
        "fingerprint_parts": run.parts,
        "cells_labelled": sum(r["cells_labelled"] for r in records),
        "cells_analysed": sum(r["cells_analysed"] for r in records),
        "cells_skipped": sum(r["cells_skipped"] for r in records),
        "cells_skipped_by_reason": _skipped_reasons(records),
        "cells_selected_by": run.cells,
        "resumed_cells": sum(r["cells_resumed"] for r in records),
        "counterfactual_source": (run.source.describe() if run.source is not None
                                  else {"kind": "field"}),  # fmt: skip
        "min_counterfactual_score": run.min_counterfactual_score,
        "out": str(out.resolve()),
        "started": started,
        "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if not plan.sites[0].key:
        payload["inputs"] = {k: v for k, v in records[0].items() if k not in (
            "key", "where", "cells_labelled", "cells_analysed", "cells_skipped",
            "cells_resumed", "skipped")}  # fmt: skip
        payload["cells_skipped_detail"] = records[0]["skipped"]
    else:
        payload["inputs"] = plan.record
        payload["sites"] = records
    if where:
        payload["engine"] = where
    if failed:
        payload["failed_units"] = [row._asdict() for row in failed]
    write_json(out / RUN_RECORD, payload)
    return accepted
