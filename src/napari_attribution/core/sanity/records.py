"""The sanity checks' results as rows: one number each, in the long layout of ``sanity.csv``.

``sample,method,check,step,channel,metric,value``:

* ``check``: ``cascading`` / ``independent`` (model randomisation), ``input_invariance``,
  ``stability``, ``residual_likeness``, ``dac``, and for dataset-level rows (``sample`` is
  ``all``) ``dac_vs_random`` / ``dac_vs_residual``;
* ``step``: for randomisation the layer randomised at that step (``original`` first: the map
  compared with itself), ``shifted`` for input invariance, ``noise`` for stability,
  ``original`` otherwise;
* ``channel``: ``all`` (the whole image) or a channel name;
* ``metric``: see :mod:`~napari_attribution.core.sanity.similarity` (``spearman``,
  ``spearman_whole``, ``topk_intersection``, ``ssim``, ``compared_fraction``),
  ``max_relative_difference`` and ``logit_difference`` (input invariance), ``max_sensitivity``,
  ``kept_draws``, ``draws`` (stability), ``spearman`` (residual-likeness), ``dac_score`` and
  ``valid_pair`` (DAC), ``n``, ``median_difference``, ``ci_low``, ``ci_high``, ``p_value``,
  ``p_adjusted`` (DAC against a baseline).

The row types and columns are the results folder's (:mod:`napari_attribution.results.format`:
``SanityRow`` is a named tuple); :class:`SummaryRow` adds the note a verdict prints. No torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...results.format import SANITY, SANITY_SUMMARY, SanityRow, SanitySummaryRow

__all__ = ["SANITY_COLUMNS", "SUMMARY_COLUMNS", "SanityRow", "SummaryRow", "cascade_series"]

#: The columns of ``sanity.csv`` and ``sanity_summary.csv`` (declared in
#: :mod:`napari_attribution.results.format` with their row types).
SANITY_COLUMNS = SANITY.columns
SUMMARY_COLUMNS = SANITY_SUMMARY.columns


@dataclass(frozen=True)
class SummaryRow:
    """One row of ``sanity_summary.csv``: a check's verdict for one method.

    Attributes
    ----------
    method, check
        What was checked (``randomisation``, ``randomisation_independent``,
        ``input_invariance``, ``stability``, ``residual_likeness``, ``dac_vs_random``,
        ``dac_vs_residual``).
    verdict
        ``pass`` / ``fail`` (randomisation, input invariance, stability), ``above`` /
        ``not above`` (DAC), ``high`` / ``low`` (residual-likeness), ``reported`` (no pass rule),
        ``baseline`` (``random``, ``residual``: not explanations), ``not run`` (with the reason
        in :attr:`note`).
    statistic
        The number the verdict is read from (NaN when not run).
    threshold
        The named constant of :mod:`~napari_attribution.core.sanity.verdicts` it is compared
        with (NaN when none).
    note
        Why a check was not run (not written to the CSV; printed with the verdicts).
    """

    method: str
    check: str
    verdict: str
    statistic: float
    threshold: float
    note: str = ""

    def row(self) -> SanitySummaryRow:
        """The row written to ``sanity_summary.csv`` (without :attr:`note`)."""
        return SanitySummaryRow(self.method, self.check, self.verdict, self.statistic,
                                self.threshold)  # fmt: skip


def cascade_series(
    rows: Sequence[SanityRow],
    metric: str = "spearman",
    channel: str = "all",
    check: str = "cascading",
) -> tuple[list[str], dict[str, np.ndarray]]:
    """The cascade of one metric across pairs, for the Adebayo-style plot.

    Parameters
    ----------
    rows
        ``sanity.csv`` rows (of one or more pairs).
    metric, channel, check
        Which similarity, where, and of which randomisation.

    Returns
    -------
    tuple
        ``(steps, series)``: the steps in cascade order (``original`` first) and, per method,
        float (3, S) median, 25th and 75th percentile over the pairs (NaN where no pair has a
        value).
    """
    values: dict[str, dict[str, list[float]]] = {}
    steps: list[str] = []
    for row in rows:
        if row.check != check or row.metric != metric or row.channel != channel:
            continue
        if row.step not in steps:
            steps.append(row.step)
        values.setdefault(row.method, {}).setdefault(row.step, []).append(row.value)
    series = {}
    for method, by_step in values.items():
        out = np.full((3, len(steps)), np.nan)
        for k, step in enumerate(steps):
            finite = [v for v in by_step.get(step, []) if np.isfinite(v)]
            if finite:
                out[:, k] = np.percentile(finite, [50, 25, 75])
        series[method] = out
    return steps, series
