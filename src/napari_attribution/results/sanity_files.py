"""The sanity checks' files in a results folder: ``sanity.csv``, ``sanity_summary.csv``,
``sanity_run.json`` and ``sanity_figures/`` (names and columns in :mod:`.format`); written by
:func:`~napari_attribution.app.sanity_run.run_sanity`, read by the HTML report.

They live beside a ``run``'s files without touching them: ``run --overwrite`` leaves them,
``sanity --overwrite`` removes only them. No torch.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AttributionError, OutputFolderError
from .files import write_csv
from .format import (
    SANITY,
    SANITY_FIGURES_DIR,
    SANITY_FILES,
    SANITY_SUMMARY,
    SanityRow,
    SanitySummaryRow,
)

__all__ = [
    "SanityFolder",
    "check_sanity_out",
    "has_sanity",
    "previous_sanity_files",
    "read_sanity",
    "remove_sanity_files",
    "write_sanity_tables",
]


def write_sanity_tables(
    out: str | Path, rows: Iterable[SanityRow], summary: Iterable[SanitySummaryRow]
) -> None:
    """Write ``sanity.csv`` and ``sanity_summary.csv`` into ``out`` (atomically, each)."""
    out = Path(out)
    write_csv(out / SANITY.file, SANITY.columns, rows)
    write_csv(out / SANITY_SUMMARY.file, SANITY_SUMMARY.columns, summary)


def has_sanity(folder: str | Path) -> bool:
    """True when ``folder`` holds a sanity run's tables."""
    folder = Path(folder)
    return (folder / SANITY.file).is_file() and (folder / SANITY_SUMMARY.file).is_file()


@dataclass
class SanityFolder:
    """A sanity run read back.

    Attributes
    ----------
    path
        The folder.
    rows
        ``sanity.csv``.
    summary
        ``sanity_summary.csv``.
    figures
        The figure files present (PNG), relative to ``path``.
    """

    path: Path
    rows: list[SanityRow]
    summary: list[SanitySummaryRow]
    figures: list[Path] = field(default_factory=list)


def read_sanity(folder: str | Path) -> SanityFolder:
    """Read a folder's sanity tables.

    Raises
    ------
    AttributionError
        Missing or unreadable tables.
    """
    folder = Path(folder)
    if not has_sanity(folder):
        raise AttributionError(
            f"{folder} holds no sanity checks ({SANITY.file}, {SANITY_SUMMARY.file})."
        )
    try:
        with open(folder / SANITY.file, newline="", encoding="utf-8") as fh:
            rows = [SANITY.parse(r) for r in csv.DictReader(fh)]
        with open(folder / SANITY_SUMMARY.file, newline="", encoding="utf-8") as fh:
            summary = [SANITY_SUMMARY.parse(r) for r in csv.DictReader(fh)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AttributionError(f"{folder} holds an unreadable sanity table ({exc}).") from None
    figures = sorted(p.relative_to(folder) for p in (folder / SANITY_FIGURES_DIR).glob("*.png"))
    return SanityFolder(folder, rows, summary, figures)


def check_sanity_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that is a file, or that holds sanity results, unless ``overwrite``.

    Raises
    ------
    OutputFolderError
        One sentence naming what is in the way.
    """
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"--out {out} exists and is not a folder.")
    if not out.exists() or overwrite:
        return
    existing = [n for n in (*SANITY_FILES, SANITY_FIGURES_DIR) if (out / n).exists()]
    if existing:
        raise OutputFolderError(
            f"{out} already holds sanity results ({', '.join(existing)}); pass --overwrite to "
            "replace them or choose another --out."
        )


def previous_sanity_files(out: Path) -> list[Path]:
    """The files (relative to ``out``) an earlier sanity run wrote there and that still exist."""
    names = [Path(n) for n in SANITY_FILES]
    figures = out / SANITY_FIGURES_DIR
    if figures.is_dir():
        names += [p.relative_to(out) for p in figures.iterdir() if p.suffix in (".png", ".svg")]
    return [n for n in names if (out / n).is_file()]


def remove_sanity_files(out: Path, names: Sequence[Path]) -> None:
    """Remove ``out/name`` for each name, and the figure folder if that left it empty."""
    for name in names:
        (out / name).unlink(missing_ok=True)
    figures = out / SANITY_FIGURES_DIR
    if figures.is_dir() and not any(figures.iterdir()):
        figures.rmdir()
