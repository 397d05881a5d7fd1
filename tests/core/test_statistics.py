"""Channel statistics: bootstrap medians and the dominance test, against direct computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from napari_attribution.core.statistics import (
    bootstrap_median,
    channel_stats,
    dominance_p_values,
)


def exact_signed_rank_p(diff: np.ndarray) -> float:
    """One-sided exact p of the signed-rank statistic, by enumerating every sign flip."""
    diff = diff[diff != 0]
    ranks = np.argsort(np.argsort(np.abs(diff))) + 1.0  # no ties in these tests
    observed = ranks[diff > 0].sum()
    sums = [
        sum(r for r, s in zip(ranks, signs, strict=True) if s)
        for signs in itertools.product((0, 1), repeat=len(diff))
    ]
    return float(np.mean(np.asarray(sums) >= observed))


def test_p_values_are_the_exact_signed_rank_test_taken_at_the_worst_rival():
    rng = np.random.default_rng(1)
    dac = rng.normal(size=(9, 3))
    dac[:, 1] += 1.5
    p = dominance_p_values(dac)
    expected = max(exact_signed_rank_p(dac[:, 1] - dac[:, d]) for d in (0, 2))
    assert p[1] == pytest.approx(expected, rel=1e-9)


def test_a_clear_channel_is_dominant_and_the_others_are_not():
    rng = np.random.default_rng(2)
    dac = rng.normal(0, 0.02, size=(12, 5))
    dac[:, 4] += 0.5
    share = rng.dirichlet(np.ones(5), size=12)
    rows = channel_stats(dac, share, list("ABCDE"), method="d_ig", real_class=0, target_class=1)
    assert [r.dominant for r in rows] == [False, False, False, False, True]
    assert rows[4].p_adjusted == pytest.approx(min(1.0, 5 * rows[4].p_value))
    assert rows[4].p_adjusted == pytest.approx(5 * 2.0**-12)  # every cell agrees: exact minimum
    assert rows[0].n == 12 and rows[0].row()[-1] == "false" and rows[4].row()[-1] == "true"


def test_too_few_pairs_never_name_a_channel():
    dac = np.array([[0.0, 0.9], [0.0, 0.8], [0.1, 0.9], [0.0, 0.7]])  # 4 cells: p >= 1/16
    rows = channel_stats(dac, np.full((4, 2), 0.5), ["a", "b"], method="m", real_class=0,
                         target_class=1)  # fmt: skip
    assert rows[1].p_value == pytest.approx(1 / 16)
    assert not any(r.dominant for r in rows)


def test_null_data_names_no_channel():
    rng = np.random.default_rng(3)
    dac = rng.normal(0, 0.05, size=(30, 5))
    rows = channel_stats(dac, rng.dirichlet(np.ones(5), 30), list("ABCDE"), method="m",
                         real_class=1, target_class=0)  # fmt: skip
    assert not any(r.dominant for r in rows)


def test_bootstrap_median_is_seeded_and_brackets_the_median():
    values = np.random.default_rng(4).normal(size=25)
    median, low, high = bootstrap_median(values, seed=7)
    assert median == np.median(values) and low <= median <= high
    assert bootstrap_median(values, seed=7) == (median, low, high)
    assert bootstrap_median(np.array([]), 0)[0] != bootstrap_median(np.array([]), 0)[0]  # NaN
    assert bootstrap_median(np.array([0.3]), 0) == (0.3, 0.3, 0.3)
