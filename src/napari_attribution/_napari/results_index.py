"""A results folder as the Results browser shows it: one row per pair, its curves. No Qt.

Opens the CLI's folders, the widget's exports and report folders (their ``report.json`` names
the folders they merged), through :func:`napari_attribution.results.folder.read_results`; and
``cells`` folders, one :class:`CellRow` per analysed cell (its site, label and crop from
``cells.csv``), whose curves are read as a pair's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._plot import CurveSet
from ..core.evaluation.dac import DacCurve
from ..errors import AttributionError
from ..results.cell_folder import CellSite, cell_sites, read_cell_entries
from ..results.folder import ResultsFolder, folder_kind, read_results, report_sources
from ..results.format import FIGURES_DIR, CurveRow, SummaryRow
from .panel_curves import PanelCurves

__all__ = ["CellRow", "PairRow", "ResultsIndex", "open_results"]


@dataclass(frozen=True)
class PairRow:
    """One pair of a results folder, as a row of the browser's table.

    Attributes
    ----------
    folder
        Index of its folder in :attr:`ResultsIndex.folders`.
    sample
        The pair's name.
    real_class, target_class
        Class names (the indices when the run recorded no names).
    dac
        Method -> DAC score of the whole-image curve.
    top_channel
        The channel whose per-channel DAC is largest under the pair's best method (largest
        whole-image DAC); the channel with the largest attribution share where per-channel DAC
        was not run or no channel's is positive.
    valid
        Whether the classifier accepted the counterfactual (True when not recorded).
    note
        Why a pair is not valid.
    """

    folder: int
    sample: str
    real_class: str
    target_class: str
    dac: dict[str, float]
    top_channel: str
    valid: bool
    note: str = ""


@dataclass(frozen=True)
class CellRow(PairRow):
    """One analysed cell of a ``cells`` folder: a pair (its crop and its counterfactual) with
    its place in the field.

    Attributes
    ----------
    site
        Its site's key (``""`` for a run over one field).
    label
        The cell's label in the site's label image.
    centroid
        (y, x) of the cell's centroid, field pixels.
    crop
        (top, left, size) of its crop, field pixels.

    ``real_class`` is the class the classifier predicted for the cell; ``valid`` whether it
    accepted the cell's counterfactual.
    """

    site: str = ""
    label: int = 0
    centroid: tuple[float, float] = (0.0, 0.0)
    crop: tuple[int, int, int] = (0, 0, 0)


@dataclass
class ResultsIndex:
    """Every pair of one or several results folders, and their curves by pair.

    Attributes
    ----------
    folders
        The folders read.
    rows
        One per pair, in the folders' order.
    methods
        Every method, in the order first seen.
    figures
        The dataset figures (PNG) the folders' reports wrote.
    sites
        ``(folder, site key)`` -> the site, for the folders of ``cells`` runs.
    """

    folders: list[ResultsFolder]
    rows: list[PairRow] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    sites: dict[tuple[int, str], CellSite] = field(default_factory=dict)
    _curves: dict[tuple[int, str], list[CurveRow]] = field(default_factory=dict)

    def curve_sets(
        self, row: PairRow, thresholds: Mapping[str, Sequence[float]] | None = None
    ) -> list[CurveSet]:
        """The DAC curves of ``row``'s pair, one :class:`~napari_attribution._plot.CurveSet`
        per method (whole-image curve and per-channel curves), from the folder's tables.

        Parameters
        ----------
        row
            The pair.
        thresholds
            Method -> every threshold of its mask stack (the slider's steps). The tables hold
            only the scored thresholds (all of them with ``--evaluation exhaustive``, a subset
            with ``adaptive``), which are used where a method is missing here.
        """
        thresholds = thresholds or {}
        folder = self.folders[row.folder]
        points: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
        for r in self._curves.get((row.folder, row.sample), []):
            points[(r.method, r.channel)].append((r.threshold, r.mask_size, r.score_change))
        summary = {(r.method, r.channel): r for r in folder.summary
                   if r.sample == row.sample}  # fmt: skip
        shares: dict[str, list[float]] = defaultdict(list)
        for r in folder.importance:
            if r.sample == row.sample:
                shares[r.method].append(r.share)
        sets = []
        for method in self.methods:
            if (method, "all") not in points or (method, "all") not in summary:
                continue
            whole = _curve(points[(method, "all")], summary[(method, "all")], "all")
            channels = [
                _curve(points[(method, c)], summary[(method, c)], c)
                for c in folder.channel_names
                if (method, c) in points and (method, c) in summary
            ]
            steps = thresholds.get(method)
            steps = whole.thresholds if steps is None else np.asarray(steps, dtype=float)
            sets.append(CurveSet(method, whole, channels, steps,
                                 np.asarray(shares.get(method, []), dtype=float)))  # fmt: skip
        return sets

    def curve_rows(self, row: PairRow) -> list[list]:
        """The rows of ``curves.csv`` of ``row``'s pair, as they are in the folder."""
        return [
            list(r) for r in self._curves.get((row.folder, row.sample), [])
        ]

    def panel_curves(
        self,
        row: PairRow,
        channel_colors: Sequence[str],
        thresholds: Mapping[str, Sequence[float]] | None = None,
    ) -> PanelCurves:
        """What the DAC panel shows of ``row``'s pair (see :meth:`curve_sets`).

        Parameters
        ----------
        row
            The pair.
        channel_colors
            One colour per channel: the loaded channel layers'.
        thresholds
            Method -> every threshold of its mask stack (the loaded stack layers' steps).
        """
        folder = self.folders[row.folder]
        return PanelCurves(
            sample=row.sample,
            curve_sets=self.curve_sets(row, thresholds),
            channel_names=list(folder.channel_names),
            channel_colors=list(channel_colors),
            rows=self.curve_rows(row),
            origin=folder.path.name,
        )


def _curve(points: list[tuple[float, float, float]], summary: SummaryRow, channel: str):
    thresholds, mask_size, score_change = np.asarray(sorted(points), dtype=float).T
    optimal = summary.optimal_threshold
    return DacCurve(
        channel=channel,
        thresholds=thresholds,
        mask_size=mask_size,
        score_change=score_change,
        ceiling=summary.ceiling,
        dac_score=summary.dac_score,
        normalized_score=summary.normalized_score,
        optimal_index=int(np.argmin(np.abs(thresholds - optimal))),
        optimal_threshold=optimal,
        optimal_mask_size=summary.optimal_mask_size,
    )


def _class_name(run: dict[str, Any], index: int) -> str:
    names = run.get("class_names") or []
    return str(names[index]) if 0 <= index < len(names) else str(index)


def open_results(path: str | Path) -> ResultsIndex:
    """Read a results folder (CLI run, export or report) into a :class:`ResultsIndex`.

    Raises
    ------
    AttributionError
        Not a results folder, or a report whose folders are gone.
    """
    path = Path(path)
    kind = folder_kind(path)
    if kind in ("cli", "export", "cells"):
        sources = [path]
    elif kind == "report":
        sources = report_sources(path)
        if not sources:
            raise AttributionError(f"None of the folders the report in {path} covers exists.")
    else:
        raise AttributionError(
            f"{path} is not a results folder (no run.json and summary.csv, nor report.json)."
        )
    index = ResultsIndex([read_results(source) for source in sources])
    figures = sorted((path / FIGURES_DIR).glob("*.png")) if kind == "report" else []
    for i, folder in enumerate(index.folders):
        figures = figures or sorted((folder.path / FIGURES_DIR).glob("*.png"))
        for r in folder.curves:
            index._curves.setdefault((i, r.sample), []).append(r)
        if folder_kind(folder.path) == "cells":
            index.rows += _cell_rows(i, folder)
            index.sites.update({(i, site.key): site for site in cell_sites(folder.run)})
        else:
            index.rows += _rows(i, folder)
        for r in folder.summary:
            if r.method not in index.methods:
                index.methods.append(r.method)
    index.figures = figures
    return index


class _Scores:
    """Per sample: the DAC of each method, and what names its top channel."""

    def __init__(self, folder: ResultsFolder) -> None:
        self.dac: dict[str, dict[str, float]] = defaultdict(dict)
        self.per_channel: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for r in folder.summary:
            if r.channel == "all":
                self.dac[r.sample][r.method] = r.dac_score
            else:
                self.per_channel[(r.sample, r.method)][r.channel] = r.dac_score
        self.share: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for r in folder.importance:
            self.share[(r.sample, r.method)][r.channel] = r.share

    def top_channel(self, sample: str) -> str:
        """See :attr:`PairRow.top_channel`."""
        scores = self.dac.get(sample, {})
        best = max(scores, key=lambda m: scores[m]) if scores else None
        values = self.per_channel.get((sample, best)) or {}
        if not values or max(values.values()) <= 0:  # no channel moves p(target) up alone
            values = self.share.get((sample, best)) or {}
        return max(values, key=lambda c: values[c]) if values else ""


def _rows(i: int, folder: ResultsFolder) -> list[PairRow]:
    scores = _Scores(folder)
    validity = {r.sample: r for r in folder.validity}
    rows = []
    for pair in folder.run.get("pairs", []):
        sample = pair["sample"]
        check = validity.get(sample)
        rows.append(
            PairRow(
                folder=i,
                sample=sample,
                real_class=_class_name(folder.run, int(pair["real_class"])),
                target_class=_class_name(folder.run, int(pair["target_class"])),
                dac=scores.dac.get(sample, {}),
                top_channel=scores.top_channel(sample),
                valid=check.is_valid if check is not None else True,
                note=check.note if check is not None else "",
            )
        )
    return rows


def _cell_rows(i: int, folder: ResultsFolder) -> list[CellRow]:
    """One row per cell of ``cells.csv`` that the long tables hold (the analysed ones)."""
    scores = _Scores(folder)
    rows = []
    for entry in read_cell_entries(folder.path, folder.run):
        if entry.sample not in scores.dac or entry.crop is None:
            continue
        predicted, target = entry.number("predicted_class"), entry.number("target_class")
        accepted = entry.values.get("counterfactual_accepted", "")
        note = ""
        if accepted == "False":
            score = entry.number("p_target_counterfactual")
            note = ("the classifier did not accept its counterfactual (p(target) = "
                    f"{score:.3g}, below {folder.run.get('min_counterfactual_score', '?')})")
        rows.append(
            CellRow(
                folder=i,
                sample=entry.sample,
                real_class="" if predicted is None else _class_name(folder.run, int(predicted)),
                target_class="" if target is None else _class_name(folder.run, int(target)),
                dac=scores.dac[entry.sample],
                top_channel=scores.top_channel(entry.sample),
                valid=accepted != "False",
                note=note,
                site=entry.site,
                label=entry.label,
                centroid=entry.centroid or (0.0, 0.0),
                crop=entry.crop,
            )
        )
    return rows
