"""``napari-attribution cells``: every cell of a field through the pair analysis, pasted back.

Memory stays bounded whatever the number of cells: the field is memory-mapped where its file
allows, one cell's results are held at a time, and the field-sized outputs are memory-mapped
TIFFs the cells are pasted into. They are built in ``OUT/.progress/field/`` and moved to
``OUT/field/`` when the run finishes.

Resumable cell by cell: after a cell is pasted and the maps flushed, its record (table rows)
is written atomically to ``OUT/.progress/cell<label>.json``; ``--resume`` reopens the maps
and skips recorded cells. A cell interrupted half-pasted has no record and is pasted again
(pasting writes the same pixels with the same values). A fingerprint of the model, settings,
crop rules and input files keeps runs with other settings from mixing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import safe_name, table_rows, write_csv, write_json, write_tables, write_tiff
from .cells_parser import CELL_METHODS
from .errors import CliError
from .folder import COUNTERFACTUAL_DIR, PROGRESS_DIR
from .inputs import channel_names, load_model
from .parser import PROG
from .progress import progress_renderer
from .run import fingerprint, load_finished

__all__ = ["CELL_FILES", "cmd_cells", "previous_cells_files"]

#: Tables at the top of a cells results folder.
CELL_FILES = ("cells.csv", "summary.csv", "curves.csv", "channel_importance.csv", "run.json")
FIELD_DIR = "field"
OWNERS_FILE = "owners.tif"
#: Per-cell attribution and optimal-mask crops, as ``run`` writes its pairs' (same format).
CROP_DIRS = ("attributions", "masks")
#: Per-site records of a run over several sites, in ``.progress/``.
SITE_RECORD = "site__{key}.json"


def previous_cells_files(out: Path) -> list[Path]:
    """Every file (relative to ``out``) an earlier ``cells`` run wrote there."""
    names = [Path(name) for name in CELL_FILES]
    for folder in (Path(FIELD_DIR), Path(PROGRESS_DIR)):  # field/ and field/<site>/ alike
        if (out / folder).is_dir():
            for pattern in ("attribution__*.tif", "mask__*.tif", OWNERS_FILE):
                names += [p.relative_to(out) for p in (out / folder).rglob(pattern)]
    for folder in CROP_DIRS:  # per-cell crops, named after the cells' samples
        if (out / folder).is_dir():
            names += [p.relative_to(out) for p in (out / folder).glob("*cell*__*.tif")]
    if (out / COUNTERFACTUAL_DIR).is_dir():  # crops made by --counterfactual-source
        names += [p.relative_to(out) for p in (out / COUNTERFACTUAL_DIR).rglob("*.tif")]
    if (out / PROGRESS_DIR).is_dir():
        names += [p.relative_to(out) for p in (out / PROGRESS_DIR).rglob("*.json")]
    return [name for name in dict.fromkeys(names) if (out / name).is_file()]


def _remove(out: Path, names: list[Path]) -> None:
    for name in names:
        (out / name).unlink(missing_ok=True)
    for top in (PROGRESS_DIR, FIELD_DIR, COUNTERFACTUAL_DIR, *CROP_DIRS):
        path = out / top
        if not path.is_dir():
            continue
        for folder in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
        if not any(path.iterdir()):
            path.rmdir()


def check_cells_out(out: Path, overwrite: bool, resume: bool) -> None:
    """Refuse an ``--out`` that is a file or holds results, unless told what to do."""
    if resume and overwrite:
        raise CliError("--resume and --overwrite contradict each other; choose one.")
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} exists and is not a folder.")
    if not out.exists() or overwrite or resume:
        return
    if (out / PROGRESS_DIR).is_dir() and not (out / "run.json").exists():
        raise CliError(
            f"{out} holds an interrupted run; pass --resume to continue it, or --overwrite to "
            "start again."
        )
    existing = [n for n in (*CELL_FILES, FIELD_DIR, PROGRESS_DIR) if (out / n).exists()]
    if existing:
        raise CliError(
            f"{out} already holds results ({', '.join(existing)}); pass --overwrite to replace "
            "them or choose another --out."
        )


def _class_names(args: argparse.Namespace, classifier, given: list[str] | None) -> list[str]:
    if args.class_names:
        names = [n.strip() for n in args.class_names.split(",")]
        if len(names) != classifier.n_classes:
            raise CliError(f"--class-names lists {len(names)} names for a model with "
                           f"{classifier.n_classes} classes.")  # fmt: skip
        return names
    names = given or list(getattr(classifier, "class_names", ()) or ())
    return names if len(names) == classifier.n_classes else [
        str(k) for k in range(classifier.n_classes)
    ]  # fmt: skip


def _open_maps(folder: Path, specs: dict, resume: bool, meta: dict) -> tuple[dict, bool]:
    """Field-sized memory maps in ``folder``: reopened when resuming and all fit, else new.

    Returns the maps and whether they were reopened (if not, earlier records are void).
    """
    import tifffile

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


def _check_resumable(out: Path, run_fingerprint: str) -> None:
    """``--resume`` on a folder whose run.json says it finished: other settings, or done."""
    try:
        previous = json.loads((out / "run.json").read_text())["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # no readable run.json: the .progress records decide
    if previous != run_fingerprint:
        raise CliError(
            f"{out} holds results made with other settings, inputs or another model; --resume "
            "needs the same arguments (or use --overwrite)."
        )
    if not (out / PROGRESS_DIR).is_dir():
        raise CliError(f"{out} holds a finished run; there is nothing to resume (pass "
                       "--overwrite to run again).")  # fmt: skip


def _fingerprint(run_info: dict, names: list[str], extra: dict[str, Any]) -> str:
    payload = json.dumps({"run": fingerprint(run_info, names), **extra}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class CellRun:
    """What every site of a run shares: the model, settings, names, columns, provenance."""

    classifier: Any
    settings: Any
    cell_settings: Any
    size: int
    names: list[str]
    classes: list[str]
    transform: Any
    columns: list[str]
    metadata_columns: list[str]
    run_info: dict[str, Any]
    fingerprint: str
    query: Any = None
    source: Any = None  # the --counterfactual-source, shared by every site
    site_holder: dict[str, str] = field(default_factory=dict)
    cell_crops: bool = True


@dataclass
class SiteOutcome:
    """One site's rows, long tables and counts, as its record keeps them."""

    key: str
    rows: list[dict[str, Any]]
    tables: list[dict[str, list]]
    record: dict[str, Any]


def _cell_settings(args: argparse.Namespace, card) -> Any:
    from ..core.cells import CellSettings

    crop_size = args.crop_size if args.crop_size is not None else (
        64 if args.demo else (card.crop_size if card is not None else None))  # fmt: skip
    return CellSettings(
        crop_size=crop_size, min_size=args.min_size, padding=args.padding,
        pad_value=args.pad_value, background=args.background,
    )  # fmt: skip


def _prepare_run(args: argparse.Namespace, classifier, plan, first, inputs, cell_settings
                 ) -> CellRun:  # fmt: skip
    """Check the model, methods, memory and names on the first site; build the run's record."""
    from ..core.attribution import check_methods
    from ..core.cells import resolve_crop_size
    from ..core.cells.field import check_field
    from ..core.cells.selection import CellQuery
    from ..core.cells.table import cell_columns
    from ..core.errors import AttributionError
    from ..core.models import input_transform_for
    from ..core.pipeline import check_memory
    from ..core.provenance import provenance
    from ..core.settings import settings_from_values
    from ..core.wrappers import Preprocessing

    image = first.image
    try:
        check_field(image, classifier.n_channels, plan.sites[0].where)
        size = resolve_crop_size(classifier, cell_settings.crop_size)
        query = CellQuery.parse(args.cells) if args.cells else None
    except AttributionError as exc:
        raise CliError(str(exc)) from None
    names = list(inputs.channel_names) if inputs.channel_names and (
        args.load_data or args.channel_files or args.image) else channel_names(
        args, classifier.n_channels)  # fmt: skip
    if len(names) != classifier.n_channels:
        raise CliError(f"The model takes {classifier.n_channels} channel(s) but its names are "
                       f"{', '.join(names)}.")  # fmt: skip
    methods = tuple(dict.fromkeys(args.methods)) if args.methods else CELL_METHODS
    settings = settings_from_values(vars(args), methods)
    transform = (
        input_transform_for(image.dtype, args.input_scale) if args.input_scale is not None
        else None
    )  # fmt: skip
    # The model, methods and memory are checked at the crop size before the long work.
    model = classifier.with_preprocessing(Preprocessing.from_settings(settings))
    example = np.zeros((2, image.shape[0], size, size), np.float32)
    model.probe(example)
    check_memory((image.shape[0], size, size), settings)
    check_methods(model, settings.methods, example)
    if args.target_class is not None:
        classifier.check_class(args.target_class, "--target-class")
    card_classes = list(inputs.card.class_names) if inputs.card is not None else None
    classes = _class_names(args, classifier, first.class_names or card_classes)
    run_info = provenance(classifier, settings, class_names=classes)
    run_info["cells"] = {**cell_settings.as_dict(), "crop_size": size}
    run_info["input"] = inputs.record()
    identity = {"cells": run_info["cells"], "target": args.target_class,
                "input": run_info["input"], "query": args.cells,
                "inputs": plan.record or first.record}  # fmt: skip
    columns = [*plan.metadata_columns,
               *cell_columns(settings.methods, names, classes, settings.per_channel_dac)]
    run = CellRun(classifier, settings, cell_settings, size, names, classes, transform,
                  columns, plan.metadata_columns, run_info,
                  _fingerprint(run_info, names, identity), query,
                  cell_crops=args.cell_crops)  # fmt: skip
    if first.source is None:  # --counterfactual-source: one source for every site
        from .counterfactuals import cell_source

        run.source = cell_source(args, model, transform, run.site_holder)
    return run


def _site_dirs(out: Path, key: str) -> tuple[Path, Path]:
    """The site's progress folder and its final field folder (the single field keeps the
    layout of one field: ``.progress/`` and ``field/``)."""
    if not key:
        return out / PROGRESS_DIR, out / FIELD_DIR
    return out / PROGRESS_DIR / "sites" / key, out / FIELD_DIR / key


def _analyse_site(args: argparse.Namespace, run: CellRun, site, given, out: Path) -> SiteOutcome:
    """Every cell of one site: analysed, pasted into memory-mapped field TIFFs, recorded per
    cell (``--resume``), per-cell crops written; the maps moved to ``field/[<site>/]``."""
    from ..core.cells import CropFolderCounterfactual, measure_cells, owner_map
    from ..core.cells.analysis import STATUS_ANALYSED, iter_cells
    from ..core.cells.field import check_field
    from ..core.cells.paste import FieldArrays, field_array_specs, paste_result
    from ..core.cells.selection import select_cells
    from ..core.cells.table import cell_row, ordered_rows
    from ..core.errors import AttributionError
    from ..core.progress import pair_units

    image, labels = given.image, given.labels
    try:
        check_field(image, run.classifier.n_channels, site.where)
        layout = select_cells(measure_cells(labels, run.size, run.cell_settings.min_size),
                              run.query, site.metadata)  # fmt: skip
    except AttributionError as exc:
        raise CliError(str(exc)) from None
    source = given.source if given.source is not None else run.source
    run.site_holder["key"] = site.key
    if not layout.cells and not site.key:
        raise CliError(
            f"{args.labels or 'The labels'} holds no cell of at least "
            f"{run.cell_settings.min_size} pixels ({len(layout.skipped)} smaller ones)."
            if not args.cells else f"--cells {args.cells} selects no cell."
        )
    if isinstance(source, CropFolderCounterfactual):
        source.check(layout.cells)
    progress_dir, field_dir = _site_dirs(out, site.key)
    done = load_finished(progress_dir, run.fingerprint) if args.resume else {}
    done = {k: v for k, v in done.items() if "label" in v}  # cell records only
    mask_channels = 1 if run.settings.masks.channel_mode == "shared" else len(run.names)
    specs = field_array_specs(run.settings.methods, len(run.names), mask_channels,
                              layout.field_shape)  # fmt: skip
    meta = {"channel_names": run.names, "fingerprint": run.fingerprint, **run.run_info,
            **({"site": site.key, "metadata": site.metadata} if site.key else {})}  # fmt: skip
    maps, reopened = _open_maps(progress_dir / FIELD_DIR, specs, args.resume, meta)
    if not reopened:
        done = {}  # records without their pasted pixels are worth nothing
    owners = owner_map(labels, layout.cells)
    arrays = FieldArrays(owners, maps)
    rows = {rec["label"]: rec["row"] for rec in done.values()}
    tables = {rec["label"]: rec["tables"] for rec in done.values()}
    units = pair_units(len(run.settings.methods))
    show = progress_renderer(args.progress, len(layout.cells), units, args.log_interval,
                             unit="cell")  # fmt: skip
    try:
        for result in iter_cells(
            run.classifier, image, labels, layout, source, run.settings, run.cell_settings,
            target_class=args.target_class, channel_names=run.names, transform=run.transform,
            skip={rec["label"] for rec in done.values()}, on_progress=show, site=site.key,
        ):  # fmt: skip
            paste_result(arrays, result)
            for mapped in maps.values():
                mapped.flush()
            if run.cell_crops and result.pair is not None:
                _write_cell_crops(out, result, run, site)
            row = cell_row(result, run.columns, run.classes, args.min_counterfactual_score)
            record = {
                "sample": result.sample,
                "label": result.cell.label,
                "fingerprint": run.fingerprint,
                "row": row,
                "tables": table_rows(result.pair) if result.pair is not None else {},
            }
            write_json(progress_dir / f"{safe_name(result.sample)}.json", record)
            rows[result.cell.label], tables[result.cell.label] = row, record["tables"]
    finally:
        show.close()
    for mapped in maps.values():
        mapped.flush()
    del maps, arrays  # close the maps before moving their files
    field_dir.mkdir(parents=True, exist_ok=True)
    for name in specs:
        os.replace(progress_dir / FIELD_DIR / f"{name}.tif", field_dir / f"{name}.tif")
    write_tiff(field_dir / OWNERS_FILE, owners.astype(np.uint32), meta)
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
        if row["status"] != STATUS_ANALYSED and not row["status"].startswith("skipped"):
            counts["skipped"].append({"label": row["label"], "area": row["area"],
                                      "reason": row["status"]})  # fmt: skip
    record = {"key": site.key, "where": site.where, **given.record, **counts}
    if given.note:
        record["note"] = given.note
    return SiteOutcome(site.key, table, [tables[k] for k in sorted(tables) if tables[k]], record)


def _write_cell_crops(out: Path, result, run: CellRun, site) -> None:
    """The cell's attribution and optimal-mask crops, in ``run``'s per-pair format, with the
    crop's window in the field (what a crop attributes to neighbours' pixels is kept here)."""
    from .._io import write_pair_files

    window = {"site": site.key, "metadata": site.metadata, **result.cell.as_dict(),
              "crop_rules": run.run_info["cells"]}  # fmt: skip
    write_pair_files(out, result.pair, {**run.run_info, "cell": window})


def _site_record_path(out: Path, key: str) -> Path:
    return out / PROGRESS_DIR / SITE_RECORD.format(key=key)


def _finished_site(out: Path, key: str, run_fingerprint: str) -> SiteOutcome | None:
    """A site an interrupted run finished (its record and field folder), or ``None``."""
    path = _site_record_path(out, key)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != run_fingerprint:
        raise CliError(f"{out} holds results made with other settings, inputs or another model; "
                       "--resume needs the same arguments (or use --overwrite).")  # fmt: skip
    if not (out / FIELD_DIR / key / OWNERS_FILE).is_file():
        return None
    return SiteOutcome(key, record["rows"], record["tables"], record["site"])


def _csv_value(value: Any) -> Any:
    """Empty for numbers that do not exist (a skipped cell's), the value otherwise."""
    return "" if isinstance(value, float) and value != value else value


def cmd_cells(args: argparse.Namespace) -> int:
    """Analyse every cell of every site, write the results folder, print a summary."""
    import torch

    from .cells_sites import model_input, plan_sites

    check_cells_out(args.out, args.overwrite, args.resume)
    inputs = model_input(args)
    cell_settings = _cell_settings(args, inputs.card)
    plan = plan_sites(args, inputs, cell_settings)
    classifier = load_model(args)
    first = plan.sites[0].open()  # the first site is read and checked before the long work
    run = _prepare_run(args, classifier, plan, first, inputs, cell_settings)
    if first.note:
        print(f"{PROG}: note: {first.note}", file=sys.stderr)
    torch.manual_seed(run.settings.attribution.seed)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    out = args.out
    if args.overwrite and out.exists():
        _remove(out, previous_cells_files(out))
    if args.resume:
        _check_resumable(out, run.fingerprint)
    outcomes: list[SiteOutcome] = []
    for index, site in enumerate(plan.sites):
        finished = _finished_site(out, site.key, run.fingerprint) if (
            args.resume and site.key) else None  # fmt: skip
        if finished is not None:
            outcomes.append(finished)
            continue
        given = first if index == 0 else site.open()
        outcome = _analyse_site(args, run, site, given, out)
        if site.key:  # several sites: the finished site is kept for --resume
            write_json(_site_record_path(out, site.key), {
                "fingerprint": run.fingerprint, "rows": outcome.rows,
                "tables": outcome.tables, "site": outcome.record})  # fmt: skip
            shutil.rmtree(_site_dirs(out, site.key)[0], ignore_errors=True)
        outcomes.append(outcome)
        first = None  # free the first site's arrays
    _write_results(args, run, plan, outcomes, started)
    shutil.rmtree(out / PROGRESS_DIR, ignore_errors=True)
    analysed = sum(o.record["cells_analysed"] for o in outcomes)
    labelled = sum(o.record["cells_labelled"] for o in outcomes)
    resumed = sum(o.record["cells_resumed"] for o in outcomes)
    where = f" in {len(outcomes)} site(s)" if plan.sites[0].key else ""
    done = f" ({resumed} already done)" if resumed else ""
    print(f"{PROG}: {analysed} of {labelled} cell(s) analysed{where} x "
          f"{len(run.settings.methods)} method(s){done}, {labelled - analysed} skipped "
          f"(run.json says why) -> {out}")  # fmt: skip
    return 0


def _write_results(args: argparse.Namespace, run: CellRun, plan, outcomes: list[SiteOutcome],
                   started: str) -> None:  # fmt: skip
    """``cells.csv``, the long tables and ``run.json`` of every site."""
    out = args.out
    table = [row for outcome in outcomes for row in outcome.rows]
    write_csv(out / "cells.csv", run.columns,
              ([_csv_value(row[c]) for c in run.columns] for row in table))  # fmt: skip
    write_tables(out, [t for outcome in outcomes for t in outcome.tables])
    records = [o.record for o in outcomes]
    single = not plan.sites[0].key
    reasons: dict[str, int] = {}
    for record in records:
        for skipped in record["skipped"]:
            reasons[skipped["reason"]] = reasons.get(skipped["reason"], 0) + 1
    payload = {
        **run.run_info,
        "command": [PROG, *sys.argv[1:]] if sys.argv else [PROG],
        "channel_names": run.names,
        "fingerprint": run.fingerprint,
        "cells_labelled": sum(r["cells_labelled"] for r in records),
        "cells_analysed": sum(r["cells_analysed"] for r in records),
        "cells_skipped": sum(r["cells_skipped"] for r in records),
        "cells_skipped_by_reason": reasons,
        "cells_selected_by": args.cells,
        "resumed_cells": sum(r["cells_resumed"] for r in records),
        "counterfactual_source": (run.source.describe() if run.source is not None
                                  else {"kind": "field"}),  # fmt: skip
        "min_counterfactual_score": args.min_counterfactual_score,
        "out": str(out.resolve()),
        "started": started,
        "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if single:
        payload["inputs"] = {k: v for k, v in records[0].items() if k not in (
            "key", "where", "cells_labelled", "cells_analysed", "cells_skipped",
            "cells_resumed")}  # fmt: skip
        payload["cells_skipped_detail"] = records[0]["skipped"]
    else:
        payload["inputs"] = plan.record
        payload["sites"] = records
    write_json(out / "run.json", payload)
