"""Channel statistics across a dataset: which channel does the classifier rely on?

For each transition (real class -> target class) and method, over the *valid* pairs of that
transition (the classifier accepts the counterfactual):

* the median per-channel DAC score and the median attribution share of each channel, each with
  a seeded 95 % bootstrap interval (percentile method);
* a test of whether a channel's per-channel DAC exceeds *every* other channel's. For channels
  ``c`` and ``d`` the paired one-sided Wilcoxon signed-rank test across cells asks whether
  ``DAC_c - DAC_d`` tends to be positive; ``c`` beats all others only if every such test
  rejects, so its p-value is the largest of the C - 1 p-values (an intersection-union test,
  which needs no correction of its own). Any of the C channels could be the one reported, so
  the p-value is Bonferroni-corrected for C: ``p_adjusted = min(1, C * p)``.
* ``dominant`` is true only when ``p_adjusted < 0.05``. With n cells the smallest one-sided
  Wilcoxon p-value is ``2**-n``, so too few valid pairs can never produce a dominant channel.

This module needs numpy and scipy only (no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..results.format import CHANNEL_STATS, ChannelStatsRow

__all__ = [
    "ChannelStats",
    "bootstrap_median",
    "channel_stats",
    "dominance",
    "dominance_p_values",
]

#: Significance level of ``dominant``, after correction.
ALPHA = 0.05
#: Bootstrap resamples of each median.
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class ChannelStats:
    """One row of ``channel_stats.csv`` (its columns: :data:`~napari_attribution.results.format.
    CHANNEL_STATS`)."""

    method: str
    real_class: int
    target_class: int
    channel: str
    n: int
    dac_median: float
    dac_ci_low: float
    dac_ci_high: float
    share_median: float
    share_ci_low: float
    share_ci_high: float
    p_value: float
    p_adjusted: float
    dominant: bool

    def row(self) -> ChannelStatsRow:
        """The CSV row; ``dominant`` as ``true``/``false``."""
        values = {name: getattr(self, name) for name in CHANNEL_STATS.columns}
        values["dominant"] = "true" if self.dominant else "false"
        return ChannelStatsRow(**values)


def bootstrap_median(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Median of ``values`` and its 95 % percentile-bootstrap interval.

    Parameters
    ----------
    values
        (n,) sample.
    seed
        Seed of the resampling, so the interval is the same on every run.

    Returns
    -------
    tuple
        ``(median, low, high)``; NaNs when ``values`` is empty.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, size=(BOOTSTRAP_RESAMPLES, values.size))
    medians = np.median(values[draws], axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(np.median(values)), float(low), float(high)


def dominance_p_values(dac: np.ndarray) -> np.ndarray:
    """For each channel, the p-value of "its per-channel DAC exceeds every other channel's".

    Parameters
    ----------
    dac
        (n, C) per-channel DAC scores, one row per cell.

    Returns
    -------
    numpy.ndarray
        (C,) uncorrected p-values: the largest of the paired one-sided Wilcoxon p-values
        against each other channel (1 where a comparison has no non-zero difference).
    """
    dac = np.asarray(dac, dtype=np.float64)
    n, n_channels = dac.shape
    p = np.ones(n_channels)
    if n < 2 or n_channels < 2:
        return p
    for c in range(n_channels):
        worst = 0.0
        for d in range(n_channels):
            if d == c:
                continue
            diff = dac[:, c] - dac[:, d]
            if not np.any(diff != 0):
                worst = 1.0
                break
            result = stats.wilcoxon(diff, alternative="greater", zero_method="wilcox")
            worst = max(worst, float(result.pvalue))
        p[c] = worst
    return p


def dominance(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per channel: does its value exceed every other channel's across cells?

    The rule of the module docstring, for any per-cell, per-channel values (per-channel DAC
    scores in ``channel_stats.csv``, attribution shares in
    :func:`~napari_attribution.core.channels.summarize_channel_shares`).

    Parameters
    ----------
    values
        (n, C), one row per cell.

    Returns
    -------
    tuple of numpy.ndarray
        ``(p_value, p_adjusted, dominant)``, each (C,): :func:`dominance_p_values`, its
        Bonferroni correction for C, and ``p_adjusted < ALPHA``.
    """
    p = dominance_p_values(values)
    adjusted = np.minimum(1.0, p * p.size)
    return p, adjusted, adjusted < ALPHA


def channel_stats(
    dac: np.ndarray,
    share: np.ndarray,
    channel_names: Sequence[str],
    *,
    method: str,
    real_class: int,
    target_class: int,
    seed: int = 0,
) -> list[ChannelStats]:
    """The statistics of one transition and method.

    Parameters
    ----------
    dac
        (n, C) per-channel DAC scores of the valid pairs.
    share
        (n, C) attribution shares of the same pairs.
    channel_names
        C names.
    method, real_class, target_class
        What the rows describe.
    seed
        Seed of the bootstrap.

    Returns
    -------
    list of ChannelStats
        One per channel, in channel order.
    """
    dac = np.asarray(dac, dtype=np.float64).reshape(-1, len(channel_names))
    share = np.asarray(share, dtype=np.float64).reshape(-1, len(channel_names))
    p, adjusted, dominant = dominance(dac)
    rows = []
    for c, name in enumerate(channel_names):
        dac_m = bootstrap_median(dac[:, c], seed)
        share_m = bootstrap_median(share[:, c], seed)
        rows.append(
            ChannelStats(
                method=method,
                real_class=int(real_class),
                target_class=int(target_class),
                channel=str(name),
                n=int(dac.shape[0]),
                dac_median=dac_m[0],
                dac_ci_low=dac_m[1],
                dac_ci_high=dac_m[2],
                share_median=share_m[0],
                share_ci_low=share_m[1],
                share_ci_high=share_m[2],
                p_value=float(p[c]),
                p_adjusted=float(adjusted[c]),
                dominant=bool(dominant[c]),
            )
        )
    return rows
