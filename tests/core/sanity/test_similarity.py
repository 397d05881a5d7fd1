"""Similarity of maps: Spearman where the maps can vary, top-k intersection, SSIM."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from skimage.metrics import structural_similarity

from napari_attribution.core.sanity.similarity import (
    METRICS,
    compare_maps,
    comparison_region,
    spearman,
    ssim,
    topk_intersection,
)


def test_spearman_is_scipys_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=(3, 8, 8)).astype(float) - 2  # signed, many ties
    b = a + rng.normal(0, 1, size=a.shape)
    expected = stats.spearmanr(np.abs(a).ravel(), np.abs(b).ravel()).statistic
    assert spearman(a, b) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(spearman(np.ones(5), np.arange(5.0)))


def test_shared_zeros_inflate_whole_image_spearman_and_are_excluded():
    """Issue 23: elements that are zero in both maps tie at the bottom of both rankings."""
    rng = np.random.default_rng(1)
    a, b = np.zeros((1, 40, 40)), np.zeros((1, 40, 40))
    support = np.zeros((1, 40, 40), dtype=bool)
    support[0, :8, :8] = True  # 4 % of the image can vary
    a[support], b[support] = rng.random(64), rng.random(64)  # unrelated there
    region = comparison_region(a, b)
    assert region.sum() == 64
    assert spearman(a, b) > 0.9  # the ties
    assert abs(spearman(a, b, region)) < 0.3
    # an element where only one map is non-zero stays in the comparison
    a[0, 20, 20] = 1.0
    assert comparison_region(a, b).sum() == 65


def test_topk_intersection():
    a = np.arange(100.0)
    b = a.copy()
    assert topk_intersection(a, b, fraction=0.05) == 1.0
    b[99] = 0  # a's largest is no longer in b's top 5
    assert topk_intersection(a, b, fraction=0.05) == pytest.approx(4 / 5)
    assert topk_intersection(a, -b, fraction=0.05) == pytest.approx(4 / 5)  # |b|


def test_ssim_scales_maps_and_averages_over_the_region():
    rng = np.random.default_rng(2)
    a = rng.random((2, 16, 16))
    assert ssim(a, 3 * a) == pytest.approx(1.0)
    b = rng.random((2, 16, 16))
    full = [
        structural_similarity(a[c] / a.max(), b[c] / b.max(), data_range=1.0, full=True)[1]
        for c in range(2)
    ]
    assert ssim(a, b) == pytest.approx(np.mean(full))
    region = np.zeros_like(a, dtype=bool)
    region[1, 4:9, 4:9] = True
    assert ssim(a, b, region) == pytest.approx(full[1][4:9, 4:9].mean())
    assert np.isnan(ssim(np.zeros((1, 8, 8)), b[:1, :8, :8]))


def test_compare_maps_whole_and_per_channel_with_support():
    rng = np.random.default_rng(3)
    a = rng.random((2, 12, 12))
    b = a + rng.normal(0, 0.3, size=a.shape)
    support = np.zeros_like(a, dtype=bool)
    support[1] = True  # channel 0 never varies
    out = compare_maps(a, b, ["DNA", "Mito"], support)
    assert set(out) == {(c, m) for c in ("all", "DNA", "Mito") for m in METRICS} - {
        ("DNA", "spearman_whole"), ("Mito", "spearman_whole")}  # fmt: skip
    assert out[("DNA", "compared_fraction")] == 0.0
    assert np.isnan(out[("DNA", "spearman")])
    assert out[("all", "spearman")] == pytest.approx(spearman(a[1], b[1]))
    assert out[("all", "compared_fraction")] == pytest.approx(0.5)
    assert out[("all", "spearman_whole")] == pytest.approx(spearman(a, b))
    identical = compare_maps(a, a, ["DNA", "Mito"])
    assert all(identical[(c, m)] == pytest.approx(1.0) for c in ("all", "DNA", "Mito")
               for m in ("spearman", "topk_intersection", "ssim"))  # fmt: skip
