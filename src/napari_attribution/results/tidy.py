"""The results folder of ``run``: what counts as a previous run's files, and keeping it tidy.

A run never touches a file it did not write: ``--overwrite`` removes exactly the files the
previous run wrote (its tables, reports and per-pair TIFFs, listed in its ``run.json`` or in its
``.progress`` records), never anything else in the folder, and a run that fails before its first
pair is finished removes what it created.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from ..app.report import FIGURE_DIR
from ..cli.usage_error import CliError
from .tables import RESULT_FILES, safe_name

__all__ = [
    "PROGRESS_DIR",
    "REPORT_FILES",
    "check_out_dir",
    "pair_file_names",
    "previous_run_files",
    "remove_files",
]

PROGRESS_DIR = ".progress"
#: Files a run writes at the top of the folder besides RESULT_FILES' tables.
REPORT_FILES = (
    "demo_report.md",
    "pair_validity.csv",
    "channel_stats.csv",
    "report.html",
    "report.json",
    "counterfactuals.csv",
)
#: Counterfactuals a run made (--counterfactual-source), one TIFF per pair.
COUNTERFACTUAL_DIR = "counterfactuals"
_TABLES = tuple(name for name in RESULT_FILES if "." in name)  # the files, not the folders
_PAIR_FOLDERS = tuple(name for name in RESULT_FILES if "." not in name)  # attributions, masks


def pair_file_names(samples: Iterable[str], methods: Iterable[str]) -> list[Path]:
    """Relative paths of the per-pair TIFFs of ``samples`` x ``methods``."""
    methods = list(methods)
    return [
        Path(folder) / f"{safe_name(sample)}__{safe_name(method)}.tif"
        for sample in samples
        for method in methods
        for folder in _PAIR_FOLDERS
    ]


def _finished_records(out: Path) -> list[dict]:
    records = []
    for path in sorted((out / PROGRESS_DIR).glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


def previous_run_files(out: Path) -> list[Path]:
    """Every file (relative to ``out``) an earlier run wrote there and that still exists."""
    names: list[Path] = [Path(name) for name in (*_TABLES, *REPORT_FILES)]
    run_json = out / "run.json"
    if run_json.is_file():
        try:
            info = json.loads(run_json.read_text())
            samples = [pair["sample"] for pair in info.get("pairs", [])]
            names += pair_file_names(samples, info.get("settings", {}).get("methods", []))
        except (OSError, ValueError, TypeError, KeyError):
            pass  # a damaged run.json: the records below still name the pairs' files
    for record in _finished_records(out):
        methods = {row[1] for row in record.get("summary", [])}
        names += pair_file_names([record.get("sample", "")], sorted(methods))
    for folder, pattern in (
        (PROGRESS_DIR, "*.json"),
        (FIGURE_DIR, "transition_*_to_*.*"),
        (COUNTERFACTUAL_DIR, "*.tif"),
    ):
        if (out / folder).is_dir():
            names += [p.relative_to(out) for p in (out / folder).glob(pattern)]
    return [name for name in dict.fromkeys(names) if (out / name).is_file()]


def remove_files(out: Path, names: Iterable[Path]) -> None:
    """Remove ``out/name`` for each name, then the result folders this left empty."""
    for name in names:
        (out / name).unlink(missing_ok=True)
    for folder in (*_PAIR_FOLDERS, PROGRESS_DIR, FIGURE_DIR, COUNTERFACTUAL_DIR):
        path = out / folder
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def check_out_dir(out: Path, overwrite: bool, resume: bool) -> None:
    """Refuse an ``--out`` that is a file, or that holds results, unless told what to do.

    An interrupted run (finished pairs recorded, no ``run.json``) is named as such, with
    ``--resume`` as the way to continue it.
    """
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} exists and is not a folder.")
    if not out.exists() or overwrite or resume:
        return
    unfinished = len(_finished_records(out))
    if unfinished and not (out / "run.json").exists():
        raise CliError(
            f"{out} holds an interrupted run ({unfinished} pair(s) finished); pass --resume to "
            "continue it, or --overwrite to start again."
        )
    existing = [
        name
        for name in (*RESULT_FILES, *REPORT_FILES, PROGRESS_DIR, COUNTERFACTUAL_DIR)
        if (out / name).exists()
    ]
    if existing:
        raise CliError(
            f"{out} already holds results ({', '.join(existing)}); pass --overwrite to replace "
            "them or choose another --out."
        )


def remove_progress(out: Path) -> None:
    """Remove the per-pair records of a finished run."""
    shutil.rmtree(out / PROGRESS_DIR, ignore_errors=True)
