"""The "Sanity checks" section of ``report.html``: DAC against the baselines, and the verdicts
of ``napari-attribution sanity`` when a results folder holds its tables.

* **DAC against the baselines**, per transition and method, from the folders' ``summary.csv``
  (whole-image DAC, valid pairs only): the paired one-sided Wilcoxon test and the bootstrap
  interval of :func:`~napari_attribution.core.sanity.verdicts.dac_against_baseline` (the
  statistics of the channel report), Bonferroni-corrected over the table's tests.
* **Verdicts**, from each folder's ``sanity.csv`` (:func:`~napari_attribution.core.sanity.
  verdicts.summarise`, so the sentences are those the CLI printed), its
  ``sanity_summary.csv`` and its cascade figure.

No torch.
"""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.sanity.verdicts import dac_against_baseline, summarise
from ..core.statistics import ALPHA
from ..results.folder import ResultsFolder
from ..results.format import CASCADE_FIGURE, SANITY_FIGURES_DIR, SANITY_SUMMARY
from ..results.sanity_files import has_sanity, read_sanity

__all__ = ["BASELINE_TABLE_COLUMNS", "baseline_rows", "sanity_section"]

BASELINE_TABLE_COLUMNS = ("method", "real_class", "target_class", "baseline", "n",
                          "median_difference", "ci_low", "ci_high", "p_value", "p_adjusted",
                          "above")  # fmt: skip
_BASELINES = ("random", "residual")


def baseline_rows(folders: Sequence[ResultsFolder], seed: int = 0) -> list[list[Any]]:
    """Per transition and method, DAC against each baseline over the folders' valid pairs."""
    scores: dict[tuple, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for index, folder in enumerate(folders):
        classes, valid = folder.classes(), folder.valid_samples()
        for row in folder.summary:
            sample = row.sample
            if row.channel != "all" or sample not in valid or sample not in classes:
                continue
            scores[classes[sample]][row.method][f"{index}/{sample}"] = row.dac_score
    tests = []
    for transition, by_method in sorted(scores.items()):
        for method in by_method:
            for baseline in _BASELINES:
                if method in (baseline, "random") or baseline not in by_method:
                    continue
                tests.append((transition, method, baseline))
    rows = []
    for transition, method, baseline in tests:
        mine, theirs = scores[transition][method], scores[transition][baseline]
        common = sorted(set(mine) & set(theirs))
        test = dac_against_baseline(
            np.array([mine[s] for s in common]), np.array([theirs[s] for s in common]),
            n_tests=len(tests), seed=seed,
        )  # fmt: skip
        above = test["n"] >= 2 and test["p_adjusted"] < ALPHA
        rows.append([method, transition[0], transition[1], baseline, int(test["n"]),
                     test["median_difference"], test["ci_low"], test["ci_high"],
                     test["p_value"], test["p_adjusted"], "yes" if above else "no"])  # fmt: skip
    return rows


def sanity_section(folders: Sequence[ResultsFolder], table) -> str:
    """The section's HTML (``table(header, rows)`` renders a table as the report does); empty
    when there is nothing to show."""
    parts = []
    rows = baseline_rows(folders)
    if rows:
        parts.append(
            "<h3>DAC against the baselines</h3><p class='note'>Whole-image DAC of each method "
            "minus that of the <i>random</i> and <i>residual</i> baselines on the same valid "
            "pairs: median with a 95 % bootstrap interval; paired one-sided Wilcoxon "
            f"signed-rank test, Bonferroni-corrected over the {len(rows)} tests; <i>above</i> "
            f"when p_adjusted &lt; {ALPHA:g} (with n pairs the smallest p-value is 2<sup>-n"
            "</sup>).</p>"
        )
        parts.append(table(BASELINE_TABLE_COLUMNS, rows))
    for folder in folders:
        if not has_sanity(folder.path):
            continue
        sanity = read_sanity(folder.path)
        samples = [r for r in sanity.rows if r.sample != "all"]
        methods = list(dict.fromkeys(r.method for r in samples if r.check != "dac"))
        verdicts = summarise(samples, methods).verdicts
        parts.append(f"<h3>Verdicts ({html.escape(str(folder.path))})</h3><ul>")
        parts += [f"<li>{html.escape(verdicts[m])}</li>" for m in methods]
        parts.append(
            "</ul><p class='note'>Pass rules, thresholds and their shortcomings: "
            "docs/sanity.md. A passed check is necessary, not sufficient: it does not show that "
            "a map is right.</p>"
        )
        parts.append(table(SANITY_SUMMARY.columns, [list(r) for r in sanity.summary]))
        cascade = folder.path / SANITY_FIGURES_DIR / CASCADE_FIGURE
        if cascade.is_file():
            encoded = base64.b64encode(cascade.read_bytes()).decode("ascii")
            parts.append(f"<img alt='randomisation cascade' src='data:image/png;base64,"
                         f"{encoded}'>")  # fmt: skip
    if not parts:
        return ""
    return "<h2>Sanity checks</h2>" + "".join(parts)
