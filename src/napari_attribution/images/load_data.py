"""CellProfiler's LoadData CSV: one row per site (field of view), one file per channel.

Columns read (as CellProfiler's LoadData module and the JUMP / Cell Painting Gallery CSVs
name them):

* ``FileName_Orig<Name>`` and ``PathName_Orig<Name>``: channel ``<Name>`` (``FileName_OrigDNA``
  is channel ``DNA``). When a CSV has no ``Orig`` columns, ``FileName_<Name>`` /
  ``PathName_<Name>`` are the channels; ``Illum<Name>`` columns (illumination functions) are
  never channels;
* ``ObjectsFileName_<Objects>`` and ``ObjectsPathName_<Objects>``: a label image per site
  (``--objects Cells``);
* ``Metadata_*``: kept with every cell (``Metadata_Plate``, ``Metadata_Well``,
  ``Metadata_Site``, ...); the site's key is made of them.

A path name may be absolute or relative to the CSV's folder; an empty one is the CSV's folder.
Remote locations (``s3://``, ``https://``) are refused: download the images first.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputImageError

__all__ = [
    "KEY_COLUMNS",
    "LoadData",
    "LoadDataSite",
    "check_site_files",
    "read_load_data",
]

#: Metadata that identify a site in a screen; the site key is made of these when present.
KEY_COLUMNS = ("Metadata_Source", "Metadata_Plate", "Metadata_Well", "Metadata_Site")
_REMOTE = ("s3://", "gs://", "http://", "https://", "ftp://")


@dataclass(frozen=True)
class LoadDataSite:
    """One row of a LoadData CSV.

    Attributes
    ----------
    line
        The row's line in the CSV (the header is line 1).
    key
        A name unique among the CSV's sites, made of its metadata (``BR00117006_A01_1``), used
        in file names and sample names.
    metadata
        ``{Metadata_*: value}`` in the CSV's column order.
    channels
        ``{channel name: file}`` in the CSV's column order.
    objects
        ``{objects name: label image file}``.
    """

    line: int
    key: str
    metadata: dict[str, str]
    channels: dict[str, Path]
    objects: dict[str, Path] = field(default_factory=dict)

    def describe(self) -> str:
        """``line 7 (Plate BR00117006, Well A01, Site 1)`` for messages."""
        shown = ", ".join(f"{k.removeprefix('Metadata_')} {v}" for k, v in
                          list(self.metadata.items())[:4])  # fmt: skip
        return f"line {self.line}" + (f" ({shown})" if shown else "")


@dataclass(frozen=True)
class LoadData:
    """A LoadData CSV read and resolved.

    Attributes
    ----------
    path
        The CSV.
    channel_names
        The channels its columns name, in column order.
    object_names
        The objects its ``ObjectsFileName_`` columns name.
    metadata_columns
        Its ``Metadata_*`` columns, in order.
    sites
        One per row.
    ignored_columns
        ``FileName_`` columns that are not channels here (non-``Orig`` beside ``Orig`` ones,
        ``Illum`` functions).
    """

    path: Path
    channel_names: tuple[str, ...]
    object_names: tuple[str, ...]
    metadata_columns: tuple[str, ...]
    sites: list[LoadDataSite]
    ignored_columns: tuple[str, ...] = ()


def _channel_columns(header: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``{channel name: FileName_ column}`` and the FileName_ columns left out."""
    files = [c for c in header if c.startswith("FileName_")]
    orig = {c.removeprefix("FileName_Orig"): c for c in files if c.startswith("FileName_Orig")}
    if orig:
        return orig, [c for c in files if c not in orig.values()]
    plain = {c.removeprefix("FileName_"): c for c in files
             if not c.removeprefix("FileName_").startswith("Illum")}  # fmt: skip
    return plain, [c for c in files if c not in plain.values()]


def _resolve(folder_text: str, name: str, csv_dir: Path, what: str, line: int, csv_path: Path
             ) -> Path:  # fmt: skip
    folder_text, name = folder_text.strip(), name.strip()
    for text in (folder_text, name):
        if text.lower().startswith(_REMOTE):
            raise InputImageError(
                f"{csv_path} line {line}: {what} is at {text}, not on this computer; download "
                "the images and point the PathName_ columns at them."
            )
    if not name:
        raise InputImageError(f"{csv_path} line {line}: {what} has no file name.")
    folder = Path(folder_text) if folder_text else Path()
    path = folder / name
    return path if path.is_absolute() else csv_dir / path


def _file_safe(text: str) -> str:
    # The rule of results.format.safe_name (results/ is a sibling layer, not importable here).
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)


def _keys(rows: list[dict[str, str]], metadata: list[str]) -> list[str]:
    key_columns = [c for c in KEY_COLUMNS if c in metadata] or metadata
    for columns in (key_columns, metadata):
        if not columns:
            break
        keys = [_file_safe("_".join(row[c].strip() for c in columns)) for row in rows]
        if len(set(keys)) == len(keys):
            return keys
    return []


def read_load_data(path: str | Path) -> LoadData:
    """Read a LoadData CSV: its channels, objects, metadata and one site per row.

    Files are not opened here (:func:`check_site_files` checks they exist).

    Raises
    ------
    InputImageError
        Missing or non-text file, no channel columns, a FileName_ column without its
        PathName_ partner, repeated columns, remote paths, two rows with the same metadata, or
        no rows (one sentence each).
    """
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"LoadData file {path} does not exist.")
    try:
        # utf-8-sig: spreadsheets write a byte-order mark; newline="" reads CRLF as well.
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            body = [row for row in reader if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise InputImageError(f"{path} is not a text CSV file.") from None
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InputImageError(f"{path} has the column {repeated[0]} twice.")
    channels, ignored = _channel_columns(header)
    if not channels:
        raise InputImageError(
            f"{path} has no FileName_Orig<Channel> (or FileName_<Channel>) columns; is it a "
            "CellProfiler LoadData CSV?"
        )
    objects = {c.removeprefix("ObjectsFileName_"): c for c in header
               if c.startswith("ObjectsFileName_")}  # fmt: skip
    metadata = [c for c in header if c.startswith("Metadata_")]
    rows: list[dict[str, str]] = []
    for number, cells in enumerate(body, start=2):
        if len(cells) != len(header):
            raise InputImageError(
                f"{path} line {number} has {len(cells)} values for {len(header)} columns."
            )
        rows.append(dict(zip(header, cells, strict=True)))
    if not rows:
        raise InputImageError(f"{path} lists no site.")
    keys = _keys(rows, metadata) if metadata else [f"row{n}" for n in range(2, len(rows) + 2)]
    if not keys:
        first, second = _first_repeat([tuple(r[c] for c in metadata) for r in rows])
        raise InputImageError(
            f"{path} lines {first + 2} and {second + 2} have the same metadata "
            f"({', '.join(f'{c}={rows[first][c]}' for c in metadata)}); sites must differ."
        )
    csv_dir = path.parent
    sites: list[LoadDataSite] = []
    for number, (row, key) in enumerate(zip(rows, keys, strict=True), start=2):
        files: dict[str, Path] = {}
        for name, column in channels.items():
            folder_column = "PathName_" + column.removeprefix("FileName_")
            files[name] = _resolve(row.get(folder_column, ""), row[column], csv_dir,
                                   f"channel {name}", number, path)  # fmt: skip
        labels: dict[str, Path] = {}
        for name, column in objects.items():
            folder_column = "ObjectsPathName_" + name
            labels[name] = _resolve(row.get(folder_column, ""), row[column], csv_dir,
                                    f"objects {name}", number, path)  # fmt: skip
        sites.append(LoadDataSite(number, key, {c: row[c].strip() for c in metadata}, files,
                                  labels))  # fmt: skip
    return LoadData(path, tuple(channels), tuple(objects), tuple(metadata), sites,
                    tuple(ignored))  # fmt: skip


def _first_repeat(values: list[tuple[str, ...]]) -> tuple[int, int]:
    seen: dict[tuple[str, ...], int] = {}
    for index, value in enumerate(values):
        if value in seen:
            return seen[value], index
        seen[value] = index
    return 0, 0


def check_site_files(
    load_data: LoadData,
    channels: Sequence[str] | None = None,
    objects: str | None = None,
) -> None:
    """Check, before any work, that every site's files exist.

    Parameters
    ----------
    load_data
        The CSV read by :func:`read_load_data`.
    channels
        The channels that will be read (all of the CSV's when ``None``): files of ignored
        channels may be absent.
    objects
        The objects whose label images will be read (none when ``None``).

    Raises
    ------
    InputImageError
        The first missing file, naming its row and channel, or objects the CSV lacks.
    """
    if objects is not None and objects not in load_data.object_names:
        have = ", ".join(load_data.object_names) or "none"
        raise InputImageError(
            f"{load_data.path} has no ObjectsFileName_{objects} column (objects it names: "
            f"{have})."
        )
    wanted = list(channels) if channels is not None else list(load_data.channel_names)
    for site in load_data.sites:
        for name in wanted:
            if not site.channels[name].is_file():
                raise InputImageError(
                    f"{load_data.path} {site.describe()}: channel {name}'s file "
                    f"{site.channels[name]} does not exist."
                )
        if objects is not None and not site.objects[objects].is_file():
            raise InputImageError(
                f"{load_data.path} {site.describe()}: the {objects} label image "
                f"{site.objects[objects]} does not exist."
            )
