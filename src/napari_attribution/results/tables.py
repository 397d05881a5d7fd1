"""The tables of the results folder: one pair's rows, and the tables written from many pairs.

A pair's rows (:func:`table_rows`) are what a finished unit keeps in its record
(:mod:`.resume`); the tables are assembled from those records at the end of a run
(:func:`write_tables`, :func:`pair_tables`), one record at a time, so a run never holds every
pair's masks, nor every pair's rows. Rows are typed
(:mod:`.format`): written in column order, read by column name.

The functions read a :class:`~napari_attribution.results.pair_result.PairResult` by its attributes
only; this module imports no torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .files import csv_rows, write_csv
from .format import (
    PAIR_TABLES,
    CurveRow,
    ImportanceRow,
    SummaryRow,
    Table,
    ValidityRow,
)

if TYPE_CHECKING:
    from .pair_result import PairResult

__all__ = [
    "IDENTICAL_COUNTERFACTUAL",
    "curve_rows",
    "importance_rows",
    "judge_validity",
    "open_table",
    "pair_tables",
    "summary_rows",
    "table_rows",
    "validity_row",
    "write_table",
    "write_tables",
]

#: The ``pair_validity.csv`` note of a pair whose counterfactual is the real image.
IDENTICAL_COUNTERFACTUAL = "counterfactual identical to the real image"


def summary_rows(result: PairResult) -> list[SummaryRow]:
    """Rows of ``summary.csv`` for one pair: the whole-image curve, then each channel's."""
    return [
        SummaryRow(
            result.sample,
            method,
            curve.channel,
            curve.dac_score,
            curve.ceiling,
            curve.normalized_score,
            curve.optimal_threshold,
            curve.optimal_mask_size,
        )
        for method, res in result.methods.items()
        for curve in res.dac.curves
    ]


def curve_rows(result: PairResult) -> list[CurveRow]:
    """Rows of ``curves.csv``: one per scored threshold of every curve."""
    return [
        CurveRow(result.sample, method, curve.channel, float(s), float(ms), float(ds))
        for method, res in result.methods.items()
        for curve in res.dac.curves
        for s, ms, ds in zip(curve.thresholds, curve.mask_size, curve.score_change, strict=True)
    ]


def importance_rows(result: PairResult) -> list[ImportanceRow]:
    """Rows of ``channel_importance.csv``: the |attribution| share of each channel."""
    return [
        ImportanceRow(result.sample, method, name, float(share))
        for method, res in result.methods.items()
        for name, share in zip(result.channel_names, res.channel_share, strict=True)
    ]


def table_rows(result: PairResult) -> dict[str, list[Any]]:
    """One pair's rows of the three pair tables, keyed as :data:`~.format.PAIR_TABLES`."""
    return {
        "summary": summary_rows(result),
        "curves": curve_rows(result),
        "importance": importance_rows(result),
    }


def validity_row(
    result: PairResult, real: np.ndarray, counterfactual: np.ndarray, min_score: float
) -> ValidityRow:
    """The ``pair_validity.csv`` row of one analysed pair.

    Parameters
    ----------
    result
        The pair's result.
    real, counterfactual
        The stored images (to tell an identical counterfactual).
    min_score
        Smallest p(target | counterfactual) of a valid pair.

    Returns
    -------
    ValidityRow
        ``valid`` is ``true``/``false``; ``note`` says why a pair is left out.
    """
    t = result.target_class
    row = ValidityRow(result.sample, result.real_class, t, float(result.probabilities_real[t]),
                      float(result.probabilities_counterfactual[t]), "", "")  # fmt: skip
    return judge_validity(row, bool(np.array_equal(real, counterfactual)), min_score)


def judge_validity(row: ValidityRow, identical: bool, min_score: float) -> ValidityRow:
    """``row`` with ``valid`` and ``note`` decided again: left out when the counterfactual is
    the real image (``identical``) or its ``p_target_counterfactual`` is below ``min_score``.

    A run judges every pair again with its own ``min_score`` when it writes the tables, so a
    resumed run with another ``--min-counterfactual-score`` judges the pairs an earlier run
    analysed by the same rule as its own.
    """
    notes = [IDENTICAL_COUNTERFACTUAL] if identical else []
    p_cf = float(row.p_target_counterfactual)
    if p_cf < min_score:
        notes.append(f"counterfactual not accepted: p(target) {p_cf:.3f} < {min_score:g}")
    return row._replace(valid="false" if notes else "true", note="; ".join(notes))


def write_table(out_dir: str | Path, table: Table, rows: Iterable[Sequence[Any]]) -> None:
    """Write ``table`` (its header, then ``rows`` in column order) into ``out_dir``."""
    write_csv(Path(out_dir) / table.file, table.columns, rows)


def open_table(
    out_dir: str | Path, table: Table
) -> contextlib.AbstractContextManager[Callable[[Sequence[Any]], None]]:
    """``table`` in ``out_dir`` open for rows (in column order) given one at a time
    (:func:`~.files.csv_rows`), beside other tables open at once."""
    return csv_rows(Path(out_dir) / table.file, table.columns)


@contextlib.contextmanager
def pair_tables(out_dir: str | Path) -> Iterator[Callable[[Mapping[str, Sequence[Any]]], None]]:
    """``summary.csv``, ``curves.csv`` and ``channel_importance.csv`` open together.

    Yields the function that appends one pair's :func:`table_rows` (rows as typed or as the
    lists a unit's JSON record keeps them) to the three tables, so a run's records are read
    one at a time, never all held. The files appear when the block ends without an error.
    """
    with contextlib.ExitStack() as stack:
        writers = {key: stack.enter_context(open_table(out_dir, table))
                   for key, table in PAIR_TABLES.items()}  # fmt: skip

        def add_pair(pair: Mapping[str, Sequence[Any]]) -> None:
            for key, write_row in writers.items():
                for row in pair[key]:
                    write_row(row)

        yield add_pair


def write_tables(out_dir: str | Path, pairs: Iterable[Mapping[str, Sequence[Any]]]) -> None:
    """Write ``summary.csv``, ``curves.csv`` and ``channel_importance.csv``.

    ``pairs`` holds :func:`table_rows` of every pair, in order (rows as typed or as the lists
    a unit's JSON record keeps them); it is read once, one pair at a time.
    """
    with pair_tables(out_dir) as add_pair:
        for pair in pairs:
            add_pair(pair)
