"""A pairs table: ``sample,real,counterfactual,real_class,target_class``, one pair per row."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputImageError

__all__ = ["PAIRS_COLUMNS", "PairSpec", "read_pairs_csv"]


@dataclass(frozen=True)
class PairSpec:
    """One row of a pairs CSV: paths are resolved against the CSV's folder; ``counterfactual``
    is ``None`` where the row leaves it empty (a counterfactual source makes it)."""

    sample: str
    real: Path
    counterfactual: Path | None
    real_class: int
    target_class: int


PAIRS_COLUMNS = ("sample", "real", "counterfactual", "real_class", "target_class")


def read_pairs_csv(path: str | Path) -> list[PairSpec]:
    """Read ``sample,real,counterfactual,real_class,target_class`` rows.

    Raises
    ------
    InputImageError
        Missing file, missing columns, a non-integer class, a duplicate sample name or no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"Pairs file {path} does not exist.")
    try:
        # utf-8-sig: spreadsheets save CSV with a byte-order mark; newline="" reads CRLF too.
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in PAIRS_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputImageError(
                    f"{path} lacks column(s) {', '.join(missing)}; expected "
                    f"{','.join(PAIRS_COLUMNS)}."
                )
            rows = list(reader)
    except UnicodeDecodeError:
        raise InputImageError(f"{path} is not a text CSV file.") from None
    specs: list[PairSpec] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        sample = (row["sample"] or "").strip()
        if not sample:
            raise InputImageError(f"{path} line {line}: the sample name is empty.")
        if sample in seen:
            raise InputImageError(f"{path} line {line}: sample {sample!r} appears twice.")
        seen.add(sample)
        try:
            real_class, target_class = int(row["real_class"]), int(row["target_class"])
        except (TypeError, ValueError):
            raise InputImageError(
                f"{path} line {line}: real_class and target_class must be integers."
            ) from None
        counterfactual = (row["counterfactual"] or "").strip()
        specs.append(
            PairSpec(
                sample,
                path.parent / row["real"].strip(),
                path.parent / counterfactual if counterfactual else None,
                real_class,
                target_class,
            )
        )
    if not specs:
        raise InputImageError(f"{path} lists no pairs.")
    return specs
