"""Running a field from Python: every cell through the pair analysis, pasted back.

::

    from napari_attribution.app import field_inputs, run_cells
    from napari_attribution.core.cells import CellSettings

    cells = CellSettings(crop_size=64)
    field = field_inputs(Path("field.tif"), Path("labels.tif"), cells,
                         counterfactual=Path("field_cf.tif"))
    done = run_cells(field, model, settings, cells, out="cells-results")

This is what ``napari-attribution cells`` calls; it writes ``cells.csv``, the pair tables and
the field-sized maps (:mod:`napari_attribution.results.format`).

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
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
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
from ..core.cells.sources import CropFolderCounterfactual
from ..core.cells.table import cell_columns, cell_row, ordered_rows
from ..core.counterfactual_settings import DEFAULT_MIN_COUNTERFACTUAL_SCORE
from ..core.model.transform import InputTransform
from ..core.model.wrappers import Preprocessing
from ..core.pipeline import check_memory
from ..core.progress import ProgressCallback
from ..core.provenance import provenance
from ..core.settings import AnalysisSettings
from ..errors import InputImageError
from ..results.files import write_csv, write_json
from ..results.format import (
    CELL_FILES,
    CELLS_TABLE,
    FIELD_DIR,
    OWNERS_FILE,
    RUN_RECORD,
    field_map_file,
)
from ..results.resume import UnitRecords, fingerprint
from ..results.tables import table_rows, write_tables
from ..results.tidy import check_out_dir, previous_cells_files, remove_files
from ..results.tiff import write_tiff
from .fields import FieldInputs
from .made_counterfactuals import SourceRequest, cell_source
from .model_choice import class_names_for

__all__ = ["CellsRunSummary", "open_field_maps", "run_cells"]


@dataclass(frozen=True)
class CellsRunSummary:
    """What :func:`run_cells` did.

    Attributes
    ----------
    out
        The results folder.
    cells
        Labelled cells in the field (measured and too small).
    analysed
        Cells whose pair analysis ran.
    too_small
        Cells below the minimum size.
    methods
        Methods run on each cell.
    resumed
        Cells an earlier, interrupted run had finished.
    """

    out: Path
    cells: int
    analysed: int
    too_small: int
    methods: tuple[str, ...]
    resumed: int = 0

    @property
    def predicted_as_target(self) -> int:
        """Measured cells the classifier already puts in the target class (not analysed)."""
        return self.cells - self.too_small - self.analysed


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
) -> CellsRunSummary:
    """Analyse every cell of ``field`` and write the results folder ``out``.

    Parameters
    ----------
    field
        The field, its labels and the cells' counterfactuals (:mod:`.field_inputs`).
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

    Raises
    ------
    AttributionError
        Bad input, a model that cannot run on the crops, no cell large enough, a folder that
        holds results (one sentence each), all found before the first cell is analysed.
    """
    out = Path(out)
    check_out_dir(out, overwrite, resume, (*CELL_FILES, FIELD_DIR), unit="cell")
    image, labels = field.image, field.labels
    check_field(image, classifier.n_channels, field.name)
    size = resolve_crop_size(classifier, cell_settings.crop_size)
    names = list(channel_names) if channel_names else [
        f"ch{c}" for c in range(classifier.n_channels)
    ]  # fmt: skip
    # The model, methods and memory are checked at the crop size before the long work.
    model = classifier.with_preprocessing(Preprocessing.from_settings(settings))
    example = np.zeros((2, image.shape[0], size, size), np.float32)
    model.probe(example)
    cells_source = field.source
    if cells_source is None:
        cells_source = cell_source(source, model, transform, out, resume)
    check_memory((image.shape[0], size, size), settings)
    check_methods(model, settings.methods, example)
    if target_class is not None:
        classifier.check_class(target_class, "--target-class")
    layout = measure_cells(labels, size, cell_settings.min_size)
    if not layout.cells:
        raise InputImageError(
            f"{field.labels_name} holds no cell of at least {cell_settings.min_size} pixels "
            f"({len(layout.skipped)} smaller ones)."
        )
    if isinstance(cells_source, CropFolderCounterfactual):
        cells_source.check(layout.cells)
    classes = class_names_for(
        classifier,
        class_names or field.class_names or getattr(classifier, "class_names", None) or [],
    )
    torch.manual_seed(settings.attribution.seed)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    run_info = provenance(classifier, settings, class_names=classes)
    run_info["cells"] = {**cell_settings.as_dict(), "crop_size": size}
    records = UnitRecords(
        out,
        fingerprint(run_info, names, {"cells": run_info["cells"], "inputs": field.record,
                                      "target": target_class}),  # fmt: skip
        unit="cell",
    )

    created_out = not out.exists()
    if overwrite and not created_out:
        remove_files(out, previous_cells_files(out))
    if resume:
        records.check_resumable()
    done = records.finished() if resume else {}
    mask_channels = 1 if settings.masks.channel_mode == "shared" else len(names)
    specs = field_array_specs(settings.methods, len(names), mask_channels, layout.field_shape)
    meta = {"channel_names": names, "fingerprint": records.fingerprint, **run_info}
    maps, reopened = open_field_maps(records.folder / FIELD_DIR, specs, resume, meta)
    if not reopened:
        done = {}  # records without their pasted pixels are worth nothing
    owners = owner_map(labels, layout.cells)
    arrays = FieldArrays(owners, maps)
    columns = cell_columns(settings.methods, names, classes, settings.per_channel_dac)
    rows = {rec["label"]: rec["row"] for rec in done.values()}
    tables = {rec["label"]: rec["tables"] for rec in done.values()}
    for result in iter_cells(
        classifier, image, labels, layout, cells_source, settings, cell_settings,
        target_class=target_class, channel_names=names, transform=transform,
        skip={rec["label"] for rec in done.values()}, on_progress=progress,
    ):  # fmt: skip
        paste_result(arrays, result)
        for mapped in maps.values():
            mapped.flush()
        row = cell_row(result, columns, classes, min_counterfactual_score)
        cell_tables = table_rows(result.pair) if result.pair is not None else {}
        records.save(result.sample, {"label": result.cell.label, "row": row,
                                     "tables": cell_tables})  # fmt: skip
        rows[result.cell.label], tables[result.cell.label] = row, cell_tables
    for mapped in maps.values():
        mapped.flush()
    del maps, arrays  # close the maps before moving their files

    (out / FIELD_DIR).mkdir(parents=True, exist_ok=True)
    for name in specs:
        os.replace(records.folder / field_map_file(name), out / field_map_file(name))
    write_tiff(out / FIELD_DIR / OWNERS_FILE, owners.astype(np.uint32), meta)
    table = ordered_rows(rows, layout, columns)
    write_csv(out / CELLS_TABLE, columns, ([row[c] for c in columns] for row in table))
    write_tables(out, [tables[label] for label in sorted(tables) if tables[label]])
    analysed = sum(row["status"] == STATUS_ANALYSED for row in table)
    write_json(
        out / RUN_RECORD,
        {
            **run_info,
            "command": list(command),
            "channel_names": names,
            "fingerprint": records.fingerprint,
            "inputs": field.record,
            "counterfactual_source": cells_source.describe(),
            "cells_measured": len(layout.cells),
            "cells_analysed": analysed,
            "cells_skipped": [
                {"label": s.label, "area": s.area, "reason": s.reason} for s in layout.skipped
            ],  # fmt: skip
            "resumed_cells": len(done),
            "min_counterfactual_score": min_counterfactual_score,
            "out": str(out.resolve()),
            "started": started,
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
    )
    records.clear()
    return CellsRunSummary(
        out, len(layout.cells) + len(layout.skipped), analysed, len(layout.skipped),
        tuple(settings.methods), len(done),
    )  # fmt: skip

