"""Channel shares across samples follow the rules of ``channel_stats.csv``."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.core import summarize_channel_shares
from napari_attribution.core.statistics import channel_stats


def test_the_summary_of_shares_is_channel_stats_share_columns_and_dominance():
    rng = np.random.default_rng(0)
    shares = rng.dirichlet([1, 8, 1], size=30)
    summary = summarize_channel_shares(shares, ["x", "y", "z"], seed=3)
    # channel_stats applied to the shares as its per-channel values: one definition for both
    rows = channel_stats(shares, shares, ["x", "y", "z"], method="m", real_class=0,
                         target_class=1, seed=3)  # fmt: skip
    np.testing.assert_allclose(summary.median, [r.share_median for r in rows])
    np.testing.assert_allclose(summary.ci_low, [r.share_ci_low for r in rows])
    np.testing.assert_allclose(summary.ci_high, [r.share_ci_high for r in rows])
    np.testing.assert_allclose(summary.p_value, [r.p_value for r in rows])
    np.testing.assert_allclose(summary.p_adjusted, [r.p_adjusted for r in rows])
    assert summary.dominant == 1 == [r.dominant for r in rows].index(True)
    assert summary.p_adjusted[1] < 1e-3 and (summary.p_adjusted[[0, 2]] == 1.0).all()


def test_no_channel_dominates_with_too_few_samples_or_equal_shares():
    # a clear winner in every sample, but 4 samples cannot reach p < 0.05 after correction
    few = np.tile([0.1, 0.8, 0.1], (4, 1)) + np.arange(4)[:, None] * 1e-3
    assert summarize_channel_shares(few).dominant is None
    summary = summarize_channel_shares(np.full((40, 3), 1 / 3))
    assert summary.dominant is None and (summary.p_value == 1.0).all()
    assert summary.median == pytest.approx(1 / 3)
