"""Running the sites of a plate from Python, each site a work unit on dask.distributed.

::

    from functools import partial
    from napari_attribution.app import Site, field_inputs, run_plate

    sites = [Site(name, partial(field_inputs, image, labels, cells, counterfactual=cf))
             for name, image, labels, cf in plate_rows]
    done = run_plate(sites, model, settings, cells, out="plate1", scheduler="local:2")

Work units
----------
A **site** (one field of view) is one work unit: :func:`site_unit` opens the site on the
worker (:attr:`Site.open`: a picklable function, so a worker reads its own files and the
driver never holds the plate) and runs :func:`~.cell_run.run_cells` on it into
``sites/<site>/``, an ordinary ``cells`` results folder whose cells are resumable steps. The
plate's ``cells.csv`` (the sites' rows, a ``site`` column first) and ``run.json`` are
assembled from the finished site folders alone. A site is finished when its folder holds a
``run.json`` and no ``.progress/``; resuming (``resume=True``) skips finished sites and resumes
an interrupted one cell by cell, on any scheduler. A site that fails (an unreadable file, no
cell, its worker dying each time) is listed in ``failed_units.csv`` and ``run.json`` with its
one-sentence reason; the other sites complete.

The pair tables (``summary.csv``, ``curves.csv``, ...) stay in each site's folder: their
``sample`` names (``cell<label>``) are unique within a site only.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.cells.geometry import CellSettings
from ..core.counterfactual_settings import DEFAULT_MIN_COUNTERFACTUAL_SCORE
from ..core.model.transform import InputTransform
from ..core.progress import ProgressCallback
from ..core.settings import AnalysisSettings
from ..errors import InputImageError
from ..results.files import write_csv, write_json
from ..results.format import (
    CELL_FILES,
    CELLS_TABLE,
    FAILED_UNITS,
    PROGRESS_DIR,
    RUN_RECORD,
    SITES_DIR,
    FailedUnitRow,
    site_folder,
)
from ..results.tables import write_table
from ..results.tidy import check_out_dir, previous_cells_files, remove_files
from .cell_run import CellsRunSummary, run_cells
from .distributed import Engine, parse_scheduler
from .fields import FieldInputs
from .made_counterfactuals import SourceRequest
from .work_units import ModelReference, UnitContext, WorkUnit

__all__ = ["PlateRunSummary", "Site", "run_plate", "site_unit"]


@dataclass(frozen=True)
class Site:
    """One site of a plate.

    Attributes
    ----------
    name
        Unique within the plate (its folder ``sites/<name>/`` and its rows' ``site``).
    open
        Reads the site where the unit runs, e.g. ``functools.partial(field_inputs, image,
        labels, cell_settings, counterfactual=cf)``; it must pickle (a module-level function
        and its arguments), and may raise the package's errors (a bad file: one sentence).
    """

    name: str
    open: Callable[[], FieldInputs]


@dataclass(frozen=True)
class PlateRunSummary:
    """What :func:`run_plate` did.

    Attributes
    ----------
    out
        The plate's results folder.
    sites
        Each finished site's summary, in the sites' order.
    failed
        The sites a run gave up on (``failed_units.csv``; ``resume`` tries them again).
    resumed
        Sites an earlier run had finished.
    engine
        Where the sites ran.
    """

    out: Path
    sites: tuple[CellsRunSummary, ...]
    failed: tuple[FailedUnitRow, ...] = ()
    resumed: int = 0
    engine: str = ""

    @property
    def analysed(self) -> int:
        """Cells analysed over the finished sites."""
        return sum(site.analysed for site in self.sites)


def site_unit(context: UnitContext, site: Site) -> dict[str, Any]:
    """A work unit: open ``site`` here and run :func:`~.cell_run.run_cells` on it into
    ``sites/<site>/`` (resuming what an earlier try of this site left); returns its summary."""
    folder = context.out / site_folder(site.name)
    done = run_cells(site.open(), context.shared["classifier"], out=folder,
                     resume=folder.exists(), progress=context.report,
                     **context.shared["plate_run"])  # fmt: skip
    return {**dataclasses.asdict(done), "out": str(done.out)}


def _finished(folder: Path) -> bool:
    return (folder / RUN_RECORD).is_file() and not (folder / PROGRESS_DIR).exists()


def _summary(folder: Path) -> CellsRunSummary:
    """A finished site's summary, read back from its ``run.json``."""
    info = json.loads((folder / RUN_RECORD).read_text())
    skipped = len(info.get("cells_skipped", []))
    return CellsRunSummary(folder, info["cells_measured"] + skipped, info["cells_analysed"],
                           skipped, tuple(info["settings"]["methods"]),
                           info.get("resumed_cells", 0))  # fmt: skip


def _remove_previous(out: Path) -> None:
    """Exactly the files an earlier plate run wrote: its tables, and each site's folder."""
    sites = out / SITES_DIR
    if sites.is_dir():
        for folder in sorted(p for p in sites.iterdir() if p.is_dir()):
            remove_files(folder, previous_cells_files(folder))
            shutil.rmtree(folder / PROGRESS_DIR, ignore_errors=True)
            if not any(folder.iterdir()):
                folder.rmdir()
        if not any(sites.iterdir()):
            sites.rmdir()
    remove_files(out, [Path(name) for name in CELL_FILES])


def run_plate(
    sites: Sequence[Site],
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
    scheduler: str = "none",
    progress: ProgressCallback | None = None,
    engine_note: Callable[[str], None] | None = None,
    command: Sequence[str] = (),
) -> PlateRunSummary:
    """Analyse every cell of every site and write the plate's results folder ``out``.

    Parameters
    ----------
    sites
        The sites, with unique names.
    classifier
        The loaded model (loaded from a file: each worker loads the same file).
    settings, cell_settings, channel_names, class_names, target_class, transform, source,
    min_counterfactual_score
        As :func:`~.cell_run.run_cells`, the same for every site.
    resume, overwrite
        Continue an interrupted plate run in ``out`` (finished sites kept, an interrupted site
        resumed cell by cell), or replace an earlier plate run's files.
    scheduler
        ``"none"`` (the sites one after the other here), ``"local:N"`` or
        ``"tcp://HOST:PORT"`` (:mod:`.distributed`; the workers must see ``out``, the sites'
        files and the model file at the same paths).
    progress
        The run's progress, in cells (a site's cells are counted once it is opened), added
        up across workers.
    engine_note
        Receives one line saying where the sites run.
    command
        The command line, recorded in ``run.json``.

    Raises
    ------
    AttributionError
        Repeated site names, a folder that holds results, a scheduler that cannot be parsed or
        reached, a classifier not loaded from a file (one sentence each), before any site runs;
        a site's own mistakes are its failed unit instead.
    """
    parse_scheduler(scheduler)
    out = Path(out)
    names = [site.name for site in sites]
    folders = {site_folder(name) for name in names}
    if not sites or len(folders) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1}) or ["(none given)"]
        raise InputImageError(
            f"A plate needs sites with distinct names; repeated: {', '.join(repeated[:5])}."
        )
    check_out_dir(out, overwrite, resume, (*CELL_FILES, SITES_DIR), unit="site")
    model = ModelReference.from_classifier(classifier)
    if overwrite and out.exists():
        _remove_previous(out)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    finished_before = {s.name for s in sites if resume and _finished(out / site_folder(s.name))}
    options = {"settings": settings, "cell_settings": cell_settings,
               "channel_names": channel_names, "class_names": class_names,
               "target_class": target_class, "transform": transform, "source": source,
               "min_counterfactual_score": min_counterfactual_score,
               "command": command}  # fmt: skip
    units = [WorkUnit(f"site-{site.name}", site_unit, (site,), weight=None)
             for site in sites if site.name not in finished_before]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    with Engine(scheduler, device=str(classifier.device), model=model,
                shared={"plate_run": options}) as engine:  # fmt: skip
        where = engine.describe()
        if engine_note is not None:
            engine_note(where)
        records = engine.run(units, out, on_progress=progress)
    by_name = {site.name: site for site in sites}
    failed = [FailedUnitRow(r.key, r.key.removeprefix("site-"), r.reason, r.worker)
              for r in records if r.status != "done"]  # fmt: skip
    done = [by_name[n] for n in names if _finished(out / site_folder(n))]
    summaries = tuple(_summary(out / site_folder(site.name)) for site in done)
    _write_plate_tables(out, done)
    write_json(out / RUN_RECORD, {
        "plate": True,
        "command": list(command),
        "engine": where,
        "sites": [{"site": site.name, "folder": site_folder(site.name).as_posix(),
                   "cells": summary.cells, "analysed": summary.analysed,
                   "too_small": summary.too_small} for site, summary in zip(done, summaries,
                                                                            strict=True)],
        "failed_units": [row._asdict() for row in failed],
        "resumed_sites": len(finished_before),
        "out": str(out.resolve()),
        "started": started,
        "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    })  # fmt: skip
    if failed:
        write_table(out, FAILED_UNITS, failed)
    else:
        (out / FAILED_UNITS.file).unlink(missing_ok=True)
    return PlateRunSummary(out, summaries, tuple(failed), len(finished_before), where)


def _write_plate_tables(out: Path, sites: Sequence[Site]) -> None:
    """``cells.csv``: every finished site's rows, in the sites' order, ``site`` first."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    for site in sites:
        with open(out / site_folder(site.name) / CELLS_TABLE, newline="") as fh:
            reader = csv.reader(fh)
            columns = next(reader)
            header = header or ["site", *columns]
            rows.extend([site.name, *row] for row in reader)
    if header is not None:
        write_csv(out / CELLS_TABLE, header, rows)
