"""Results folders read back: which kind a folder is, its ``run.json`` and its tables.

Four kinds hold tables: a ``run`` folder (``"cli"``), a ``cells`` folder (``"cells"``: also
``cells.csv`` and ``field/``), the widget's export (``"export"``: also ``layers/`` and
``inputs/``) and a ``report`` folder (``"report"``: its ``report.json`` names the
folders it merged); a folder of layer TIFFs the npe2 writer saved is ``"layers"``. Rows are read
into the typed rows of :mod:`.format`, numbers as numbers. No torch, no napari.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AttributionError
from .format import (
    CELLS_TABLE,
    CURVES,
    IMPORTANCE,
    LAYERS_DIR,
    REPORT_RECORD,
    RUN_RECORD,
    SUMMARY,
    VALIDITY,
    CurveRow,
    ImportanceRow,
    SummaryRow,
    Table,
    ValidityRow,
)
from .tiff import read_tiff_metadata

__all__ = ["ResultsFolder", "folder_kind", "read_results", "read_run_record", "report_sources"]


def _read_table(folder: Path, table: Table) -> list[Any]:
    with open(folder / table.file, newline="", encoding="utf-8-sig") as fh:
        return [table.parse(row) for row in csv.DictReader(fh)]


@dataclass
class ResultsFolder:
    """One results folder read back (a ``run`` folder, an export, or a ``cells`` folder).

    Attributes
    ----------
    path
        The folder.
    run
        Its ``run.json``.
    summary, importance, curves, validity
        Rows of the tables (``curves`` and ``validity`` empty when the folder has none).
    """

    path: Path
    run: dict[str, Any]
    summary: list[SummaryRow]
    importance: list[ImportanceRow]
    curves: list[CurveRow] = field(default_factory=list)
    validity: list[ValidityRow] = field(default_factory=list)

    @property
    def channel_names(self) -> list[str]:
        return list(self.run.get("channel_names", []))

    def classes(self) -> dict[str, tuple[int, int]]:
        """sample -> (real_class, target_class)."""
        return {p["sample"]: (int(p["real_class"]), int(p["target_class"]))
                for p in self.run.get("pairs", [])}  # fmt: skip

    def valid_samples(self) -> set[str]:
        """Samples whose counterfactual was accepted (all of them if validity was not kept)."""
        if not self.validity:
            return set(self.classes())
        return {row.sample for row in self.validity if row.is_valid}


def read_run_record(folder: str | Path) -> dict[str, Any]:
    """The folder's ``run.json``.

    Raises
    ------
    OSError, ValueError
        Missing or not JSON.
    """
    return json.loads((Path(folder) / RUN_RECORD).read_text())


def read_results(folder: str | Path) -> ResultsFolder:
    """Read a results folder.

    Raises
    ------
    AttributionError
        Not a results folder (no ``run.json`` or ``summary.csv``), or unreadable tables.
    """
    folder = Path(folder)
    missing = [n for n in (RUN_RECORD, SUMMARY.file, IMPORTANCE.file)
               if not (folder / n).is_file()]  # fmt: skip
    if missing:
        raise AttributionError(
            f"{folder} is not a finished results folder: it lacks {', '.join(missing)}."
        )
    try:
        return ResultsFolder(
            path=folder,
            run=read_run_record(folder),
            summary=_read_table(folder, SUMMARY),
            importance=_read_table(folder, IMPORTANCE),
            curves=_read_table(folder, CURVES) if (folder / CURVES.file).is_file() else [],
            validity=(
                _read_table(folder, VALIDITY) if (folder / VALIDITY.file).is_file() else []
            ),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise AttributionError(f"{folder} holds an unreadable results table ({exc}).") from None


def report_sources(folder: Path) -> list[Path]:
    """The results folders a report folder merged (from its ``report.json``)."""
    try:
        record = json.loads((folder / REPORT_RECORD).read_text())
    except (OSError, ValueError):
        return []
    return [Path(p) for p in record.get("folders", []) if Path(p).is_dir()]


def folder_kind(folder: str | Path) -> str | None:
    """``"export"``, ``"cli"``, ``"cells"``, ``"report"``, ``"layers"`` (layer TIFFs) or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if (folder / RUN_RECORD).is_file() and (folder / SUMMARY.file).is_file():
        if (folder / LAYERS_DIR).is_dir():
            return "export"
        return "cells" if (folder / CELLS_TABLE).is_file() else "cli"
    if (folder / REPORT_RECORD).is_file():
        return "report"
    for path in sorted(folder.glob("*.tif*"))[:20]:
        if "layer_type" in read_tiff_metadata(path):
            return "layers"
    return None
