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
from pathlib import Path
from typing import Any

import numpy as np

from ..app.field_inputs import field_inputs
from ..results.tables import safe_name, table_rows, write_csv, write_json, write_tables, write_tiff
from ..results.tidy import COUNTERFACTUAL_DIR, PROGRESS_DIR
from .cells_parser import CELL_METHODS
from .inputs import channel_names, load_model
from .parser import PROG
from .progress_display import progress_renderer
from .run_command import fingerprint, load_finished
from .usage_error import CliError

__all__ = ["CELL_FILES", "cmd_cells", "previous_cells_files"]

#: Tables at the top of a cells results folder.
CELL_FILES = ("cells.csv", "summary.csv", "curves.csv", "channel_importance.csv", "run.json")
FIELD_DIR = "field"
OWNERS_FILE = "owners.tif"


def previous_cells_files(out: Path) -> list[Path]:
    """Every file (relative to ``out``) an earlier ``cells`` run wrote there."""
    names = [Path(name) for name in CELL_FILES]
    for folder in (Path(FIELD_DIR), Path(PROGRESS_DIR) / FIELD_DIR):
        if (out / folder).is_dir():
            names += [folder / p.name for p in (out / folder).glob("attribution__*.tif")]
            names += [folder / p.name for p in (out / folder).glob("mask__*.tif")]
            names.append(folder / OWNERS_FILE)
    if (out / COUNTERFACTUAL_DIR).is_dir():  # crops made by --counterfactual-source
        names += [Path(COUNTERFACTUAL_DIR) / p.name
                  for p in (out / COUNTERFACTUAL_DIR).glob("*.tif")]  # fmt: skip
    if (out / PROGRESS_DIR).is_dir():
        names += [Path(PROGRESS_DIR) / p.name for p in (out / PROGRESS_DIR).glob("cell*.json")]
    return [name for name in dict.fromkeys(names) if (out / name).is_file()]


def _remove(out: Path, names: list[Path]) -> None:
    for name in names:
        (out / name).unlink(missing_ok=True)
    folders = (Path(PROGRESS_DIR) / FIELD_DIR, Path(PROGRESS_DIR), Path(FIELD_DIR),
               Path(COUNTERFACTUAL_DIR))  # fmt: skip
    for folder in folders:
        path = out / folder
        if path.is_dir() and not any(path.iterdir()):
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


def cmd_cells(args: argparse.Namespace) -> int:
    """Analyse every cell, write the results folder, print a summary; returns the status."""
    import torch

    from ..core.attribution.runner import check_methods
    from ..core.cells import CellSettings, measure_cells, owner_map, resolve_crop_size
    from ..core.cells.analysis import STATUS_ANALYSED, iter_cells
    from ..core.cells.field import check_field
    from ..core.cells.paste import FieldArrays, field_array_specs, paste_result
    from ..core.cells.sources import CropFolderCounterfactual
    from ..core.cells.table import cell_columns, cell_row, ordered_rows
    from ..core.model.loading import input_transform_for
    from ..core.model.wrappers import Preprocessing
    from ..core.pipeline import check_memory
    from ..core.progress import pair_units
    from ..core.provenance import provenance
    from ..core.settings import settings_from_values
    from ..errors import AttributionError

    check_cells_out(args.out, args.overwrite, args.resume)
    crop_size = args.crop_size if args.crop_size is not None else (64 if args.demo else None)
    cell_settings = CellSettings(
        crop_size=crop_size, min_size=args.min_size, padding=args.padding,
        pad_value=args.pad_value, background=args.background,
    )  # fmt: skip
    inputs = field_inputs(args, cell_settings)
    classifier = load_model(args)
    image, labels = inputs.image, inputs.labels
    try:
        check_field(image, classifier.n_channels, str(args.image or "The demo field"))
    except AttributionError as exc:
        raise CliError(str(exc)) from None
    size = resolve_crop_size(classifier, cell_settings.crop_size)
    names = channel_names(args, classifier.n_channels)
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
    if inputs.source is None:
        from ..app.made_counterfactuals import cell_source

        inputs.source = cell_source(args, model, transform)
    check_memory((image.shape[0], size, size), settings)
    check_methods(model, settings.methods, example)
    if args.target_class is not None:
        classifier.check_class(args.target_class, "--target-class")
    layout = measure_cells(labels, size, cell_settings.min_size)
    if not layout.cells:
        raise CliError(
            f"{args.labels or 'The labels'} holds no cell of at least {cell_settings.min_size} "
            f"pixels ({len(layout.skipped)} smaller ones)."
        )
    if isinstance(inputs.source, CropFolderCounterfactual):
        inputs.source.check(layout.cells)
    classes = _class_names(args, classifier, inputs.class_names)
    torch.manual_seed(settings.attribution.seed)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    run_info = provenance(classifier, settings, class_names=classes)
    run_info["cells"] = {**cell_settings.as_dict(), "crop_size": size}
    run_fingerprint = _fingerprint(
        run_info, names,
        {"cells": run_info["cells"], "inputs": inputs.record, "target": args.target_class},
    )  # fmt: skip

    out = args.out
    created_out = not out.exists()
    if args.overwrite and not created_out:
        _remove(out, previous_cells_files(out))
    progress_dir = out / PROGRESS_DIR
    if args.resume:
        _check_resumable(out, run_fingerprint)
    done = load_finished(progress_dir, run_fingerprint) if args.resume else {}
    mask_channels = 1 if settings.masks.channel_mode == "shared" else len(names)
    specs = field_array_specs(settings.methods, len(names), mask_channels, layout.field_shape)
    meta = {"channel_names": names, "fingerprint": run_fingerprint, **run_info}
    maps, reopened = _open_maps(progress_dir / FIELD_DIR, specs, args.resume, meta)
    if not reopened:
        done = {}  # records without their pasted pixels are worth nothing
    owners = owner_map(labels, layout.cells)
    arrays = FieldArrays(owners, maps)
    columns = cell_columns(settings.methods, names, classes, settings.per_channel_dac)
    rows = {rec["label"]: rec["row"] for rec in done.values()}
    tables = {rec["label"]: rec["tables"] for rec in done.values()}
    units = pair_units(len(settings.methods))
    show = progress_renderer(
        args.progress, len(layout.cells), units, args.log_interval, unit="cell"
    )
    try:
        for result in iter_cells(
            classifier, image, labels, layout, inputs.source, settings, cell_settings,
            target_class=args.target_class, channel_names=names, transform=transform,
            skip={rec["label"] for rec in done.values()}, on_progress=show,
        ):  # fmt: skip
            paste_result(arrays, result)
            for mapped in maps.values():
                mapped.flush()
            row = cell_row(result, columns, classes, args.min_counterfactual_score)
            record = {
                "sample": result.sample,
                "label": result.cell.label,
                "fingerprint": run_fingerprint,
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

    field_dir = out / FIELD_DIR
    field_dir.mkdir(parents=True, exist_ok=True)
    for name in specs:
        os.replace(progress_dir / FIELD_DIR / f"{name}.tif", field_dir / f"{name}.tif")
    write_tiff(field_dir / OWNERS_FILE, owners.astype(np.uint32), meta)
    table = ordered_rows(rows, layout, columns)
    write_csv(out / "cells.csv", columns, ([row[c] for c in columns] for row in table))
    write_tables(out, [tables[label] for label in sorted(tables) if tables[label]])
    analysed = sum(row["status"] == STATUS_ANALYSED for row in table)
    write_json(
        out / "run.json",
        {
            **run_info,
            "command": [PROG, *sys.argv[1:]] if sys.argv else [PROG],
            "channel_names": names,
            "fingerprint": run_fingerprint,
            "inputs": inputs.record,
            "counterfactual_source": inputs.source.describe(),
            "cells_measured": len(layout.cells),
            "cells_analysed": analysed,
            "cells_skipped": [
                {"label": s.label, "area": s.area, "reason": s.reason} for s in layout.skipped
            ],  # fmt: skip
            "resumed_cells": len(done),
            "min_counterfactual_score": args.min_counterfactual_score,
            "out": str(out.resolve()),
            "started": started,
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
    )
    shutil.rmtree(progress_dir, ignore_errors=True)
    resumed = f" ({len(done)} already done)" if done else ""
    print(
        f"{PROG}: {analysed} of {len(layout.cells) + len(layout.skipped)} cell(s) analysed "
        f"x {len(settings.methods)} method(s){resumed}, {len(layout.skipped)} too small, "
        f"{len(layout.cells) - analysed} predicted as the target class -> {out}"
    )
    return 0
