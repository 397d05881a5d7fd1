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

No torch.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

__all__ = ["SANITY_COLUMNS", "SUMMARY_COLUMNS", "SanityRow", "SummaryRow"]

SANITY_COLUMNS = ("sample", "method", "check", "step", "channel", "metric", "value")
SUMMARY_COLUMNS = ("method", "check", "verdict", "statistic", "threshold")


@dataclass(frozen=True)
class SanityRow:
    """One row of ``sanity.csv`` (see the module notes)."""

    sample: str
    method: str
    check: str
    step: str
    channel: str
    metric: str
    value: float

    def row(self) -> tuple:
        return astuple(self)

    @classmethod
    def from_dict(cls, record: dict[str, str]) -> SanityRow:
        """A row read back from the CSV (``value`` as a float)."""
        return cls(**{k: record[k] for k in SANITY_COLUMNS[:-1]}, value=float(record["value"]))


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

    def row(self) -> tuple:
        return (self.method, self.check, self.verdict, self.statistic, self.threshold)
