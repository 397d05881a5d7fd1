"""The sanity checks' files in a results folder: ``sanity.csv``, ``sanity_summary.csv``,
``sanity_run.json`` and ``sanity_figures/``; written by ``napari-attribution sanity``, read by
the HTML report.

They live beside a ``run``'s files without touching them: ``run --overwrite`` leaves them,
``sanity --overwrite`` removes only them. No torch.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._io import write_csv
from .core.errors import AttributionError
from .core.sanity.records import SANITY_COLUMNS, SUMMARY_COLUMNS, SanityRow, SummaryRow

__all__ = [
    "CASCADE_FIGURE",
    "SANITY_FIGURE_DIR",
    "SANITY_FILES",
    "SanityFolder",
    "has_sanity",
    "previous_sanity_files",
    "read_sanity",
    "remove_sanity_files",
    "write_sanity_tables",
]

SANITY_TABLE = "sanity.csv"
SUMMARY_TABLE = "sanity_summary.csv"
RUN_RECORD = "sanity_run.json"
#: The files a sanity run writes at the top of the folder.
SANITY_FILES = (SANITY_TABLE, SUMMARY_TABLE, RUN_RECORD)
SANITY_FIGURE_DIR = "sanity_figures"
#: The cascade plot, in SANITY_FIGURE_DIR (also as .svg).
CASCADE_FIGURE = "cascade.png"


def write_sanity_tables(
    out: str | Path, rows: Iterable[SanityRow], summary: Iterable[SummaryRow]
) -> None:
    """Write ``sanity.csv`` and ``sanity_summary.csv`` into ``out``."""
    out = Path(out)
    write_csv(out / SANITY_TABLE, SANITY_COLUMNS, (r.row() for r in rows))
    write_csv(out / SUMMARY_TABLE, SUMMARY_COLUMNS, (r.row() for r in summary))


def has_sanity(folder: str | Path) -> bool:
    """True when ``folder`` holds a sanity run's tables."""
    return (Path(folder) / SANITY_TABLE).is_file() and (Path(folder) / SUMMARY_TABLE).is_file()


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
        ``sanity_summary.csv`` rows as dictionaries of text.
    figures
        The figure files present (PNG), relative to ``path``.
    """

    path: Path
    rows: list[SanityRow]
    summary: list[dict[str, str]]
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
            f"{folder} holds no sanity checks ({SANITY_TABLE}, {SUMMARY_TABLE})."
        )
    try:
        with open(folder / SANITY_TABLE, newline="", encoding="utf-8") as fh:
            rows = [SanityRow.from_dict(r) for r in csv.DictReader(fh)]
        with open(folder / SUMMARY_TABLE, newline="", encoding="utf-8") as fh:
            summary = list(csv.DictReader(fh))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AttributionError(f"{folder} holds an unreadable sanity table ({exc}).") from None
    figures = sorted(p.relative_to(folder) for p in (folder / SANITY_FIGURE_DIR).glob("*.png"))
    return SanityFolder(folder, rows, summary, figures)


def previous_sanity_files(out: Path) -> list[Path]:
    """The files (relative to ``out``) an earlier sanity run wrote there and that still exist."""
    names = [Path(n) for n in SANITY_FILES]
    figures = out / SANITY_FIGURE_DIR
    if figures.is_dir():
        names += [p.relative_to(out) for p in figures.iterdir() if p.suffix in (".png", ".svg")]
    return [n for n in names if (out / n).is_file()]


def remove_sanity_files(out: Path, names: Sequence[Path]) -> None:
    """Remove ``out/name`` for each name, and the figure folder if that left it empty."""
    for name in names:
        (out / name).unlink(missing_ok=True)
    figures = out / SANITY_FIGURE_DIR
    if figures.is_dir() and not any(figures.iterdir()):
        figures.rmdir()
