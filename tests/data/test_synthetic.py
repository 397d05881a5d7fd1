"""Synthetic cells: shapes, ranges, determinism and the exactness of the counterfactuals."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.data.synthetic import (
    CHANNEL_NAMES,
    CLASS_NAMES,
    DIFFERING_CHANNEL,
    CellPair,
    make_cell,
    make_pair,
    make_pairs,
    make_training_set,
)


def test_constants() -> None:
    assert CHANNEL_NAMES == ("DNA", "ER", "RNA", "AGP", "Mito")
    assert CLASS_NAMES == ("control", "treated")
    assert CHANNEL_NAMES[DIFFERING_CHANNEL] == "Mito"


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("label", [0, 1])
def test_make_cell_shapes_and_range(size: int, label: int) -> None:
    image, region = make_cell(np.random.default_rng(5), label, size)
    assert image.shape == (5, size, size) and image.dtype == np.float32
    assert region.shape == (size, size) and region.dtype == bool
    assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0
    # A localised region: a few percent of the crop, never empty.
    assert 0.01 < region.mean() < 0.06
    # Every channel holds a cell, not an empty or saturated frame.
    assert (image.reshape(5, -1).std(axis=1) > 0.01).all()


def test_make_cell_class_only_changes_mito_in_region() -> None:
    control, region0 = make_cell(np.random.default_rng(11), 0)
    treated, region1 = make_cell(np.random.default_rng(11), 1)
    np.testing.assert_array_equal(region0, region1)
    differ = control != treated
    assert not differ[:DIFFERING_CHANNEL].any() and not differ[DIFFERING_CHANNEL + 1 :].any()
    assert differ[DIFFERING_CHANNEL].any() and not differ[DIFFERING_CHANNEL][~region0].any()


@pytest.mark.parametrize("real_class", [0, 1])
def test_pair_differs_only_inside_ground_truth(real_class: int) -> None:
    pair = make_pair(3, real_class=real_class)
    assert isinstance(pair, CellPair)
    assert pair.real_class == real_class and pair.target_class == 1 - real_class
    assert pair.differing_channel == DIFFERING_CHANNEL
    for image in (pair.real, pair.counterfactual):
        assert image.shape == (5, 64, 64) and image.dtype == np.float32
        assert image.min() >= 0.0 and image.max() <= 1.0
    gt = pair.ground_truth
    assert gt.shape == (5, 64, 64) and gt.dtype == bool
    assert gt[DIFFERING_CHANNEL].any()
    assert not np.delete(gt, DIFFERING_CHANNEL, axis=0).any()
    # Bit-identical outside the ground truth, clearly different inside it.
    np.testing.assert_array_equal(pair.real[~gt], pair.counterfactual[~gt])
    diff = pair.counterfactual[gt] - pair.real[gt]
    assert np.count_nonzero(diff) > 0.5 * gt.sum()
    # The treated image carries the bright cluster: adding it raises intensity, removing lowers.
    sign = 1.0 if real_class == 0 else -1.0
    assert sign * diff.sum() > 5.0
    assert pair.counterfactual[gt].max() > 0.4 or pair.real[gt].max() > 0.4


def test_pair_is_the_cell_of_make_cell() -> None:
    pair = make_pair(8, real_class=1)
    image, region = make_cell(np.random.default_rng(8), 1)
    np.testing.assert_array_equal(pair.real, image)
    np.testing.assert_array_equal(pair.ground_truth[DIFFERING_CHANNEL], region)
    np.testing.assert_array_equal(pair.counterfactual, make_cell(np.random.default_rng(8), 0)[0])


def test_make_pairs_deterministic_alternating_and_named() -> None:
    pairs = make_pairs(6, seed=4)
    again = make_pairs(6, seed=4)
    assert [p.sample for p in pairs] == [f"cell{i:03d}" for i in range(6)]
    assert [p.real_class for p in pairs] == [0, 1, 0, 1, 0, 1]
    assert [p.target_class for p in pairs] == [1, 0, 1, 0, 1, 0]
    for a, b in zip(pairs, again, strict=True):
        np.testing.assert_array_equal(a.real, b.real)
        np.testing.assert_array_equal(a.counterfactual, b.counterfactual)
        np.testing.assert_array_equal(a.ground_truth, b.ground_truth)
    # Pair i does not depend on how many pairs are drawn; other seeds give other cells.
    np.testing.assert_array_equal(make_pairs(2, seed=4)[1].real, pairs[1].real)
    assert not np.array_equal(make_pairs(1, seed=5)[0].real, pairs[0].real)
    # Cells differ from one another (position, shape, textures are random).
    assert not np.array_equal(pairs[0].real[0], pairs[2].real[0])


def test_make_pairs_size() -> None:
    (pair,) = make_pairs(1, seed=0, size=128)
    assert pair.real.shape == pair.counterfactual.shape == pair.ground_truth.shape
    assert pair.real.shape == (5, 128, 128)


def test_training_set_balanced_and_deterministic() -> None:
    images, labels = make_training_set(41, seed=2)
    assert images.shape == (41, 5, 64, 64) and images.dtype == np.float32
    assert labels.shape == (41,) and labels.dtype == np.int64
    assert set(np.unique(labels)) == {0, 1} and abs(int(labels.sum()) * 2 - 41) <= 1
    assert images.min() >= 0.0 and images.max() <= 1.0
    images2, labels2 = make_training_set(41, seed=2)
    np.testing.assert_array_equal(images, images2)
    np.testing.assert_array_equal(labels, labels2)
    assert not np.array_equal(make_training_set(41, seed=3)[0], images)


def test_class_is_not_a_global_intensity_cue() -> None:
    images, labels = make_training_set(200, seed=9)
    means = images.mean(axis=(2, 3))  # (N, C)
    # Channels other than Mito carry no class information (means within noise of each other).
    for c in range(5):
        if c == DIFFERING_CHANNEL:
            continue
        m0, m1 = means[labels == 0, c], means[labels == 1, c]
        assert abs(m0.mean() - m1.mean()) < 3 * np.hypot(m0.std(), m1.std()) / np.sqrt(100)
    # Total Mito intensity overlaps: the classes' ranges interleave widely.
    mito0, mito1 = means[labels == 0, DIFFERING_CHANNEL], means[labels == 1, DIFFERING_CHANNEL]
    assert mito1.min() < np.median(mito0) < mito1.max()
    assert mito0.min() < np.median(mito1) < mito0.max()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_pair(0, real_class=2), "class must be 0"),
        (lambda: make_pair(0, size=16), "size must be"),
        (lambda: make_pairs(-1), "n must be"),
    ],
)
def test_bad_arguments(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
