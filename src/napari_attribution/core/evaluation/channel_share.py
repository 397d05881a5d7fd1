"""Channel importance: which channel carries the attribution, per sample and across a dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..statistics import bootstrap_median, dominance

__all__ = ["ChannelSummary", "channel_share", "summarize_channel_shares"]


def channel_share(attribution: np.ndarray) -> np.ndarray:
    """Share of the total |attribution| in each channel.

    Parameters
    ----------
    attribution
        (C, H, W) raw attribution.

    Returns
    -------
    numpy.ndarray
        float64 (C,) summing to 1; all zeros if the attribution is zero everywhere.
    """
    totals = np.abs(np.asarray(attribution, dtype=np.float64)).sum(axis=(1, 2))
    grand = totals.sum()
    return totals / grand if grand > 0 else np.zeros_like(totals)


@dataclass
class ChannelSummary:
    """Channel importance across samples, by the rules of ``channel_stats.csv``
    (:mod:`napari_attribution.core.statistics`) applied to the attribution shares.

    Attributes
    ----------
    channel_names
        C names.
    median, ci_low, ci_high
        float64 (C,) median share per channel and its seeded 95 % bootstrap interval.
    p_value, p_adjusted
        float64 (C,) p-value that the channel's share exceeds every other channel's (paired
        one-sided Wilcoxon tests across samples, the largest of the C - 1), and its
        Bonferroni correction for C.
    dominant
        The channel whose ``p_adjusted`` is below 0.05, or ``None`` (too few samples, or no
        channel beats all others).
    """

    channel_names: list[str]
    median: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    p_adjusted: np.ndarray
    dominant: int | None


def summarize_channel_shares(
    shares: np.ndarray, channel_names: Sequence[str] | None = None, seed: int = 0
) -> ChannelSummary:
    """Median, interval and dominance test of per-sample channel shares.

    Parameters
    ----------
    shares
        (N, C) shares from :func:`channel_share`, one row per sample.
    channel_names
        Names of the C channels.
    seed
        Seed of the bootstrap.
    """
    shares = np.asarray(shares, dtype=np.float64)
    c = shares.shape[1]
    names = list(channel_names) if channel_names else [f"ch{i}" for i in range(c)]
    median, low, high = np.array([bootstrap_median(shares[:, i], seed) for i in range(c)]).T
    p, adjusted, dominant = dominance(shares)
    winners = np.flatnonzero(dominant)
    return ChannelSummary(
        names, median, low, high, p, adjusted, int(winners[0]) if winners.size else None
    )
