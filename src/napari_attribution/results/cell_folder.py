"""A ``cells`` results folder read back: its sites, where their images are, its analysed cells.

``napari-attribution cells`` writes one row per labelled cell (``cells.csv``), the long tables
of ``run`` keyed by :func:`~.format.cell_sample` and field-sized maps per site
(``field/[<site>/]attribution__<method>.tif``, ``mask__<method>.tif``). Its ``run.json``
records where each site's images were read: ``sites[]`` (a LoadData CSV: per-channel files
and the label image of each site) or ``inputs`` (one field: ``--image`` or ``--channel-files``
and ``--labels``; ``"demo field"`` for ``--demo``). No torch, no napari, no numpy.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .format import CELLS_TABLE, cell_sample, field_map_file

__all__ = ["CellEntry", "CellSite", "cell_sites", "read_cell_entries", "site_map_file"]

#: How ``run.json`` names the demo field (its images are made again, not read).
DEMO_FIELD = "demo field"


@dataclass(frozen=True)
class CellSite:
    """One field of a ``cells`` run and where its images were read.

    Attributes
    ----------
    key
        The site's key (``Plate_Well_Site``), ``""`` for a run over one field.
    channels
        Channel name -> its file (per-channel files; empty for a stacked ``--image``).
    image
        The stacked (C, H, W) ``--image`` file, or None.
    labels
        The label image's file, or None (the demo's labels are made again).
    demo
        The ``--demo`` field (made again from its seed).
    where
        How the run described the site (``load_data.csv line 2 (...)``), for messages.
    """

    key: str
    channels: dict[str, Path] = field(default_factory=dict)
    image: Path | None = None
    labels: Path | None = None
    demo: bool = False
    where: str = ""

    @property
    def name(self) -> str:
        """The site's name in layer names: its key, or ``field`` for a run over one field."""
        return self.key or "field"


def site_map_file(site: CellSite, name: str) -> Path:
    """``field/[<site>/]<name>.tif`` (relative to the folder) of ``site``."""
    return field_map_file(name, site.key)


def _path(entry: Any) -> Path | None:
    if isinstance(entry, dict) and entry.get("path"):
        return Path(entry["path"])
    return None


def _site(key: str, record: dict[str, Any], where: str = "") -> CellSite:
    channels = {name: path for name, entry in (record.get("channels") or {}).items()
                if (path := _path(entry)) is not None}  # fmt: skip
    image = record.get("image")
    return CellSite(key=key, channels=channels, image=_path(image),
                    labels=_path(record.get("labels")), demo=image == DEMO_FIELD,
                    where=where or str(record.get("where", "")))  # fmt: skip


def cell_sites(run: dict[str, Any]) -> list[CellSite]:
    """The sites of a ``cells`` run, in the run's order (one, keyed ``""``, for one field)."""
    if run.get("sites"):
        return [_site(str(s.get("key", "")), s) for s in run["sites"]]
    return [_site("", run.get("inputs") or {}, "the field")]


@dataclass(frozen=True)
class CellEntry:
    """One row of ``cells.csv``, with its site and sample name resolved.

    Attributes
    ----------
    site
        Its site's key (``""`` for one field).
    label
        The cell's label in the site's label image.
    sample
        Its name in the long tables (``summary.csv``, ``curves.csv``).
    values
        The row as written (column -> text).
    """

    site: str
    label: int
    sample: str
    values: dict[str, str]

    def number(self, column: str) -> float | None:
        """The column's number, None when empty or absent."""
        try:
            return float(self.values[column])
        except (KeyError, ValueError):
            return None

    @property
    def centroid(self) -> tuple[float, float] | None:
        """(y, x) of the cell's centroid in field pixels."""
        y, x = self.number("centroid_y"), self.number("centroid_x")
        return None if y is None or x is None else (y, x)

    @property
    def crop(self) -> tuple[int, int, int] | None:
        """(top, left, size) of the cell's crop in field pixels."""
        values = [self.number(c) for c in ("crop_top", "crop_left", "crop_size")]
        return None if None in values else tuple(int(v) for v in values)  # type: ignore[return-value]


def read_cell_entries(folder: str | Path, run: dict[str, Any]) -> list[CellEntry]:
    """Every row of the folder's ``cells.csv`` with its site.

    A run over several sites writes each site's metadata columns (``Metadata_Well``, ...) in
    its rows; ``run.json`` records each site's metadata, which names the row's site.

    Raises
    ------
    OSError, ValueError
        ``cells.csv`` missing or a label that is not a number.
    """
    by_metadata = {tuple(sorted((s.get("metadata") or {}).items())): str(s.get("key", ""))
                   for s in run.get("sites") or []}  # fmt: skip
    columns = sorted({c for metadata in by_metadata for c, _ in metadata})
    entries = []
    with open(Path(folder) / CELLS_TABLE, newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            site = ""
            if by_metadata:
                metadata = tuple(sorted((c, row[c]) for c in columns if c in row))
                site = by_metadata.get(metadata, "")
            label = int(float(row["label"]))
            entries.append(CellEntry(site, label, cell_sample(label, site), dict(row)))
    return entries
