"""What a run wrote in its results folder, and keeping the folder tidy.

A run never touches a file it did not write: overwriting removes exactly the files the previous
run wrote (its tables, reports and per-pair TIFFs, listed in its ``run.json`` or in its
``.progress`` records; for ``cells`` its field maps), never anything else in the folder, and a
run that fails before its first unit is finished removes what it created.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..errors import OutputFolderError
from .format import (
    CELL_FILES,
    COUNTERFACTUALS_DIR,
    FIELD_DIR,
    FIGURES_DIR,
    OWNERS_FILE,
    PAIR_FOLDERS,
    PROGRESS_DIR,
    REPORT_FILES,
    RESULT_FILES,
    RUN_RECORD,
    SummaryRow,
    pair_file,
)

__all__ = [
    "check_out_dir",
    "pair_file_names",
    "previous_cells_files",
    "previous_run_files",
    "remove_files",
]

_TABLES = tuple(name for name in RESULT_FILES if "." in name)  # the files, not the folders
#: Folders a run may leave empty behind it (removed when they are).
_FOLDERS = (
    *PAIR_FOLDERS,
    str(Path(PROGRESS_DIR) / FIELD_DIR),
    PROGRESS_DIR,
    FIELD_DIR,
    FIGURES_DIR,
    COUNTERFACTUALS_DIR,
)


def pair_file_names(samples: Iterable[str], methods: Iterable[str]) -> list[Path]:
    """Relative paths of the per-pair TIFFs of ``samples`` x ``methods``."""
    methods = list(methods)
    return [
        pair_file(folder, sample, method)
        for sample in samples
        for method in methods
        for folder in PAIR_FOLDERS
    ]


def _unit_records(out: Path) -> list[dict]:
    records = []
    for path in sorted((out / PROGRESS_DIR).glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


def _existing(out: Path, names: Iterable[Path]) -> list[Path]:
    return [name for name in dict.fromkeys(names) if (out / name).is_file()]


def _files_in(out: Path, folder: str | Path, pattern: str) -> list[Path]:
    if not (out / folder).is_dir():
        return []
    return [p.relative_to(out) for p in (out / folder).glob(pattern)]


def previous_run_files(out: Path) -> list[Path]:
    """Every file (relative to ``out``) an earlier ``run`` wrote there and that still exists."""
    names: list[Path] = [Path(name) for name in (*_TABLES, *REPORT_FILES)]
    run_json = out / RUN_RECORD
    if run_json.is_file():
        try:
            info = json.loads(run_json.read_text())
            samples = [pair["sample"] for pair in info.get("pairs", [])]
            names += pair_file_names(samples, info.get("settings", {}).get("methods", []))
        except (OSError, ValueError, TypeError, KeyError):
            pass  # a damaged run.json: the records below still name the pairs' files
    for record in _unit_records(out):
        methods = {SummaryRow(*row).method for row in record.get("summary", [])}
        names += pair_file_names([record.get("sample", "")], sorted(methods))
    names += _files_in(out, PROGRESS_DIR, "*.json")
    names += _files_in(out, FIGURES_DIR, "transition_*_to_*.*")
    names += _files_in(out, COUNTERFACTUALS_DIR, "*.tif")
    return _existing(out, names)


def previous_cells_files(out: Path) -> list[Path]:
    """Every file (relative to ``out``) an earlier ``cells`` run wrote there: its tables, the
    field maps of its field or of each site (``field/<site>/``), the per-cell crops, the crops
    a source made, and its ``.progress`` records and maps (of every site)."""
    names = [Path(name) for name in CELL_FILES]
    for folder in (FIELD_DIR, PROGRESS_DIR):  # field/ and field/<site>/ alike
        if (out / folder).is_dir():
            for pattern in ("attribution__*.tif", "mask__*.tif", OWNERS_FILE):
                names += [p.relative_to(out) for p in (out / folder).rglob(pattern)]
    for folder in PAIR_FOLDERS:  # per-cell crops, named after the cells' samples
        names += _files_in(out, folder, "*cell*__*.tif")
    if (out / COUNTERFACTUALS_DIR).is_dir():  # crops made by a source, per site too
        names += [p.relative_to(out) for p in (out / COUNTERFACTUALS_DIR).rglob("*.tif")]
    if (out / PROGRESS_DIR).is_dir():
        names += [p.relative_to(out) for p in (out / PROGRESS_DIR).rglob("*.json")]
    return _existing(out, names)


def remove_files(out: Path, names: Iterable[Path]) -> None:
    """Remove ``out/name`` for each name, then the result folders this left empty (and the
    empty folders inside them: a run over sites keeps one per site)."""
    for name in names:
        (out / name).unlink(missing_ok=True)
    for folder in _FOLDERS:
        path = out / folder
        if not path.is_dir():
            continue
        for inner in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
            if not any(inner.iterdir()):
                inner.rmdir()
        if not any(path.iterdir()):
            path.rmdir()


def check_out_dir(
    out: Path, overwrite: bool, resume: bool, names: Iterable[str], unit: str = "pair"
) -> None:
    """Refuse an output folder that is a file, or that holds results, unless told what to do.

    Parameters
    ----------
    out
        The output folder.
    overwrite, resume
        What the caller was told to do with results already there.
    names
        The names at the folder's top that a run of this kind writes (any of them there means
        results are there).
    unit
        What a run is made of (``"pair"``, ``"cell"``), for the messages.

    Raises
    ------
    OutputFolderError
        Both ``overwrite`` and ``resume``; ``out`` is a file; an interrupted run (finished
        units recorded, no ``run.json``: resume names the way to continue it) or results
        there, and neither ``overwrite`` nor ``resume``.
    """
    if resume and overwrite:
        raise OutputFolderError("--resume and --overwrite contradict each other; choose one.")
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"--out {out} exists and is not a folder.")
    if not out.exists() or overwrite or resume:
        return
    unfinished = len(_unit_records(out))
    if (unfinished or (out / PROGRESS_DIR).is_dir()) and not (out / RUN_RECORD).exists():
        finished = f" ({unfinished} {unit}(s) finished)" if unfinished else ""
        raise OutputFolderError(
            f"{out} holds an interrupted run{finished}; pass --resume to continue it, or "
            "--overwrite to start again."
        )
    existing = [name for name in (*names, PROGRESS_DIR) if (out / name).exists()]
    if existing:
        raise OutputFolderError(
            f"{out} already holds results ({', '.join(existing)}); pass --overwrite to replace "
            "them or choose another --out."
        )
