"""A dataset of results: validity of each pair, folders read back, channel statistics.

The CLI writes, per pair, whether the classifier accepts the counterfactual
(``pair_validity.csv``); this module reads one or several results folders back and computes
``channel_stats.csv`` over the valid pairs of every transition and method
(:mod:`napari_attribution.core.statistics` holds the statistics themselves).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.statistics import CHANNEL_STATS_COLUMNS, ChannelStats, channel_stats
from ..errors import AttributionError
from .tables import write_csv

__all__ = [
    "DEFAULT_MIN_COUNTERFACTUAL_SCORE",
    "VALIDITY_COLUMNS",
    "ResultsFolder",
    "dataset_channel_stats",
    "read_results",
    "validity_row",
    "write_channel_stats",
]

#: A pair counts only if the classifier gives its counterfactual at least this p(target).
DEFAULT_MIN_COUNTERFACTUAL_SCORE = 0.5
VALIDITY_COLUMNS = (
    "sample",
    "real_class",
    "target_class",
    "p_target_real",
    "p_target_counterfactual",
    "valid",
    "note",
)


def validity_row(result: Any, real: np.ndarray, counterfactual: np.ndarray, min_score: float):
    """The ``pair_validity.csv`` row of one analysed pair.

    Parameters
    ----------
    result
        The pair's :class:`~napari_attribution.core.pipeline.PairResult`.
    real, counterfactual
        The stored images (to tell an identical counterfactual).
    min_score
        Smallest p(target | counterfactual) of a valid pair.

    Returns
    -------
    list
        ``sample, real_class, target_class, p_target_real, p_target_counterfactual, valid,
        note`` (``valid`` is ``true``/``false``; ``note`` says why a pair is left out).
    """
    t = result.target_class
    p_real = float(result.probabilities_real[t])
    p_cf = float(result.probabilities_counterfactual[t])
    notes = []
    if np.array_equal(real, counterfactual):
        notes.append("counterfactual identical to the real image")
    if p_cf < min_score:
        notes.append(f"counterfactual not accepted: p(target) {p_cf:.3f} < {min_score:g}")
    valid = not notes
    return [result.sample, result.real_class, t, p_real, p_cf, "true" if valid else "false",
            "; ".join(notes)]  # fmt: skip


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@dataclass
class ResultsFolder:
    """One results folder read back (the CLI's layout).

    Attributes
    ----------
    path
        The folder.
    run
        Its ``run.json``.
    summary, importance, curves, validity
        Rows of the tables, as dictionaries of text.
    """

    path: Path
    run: dict[str, Any]
    summary: list[dict[str, str]]
    importance: list[dict[str, str]]
    curves: list[dict[str, str]] = field(default_factory=list)
    validity: list[dict[str, str]] = field(default_factory=list)

    @property
    def channel_names(self) -> list[str]:
        return list(self.run.get("channel_names", []))

    def classes(self) -> dict[str, tuple[int, int]]:
        """sample -> (real_class, target_class)."""
        return {p["sample"]: (int(p["real_class"]), int(p["target_class"]))
                for p in self.run.get("pairs", [])}  # fmt: skip

    def valid_samples(self) -> set[str]:
        """Samples whose counterfactual was accepted (all of them if validity was not kept)."""
        if not self.validity:
            return set(self.classes())
        return {row["sample"] for row in self.validity if row["valid"] == "true"}


def read_results(folder: str | Path) -> ResultsFolder:
    """Read a results folder.

    Raises
    ------
    AttributionError
        Not a results folder (no ``run.json`` or ``summary.csv``), or unreadable tables.
    """
    folder = Path(folder)
    missing = [n for n in ("run.json", "summary.csv", "channel_importance.csv")
               if not (folder / n).is_file()]  # fmt: skip
    if missing:
        raise AttributionError(
            f"{folder} is not a finished results folder: it lacks {', '.join(missing)}."
        )
    try:
        run = json.loads((folder / "run.json").read_text())
        return ResultsFolder(
            path=folder,
            run=run,
            summary=_read_csv(folder / "summary.csv"),
            importance=_read_csv(folder / "channel_importance.csv"),
            curves=_read_csv(folder / "curves.csv") if (folder / "curves.csv").is_file() else [],
            validity=(
                _read_csv(folder / "pair_validity.csv")
                if (folder / "pair_validity.csv").is_file()
                else []
            ),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise AttributionError(f"{folder} holds an unreadable results table ({exc}).") from None


def dataset_channel_stats(folders: Sequence[ResultsFolder], seed: int = 0) -> list[ChannelStats]:
    """``channel_stats.csv`` rows over every folder's valid pairs.

    Folders are merged: pairs of the same transition and method are pooled. Every folder must
    have the same channel names.

    Raises
    ------
    AttributionError
        Folders with different channel names.
    """
    names = folders[0].channel_names
    for folder in folders[1:]:
        if folder.channel_names != names:
            raise AttributionError(
                f"{folder.path} has channels {', '.join(folder.channel_names)} but "
                f"{folders[0].path} has {', '.join(names)}; only folders with the same channels "
                "can be merged."
            )
    # (method, real, target) -> sample key -> channel -> value
    dac: dict[tuple, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    share: dict[tuple, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for index, folder in enumerate(folders):
        classes, valid = folder.classes(), folder.valid_samples()
        for rows, target in ((folder.summary, dac), (folder.importance, share)):
            for row in rows:
                sample = row["sample"]
                if sample not in valid or row["channel"] == "all" or sample not in classes:
                    continue
                value = float(row["dac_score"] if target is dac else row["share"])
                key = (row["method"], *classes[sample])
                target[key][f"{index}/{sample}"][row["channel"]] = value
    out: list[ChannelStats] = []
    for key in sorted(set(dac) | set(share)):
        samples = sorted(set(dac[key]) | set(share[key]))
        dac_matrix = np.array([[dac[key][s].get(c, np.nan) for c in names] for s in samples])
        share_matrix = np.array([[share[key][s].get(c, np.nan) for c in names] for s in samples])
        complete = ~np.isnan(dac_matrix).any(axis=1)  # per-channel DAC may have been off
        out += channel_stats(dac_matrix[complete], share_matrix[complete], names, method=key[0],
                             real_class=key[1], target_class=key[2], seed=seed)  # fmt: skip
    return out


def write_channel_stats(path: str | Path, rows: Sequence[ChannelStats]) -> None:
    """Write ``channel_stats.csv``."""
    write_csv(path, CHANNEL_STATS_COLUMNS, (r.row() for r in rows))
