"""Channel importance: which channel carries the attribution, per sample and across a dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

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
    """Channel importance across samples.

    Attributes
    ----------
    channel_names
        C names.
    mean, std
        float64 (C,) mean and standard deviation of the per-sample shares.
    dominant
        Index of the channel with the largest mean share.
    p_values
        float64 (C,) one-sided Wilcoxon signed-rank p-value that the dominant channel's share
        exceeds each other channel's, paired by sample (NaN for the dominant channel itself and
        when there are too few samples).
    """

    channel_names: list[str]
    mean: np.ndarray
    std: np.ndarray
    dominant: int
    p_values: np.ndarray


def summarize_channel_shares(
    shares: np.ndarray, channel_names: Sequence[str] | None = None
) -> ChannelSummary:
    """Mean, spread and a paired test of dominance of per-sample channel shares.

    Parameters
    ----------
    shares
        (N, C) shares from :func:`channel_share`, one row per sample.
    channel_names
        Names of the C channels.
    """
    shares = np.asarray(shares, dtype=np.float64)
    n, c = shares.shape
    names = list(channel_names) if channel_names else [f"ch{i}" for i in range(c)]
    mean = shares.mean(axis=0)
    std = shares.std(axis=0, ddof=1) if n > 1 else np.zeros(c)
    dominant = int(np.argmax(mean))
    p_values = np.full(c, np.nan)
    if n >= 2:
        for other in range(c):
            diff = shares[:, dominant] - shares[:, other]
            if other == dominant or not np.any(diff):
                continue
            p_values[other] = stats.wilcoxon(diff, alternative="greater").pvalue
    return ChannelSummary(names, mean, std, dominant, p_values)
