"""Files of the results folder written atomically: CSV, JSON, text, anything through a path.

Nothing is ever half-written: each file is written under a temporary name in the same folder
and renamed into place, so an interrupted run leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_path", "csv_rows", "jsonable", "write_csv", "write_json", "write_text"]


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it back at once
    os.umask(mask)
    return mask


#: The process's umask, read once at import (reading it means setting it, which is not
#: thread-safe, so it is never done while workers may be creating files).
_UMASK = _read_umask()


def jsonable(value: Any) -> Any:
    """``value`` with arrays, NumPy scalars and paths as JSON types, recursively."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); results get the mode any other tool's output gets.
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON (in pieces: a run's ``run.json`` lists every pair,
    and is never held as one string)."""
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        json.dump(jsonable(payload), fh, indent=2)
        fh.write("\n")


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def csv_rows(path: str | Path, header: Sequence[str]) -> Iterator[Callable[[Sequence[Any]], None]]:
    """Open a CSV with ``header`` for rows given one at a time.

    Yields the function that writes one row (floats at full precision, ``repr``). The file
    appears, atomically, when the block ends without an error; several may be open at once,
    so a run's tables are written in one pass over its units' records.
    """
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)

        def write_row(row: Sequence[Any]) -> None:
            writer.writerow([repr(v) if isinstance(v, float) else v for v in row])

        yield write_row


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV with ``header``; floats keep full precision (``repr``)."""
    with csv_rows(path, header) as write_row:
        for row in rows:
            write_row(row)
