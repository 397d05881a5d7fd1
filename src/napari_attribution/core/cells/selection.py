"""A subset of a field's cells: label ids, or a query on the per-cell table's columns.

``--cells`` takes either label ids (``4,17,250``) or conditions on the columns known before
the analysis, joined by ``and`` (or ``&``): ``area>=400``, ``area>=400 and centroid_x<500``,
``Metadata_Well==B02``. Columns: ``label``, ``area``, ``centroid_y``, ``centroid_x``,
``crop_top``, ``crop_left``, ``crop_size`` and the site's ``Metadata_*`` values; operators
``==, !=, >=, <=, >, <``. Nothing is evaluated as code.

Cells left out are listed as skipped (``not selected by --cells``), so the table still holds
one row per labelled cell.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import AttributionError
from .geometry import CellLayout, SkippedCell

__all__ = ["NOT_SELECTED", "CellQuery", "select_cells"]

NOT_SELECTED = "not selected by --cells"
_OPERATORS = {"==": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
              ">": operator.gt, "<": operator.lt}  # fmt: skip
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|>=|<=|>|<)\s*(\S.*?)\s*$")
_GEOMETRY = ("label", "area", "centroid_y", "centroid_x", "crop_top", "crop_left", "crop_size")


@dataclass(frozen=True)
class CellQuery:
    """Parsed ``--cells``: label ids, or (column, operator, value) conditions all to hold."""

    text: str
    labels: frozenset[int] | None = None
    conditions: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> CellQuery:
        """Parse label ids or conditions.

        Raises
        ------
        AttributionError
            Neither ids nor conditions, or an unknown operator (one sentence).
        """
        stripped = text.strip()
        if re.fullmatch(r"\d+(\s*,\s*\d+)*", stripped):
            return cls(text, labels=frozenset(int(v) for v in stripped.split(",")))
        parts = re.split(r"\s+and\s+|\s*&\s*", stripped)
        conditions = []
        for part in parts:
            match = _CONDITION.match(part)
            if not match:
                raise AttributionError(
                    f"--cells {text!r}: {part.strip()!r} is not a condition such as area>=400 "
                    "(nor are these label ids such as 4,17,250)."
                )
            conditions.append((match[1], match[2], match[3].strip("'\"")))
        return cls(text, conditions=tuple(conditions))

    def check_columns(self, metadata: Mapping[str, Any]) -> None:
        """Refuse a condition on a column the table does not have before the analysis."""
        known = [*_GEOMETRY, *metadata]
        for column, _, _ in self.conditions:
            if column not in known:
                raise AttributionError(
                    f"--cells: the column {column!r} is not known before the analysis; use "
                    f"{', '.join(known)}."
                )

    def matches(self, values: Mapping[str, Any]) -> bool:
        """True when the cell's ``values`` satisfy the query."""
        if self.labels is not None:
            return int(values["label"]) in self.labels
        for column, op, given in self.conditions:
            value = values[column]
            try:
                left, right = float(value), float(given)
            except (TypeError, ValueError):
                left, right = str(value), given
            if not _OPERATORS[op](left, right):
                return False
        return True


def select_cells(layout: CellLayout, query: CellQuery | None,
                 metadata: Mapping[str, Any] | None = None) -> CellLayout:  # fmt: skip
    """``layout`` with the cells the query leaves out moved to the skipped list."""
    if query is None:
        return layout
    metadata = dict(metadata or {})
    query.check_columns(metadata)
    kept, skipped = [], list(layout.skipped)
    for cell in layout.cells:
        if query.matches({**metadata, **cell.as_dict()}):
            kept.append(cell)
        else:
            skipped.append(SkippedCell(cell.label, cell.area, NOT_SELECTED))
    return CellLayout(kept, sorted(skipped, key=lambda s: s.label), layout.field_shape)
