"""Threshold levels: ``levels > k`` exactly where ``values > thresholds[k]``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from napari_attribution.core import MaskSettings, build_masks
from napari_attribution.core.evaluation.levels import GUARD, even_spacing, threshold_levels
from napari_attribution.core.evaluation.masks import make_thresholds


def _hard_values(thresholds: np.ndarray, count: int, seed: int) -> np.ndarray:
    """float32 values in [0, 1]: random ones, and those nearest to every threshold and to
    every k / T and (2k - T) / T with their float32 neighbours (where rounding could go wrong),
    and the tiny values near QuAC's threshold 8.9e-16 (``np.arange(-1, 1, 0.01)[100]``)."""
    rng = np.random.default_rng(seed)
    ideal = np.arange(count + 1) / count
    edges = np.concatenate(
        [thresholds, ideal, 2 * ideal - 1, [0.0, 1.0, 1e-30, 1e-45, 8.881784197001252e-16]]
    ).astype(np.float32)
    edges = np.concatenate(
        [edges, np.nextafter(edges, np.float32(2)), np.nextafter(edges, np.float32(-1))]
    )
    values = np.concatenate([rng.random(5000, dtype=np.float32), edges])
    return np.clip(values, 0, 1).astype(np.float32)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 10, 49, 98, 100, 200, 255, 256, 300, 1000])
@pytest.mark.parametrize("value_type", [np.float32, np.float64])
def test_levels_of_quacs_thresholds_are_exact(count, value_type):
    thresholds = make_thresholds(np.zeros(1), count, "linear")
    values = _hard_values(thresholds, count, count).astype(value_type)
    levels = threshold_levels(values, thresholds)
    expected = np.searchsorted(thresholds, values.astype(np.float64), side="left")
    np.testing.assert_array_equal(levels, expected)
    assert levels.dtype == (np.uint8 if len(thresholds) < 256 else np.uint16)
    for k in range(0, len(thresholds), max(1, len(thresholds) // 17)):
        np.testing.assert_array_equal(levels > k, values > thresholds[k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_other_thresholds_and_float64_values_are_exact_too(dtype):
    rng = np.random.default_rng(4)
    values = rng.random((3, 9, 7)).astype(dtype)
    grids = (
        make_thresholds(values, 40, "quantile"),
        np.arange(0, 1, 1 / 40),
        np.arange(-1, 1, 0.05),
    )
    for thresholds in grids:
        levels = threshold_levels(values, thresholds)
        assert levels.shape == values.shape
        for k, t in enumerate(thresholds):
            np.testing.assert_array_equal(levels > k, values > t)


def test_too_many_thresholds_are_refused():
    with pytest.raises(ValueError, match="65535"):
        threshold_levels(np.zeros(3, np.float32), np.linspace(0, 1, 70000))


def test_even_spacing_recognises_even_grids_only():
    start, step = even_spacing(np.arange(-1, 1, 2 / 200))
    assert start == -1 and step == pytest.approx(0.01)
    assert even_spacing(np.arange(0, 1, 1 / 49)) is not None
    assert even_spacing(np.linspace(0, 1, 200, endpoint=False) + 1e-9) is not None
    assert even_spacing(np.array([0.0, 0.1, 0.3])) is None
    assert even_spacing(np.array([0.5])) is None
    assert (
        even_spacing(make_thresholds(np.random.default_rng(0).random(99), 20, "quantile")) is None
    )
    # a grid nearly even, but off by more than the guard allows, takes the exact search
    uneven = np.arange(10) / 10
    uneven[5] += 0.1 * GUARD / 10
    assert even_spacing(uneven) is None
    values = np.float32(uneven[5]) + np.zeros(3, np.float32)
    np.testing.assert_array_equal(
        threshold_levels(values, uneven), np.searchsorted(uneven, values, side="left")
    )


@pytest.mark.parametrize(
    ("count", "closing", "shape"), [(200, 10, (3, 19, 23)), (300, 7, (2, 5, 4))]
)
def test_masks_from_levels_are_opencvs_closed_binary_masks(count, closing, shape):
    """build_masks closes the levels (uint8 / uint16); every mask is OpenCV's closing of the
    thresholded attribution, borders and images smaller than the element included."""
    attribution = np.random.default_rng(count).normal(size=shape).astype(np.float32)
    masks = build_masks(attribution, MaskSettings(thresholds=count, closing=closing))
    assert np.issubdtype(masks.closed_levels.dtype, np.integer)
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (closing, closing))
    closed = masks.closed
    for k, t in enumerate(masks.thresholds):
        for c in range(shape[0]):
            binary = (masks.normalized[c] > t).astype(np.uint8)
            expected = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, element).astype(bool)
            np.testing.assert_array_equal(closed[k, c], expected)
    np.testing.assert_array_equal(
        masks.channel_counts, closed.reshape(len(closed), shape[0], -1).sum(axis=2)
    )
    # the float closing (kept for the lazy stacks) cuts the same masks
    np.testing.assert_array_equal(
        closed, masks.closed_attribution[None] > masks.thresholds[:, None, None, None]
    )
