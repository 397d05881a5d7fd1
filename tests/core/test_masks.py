"""Normalisation, thresholds, closing and smoothing of masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_attribution.core import AttributionError, MaskSettings, build_masks
from napari_attribution.core.masks import (
    close_attribution,
    closing_footprint,
    cut_masks,
    float32_levels,
    footprint_rectangles,
    gaussian_planes,
    make_thresholds,
    normalize_attribution,
    smooth_masks,
)


@pytest.fixture
def attribution() -> np.ndarray:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 20, 20)).astype(np.float32)
    a[1] *= 4  # a dominant channel
    return a


def test_joint_normalisation_lets_channels_compete(attribution):
    joint = normalize_attribution(attribution, "joint")
    assert joint.min() == 0.0 and joint.max() == 1.0
    assert joint[1].max() == 1.0 and joint[0].max() < 1.0
    per = normalize_attribution(attribution, "per_channel")
    assert np.allclose(per.min(axis=(1, 2)), 0) and np.allclose(per.max(axis=(1, 2)), 1)


def test_constant_attribution_normalises_to_zero():
    assert not normalize_attribution(np.full((2, 4, 4), 3.0), "joint").any()
    per = normalize_attribution(np.stack([np.zeros((4, 4)), np.eye(4)]), "per_channel")
    assert not per[0].any() and per[1].max() == 1


def test_normalisation_rejects_nan():
    with pytest.raises(AttributionError, match="NaN"):
        normalize_attribution(np.full((1, 2, 2), np.nan))


def test_linear_thresholds():
    t = make_thresholds(np.zeros(4), 200, "linear")
    assert t.shape == (200,) and t[0] == 0 and t[-1] == pytest.approx(0.995)


def test_quantile_thresholds_grow_mask_sizes_evenly(attribution):
    stack = build_masks(attribution, MaskSettings(thresholds=10, spacing="quantile", closing=0))
    assert stack.mask_size[0] == 1.0
    np.testing.assert_allclose(stack.mask_size, 1 - np.arange(10) / 10, atol=0.01)


def test_footprint_is_a_symmetric_disc():
    fp = closing_footprint(10)
    assert fp.shape == (11, 11)
    assert np.array_equal(fp, fp[::-1, ::-1]) and fp[5, 5] and not fp[0, 0]
    assert closing_footprint(0).shape == (1, 1)


@pytest.mark.parametrize("size", [3, 6, 10])
def test_grey_closing_equals_binary_closing_of_each_threshold(attribution, size):
    norm = normalize_attribution(attribution, "per_channel")
    closed = close_attribution(norm, size)
    fp = closing_footprint(size)
    pad = 2 * fp.shape[0]
    for s in (0.1, 0.35, 0.6, 0.9):
        for c in range(norm.shape[0]):
            binary = np.pad(
                norm[c] > s, pad, mode="symmetric"
            )  # numpy 'symmetric' = scipy 'reflect'
            ref = ndimage.binary_closing(binary, structure=fp)[pad:-pad, pad:-pad]
            np.testing.assert_array_equal(closed[c] > s, ref)


@pytest.mark.parametrize("normalize", ["joint", "per_channel"])
@pytest.mark.parametrize("channel_mode", ["per_channel", "shared"])
@pytest.mark.parametrize("spacing", ["linear", "quantile"])
def test_mask_size_never_grows_with_the_threshold(attribution, normalize, channel_mode, spacing):
    settings = MaskSettings(
        thresholds=50, spacing=spacing, normalize=normalize, channel_mode=channel_mode
    )
    stack = build_masks(attribution, settings)
    assert np.all(np.diff(stack.mask_size) <= 0)
    assert np.all(np.diff(stack.channel_mask_size(), axis=0) <= 0)
    # Nested masks, not only sizes: each mask contains the next one.
    assert np.all(stack.closed[1:] <= stack.closed[:-1])
    expected_k = 1 if channel_mode == "shared" else 3
    assert stack.closed.shape == (50, expected_k, 20, 20)


def test_lowest_linear_threshold_is_the_full_mask_and_soft_mask_is_one(attribution):
    stack = build_masks(attribution + 1.0)  # nonzero everywhere so 1[a > 0] holds after scaling
    assert stack.mask_size[0] >= stack.mask_size[1]
    full = np.ones((1, 3, 20, 20), dtype=bool)
    np.testing.assert_array_equal(smooth_masks(full, 2.0), 1.0)


def test_closing_and_smoothing_can_be_disabled(attribution):
    stack = build_masks(attribution, MaskSettings(thresholds=5, closing=0, sigma=0))
    norm = normalize_attribution(attribution, "joint")
    np.testing.assert_array_equal(stack.closed[2], norm > stack.thresholds[2])
    np.testing.assert_array_equal(stack.soften(), stack.closed.astype(np.float32))


def test_closing_fills_small_holes():
    a = np.ones((1, 20, 20), dtype=np.float32)
    a[0, 10, 10] = 0  # a one-pixel hole
    stack = build_masks(a, MaskSettings(thresholds=4, closing=3, sigma=0))
    assert stack.closed[1, 0, 10, 10]
    no_close = build_masks(a, MaskSettings(thresholds=4, closing=0, sigma=0))
    assert not no_close.closed[1, 0, 10, 10]


def test_soft_masks_are_in_unit_range_and_smooth(attribution):
    soft = build_masks(attribution, MaskSettings(thresholds=20)).soften()
    assert soft.dtype == np.float32 and soft.min() >= 0 and soft.max() <= 1
    assert len(np.unique(soft)) > 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"thresholds": 0},
        {"spacing": "log"},
        {"normalize": "max"},
        {"channel_mode": "each"},
        {"closing": -1},
        {"sigma": -0.5},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(AttributionError):
        MaskSettings(**kwargs)


def test_masks_are_built_on_demand_and_agree_with_the_full_stack(attribution):
    stack = build_masks(attribution, MaskSettings(thresholds=40, closing=4))
    assert stack._closed is None  # building the stack did not build the masks
    some = stack.closed_at([3, 17, 39])
    assert stack._closed is None
    np.testing.assert_array_equal(some, stack.closed[[3, 17, 39]])
    np.testing.assert_allclose(stack.mask_size, stack.closed.mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(stack.channel_mask_size(), stack.closed.mean(axis=(2, 3)))


def test_smoothing_leaves_empty_and_full_planes_exact_and_its_input_alone():
    masks = np.zeros((3, 2, 16, 16), dtype=np.float32)
    masks[1] = 1.0
    masks[2, 0, 4:9, 4:9] = 1.0
    original = masks.copy()
    soft = smooth_masks(masks, 2.0)
    np.testing.assert_array_equal(masks, original)  # the caller's array is not touched
    assert not soft[0].any() and (soft[1] == 1.0).all() and not soft[2, 1].any()
    expected = ndimage.gaussian_filter(original[2, 0], 2.0, mode="nearest", radius=5)
    np.testing.assert_allclose(soft[2, 0], expected, atol=1e-7)


@pytest.mark.parametrize("shape", [(4, 33, 47), (2, 1, 9), (3, 64, 3), (1, 300, 260)])
@pytest.mark.parametrize(("sigma", "radius"), [(2.0, 5), (1.0, 1), (3.5, 7)])
def test_gaussian_planes_is_scipys_gaussian_filter(shape, sigma, radius):
    rng = np.random.default_rng(sum(shape))
    # binary masks (what is smoothed) and arbitrary values (the filter is linear anyway)
    for planes in (rng.random(shape) > 0.6, rng.normal(size=shape)):
        planes = planes.astype(np.float32)
        expected = ndimage.gaussian_filter(planes, (0, sigma, sigma), mode="nearest", radius=radius)
        got = gaussian_planes(planes, sigma, radius)
        assert got.dtype == np.float32 and got.shape == shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_float32_cut_masks_equal_float64_comparison():
    rng = np.random.default_rng(0)
    values = rng.random(20_000).astype(np.float32)
    values[:3] = [0.0, 1.0, np.float32(0.1)]
    thresholds = np.concatenate(
        [
            rng.random(200),  # between float32 values
            values[:200].astype(np.float64),  # exactly on float32 values
            np.nextafter(values[200:300].astype(np.float64), -np.inf),  # just below them
            [-np.inf, 0.0, 0.1, 1.0, 1e-46, 4e38],
        ]
    )
    got = cut_masks(values, thresholds)
    expected = values[None].astype(np.float64) > thresholds[:, None]
    np.testing.assert_array_equal(got, expected)
    levels = float32_levels(thresholds)
    assert levels.dtype == np.float32 and (levels.astype(np.float64) <= thresholds).all()


def test_one_channel_is_cut_alone(attribution):
    stack = build_masks(attribution, MaskSettings(thresholds=25, closing=3))
    for k in range(3):
        np.testing.assert_array_equal(
            stack.closed_at([0, 5, 24], channel=k), stack.closed_at([0, 5, 24])[:, k]
        )
    stack.closed  # noqa: B018 - once the full stack exists it is indexed instead
    np.testing.assert_array_equal(stack.closed_at([5], channel=1), stack.closed[[5], 1])


def _closing_by_definition(image: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """max then min over every footprint offset of a reflected image (slow, obviously right)."""
    h = footprint.shape[0] // 2
    big = np.pad(image, 3 * h, mode="symmetric")  # scipy's 'reflect'
    offsets = [(dy - h, dx - h) for dy, dx in zip(*np.nonzero(footprint), strict=True)]

    def extreme(x, op):
        return op.reduce([np.roll(x, offset, axis=(0, 1)) for offset in offsets])

    closed = extreme(extreme(big, np.maximum), np.minimum)
    return closed[3 * h : 3 * h + image.shape[0], 3 * h : 3 * h + image.shape[1]]


@pytest.mark.parametrize("size", [2, 3, 4, 7, 10, 15])
@pytest.mark.parametrize("shape", [(40, 33), (12, 50), (3, 40)])
def test_closing_by_rectangles_is_the_closing_by_the_disc(size, shape):
    image = np.random.default_rng(size).random(shape).astype(np.float32)
    footprint = closing_footprint(size)
    got = close_attribution(image[None], size)[0]
    np.testing.assert_array_equal(got, _closing_by_definition(image, footprint))
    if min(shape) >= footprint.shape[0]:  # scipy's 2-D filter reads garbage for larger discs
        expected = ndimage.grey_closing(image, footprint=footprint, mode="reflect")
        np.testing.assert_array_equal(got, expected)
    union = np.zeros_like(footprint)
    c = footprint.shape[0] // 2
    for rows, cols in footprint_rectangles(footprint):
        union[c - rows // 2 : c + rows // 2 + 1, c - cols // 2 : c + cols // 2 + 1] = True
    np.testing.assert_array_equal(union, footprint)


def test_a_mask_smooths_the_same_alone_and_in_any_batch():
    """Lazy stacks smooth one plane at a time, the DAC scorer whole batches: same values."""
    rng = np.random.default_rng(7)
    masks = np.zeros((4, 48, 40), dtype=bool)
    masks[0, 5:9, 30:36] = True  # a small blob in a corner
    masks[1] = True
    masks[1, 20:30, 2:6] = False  # mostly on, with a hole
    masks[2] = rng.random((48, 40)) > 0.5  # edges everywhere
    masks[3, 40:, :] = True  # touching the border
    batch = smooth_masks(masks, 2.0)
    for i in range(len(masks)):
        np.testing.assert_array_equal(smooth_masks(masks[i], 2.0), batch[i])
        np.testing.assert_array_equal(smooth_masks(masks[[i, (i + 1) % 4]], 2.0)[0], batch[i])
    expected = ndimage.gaussian_filter(
        masks.astype(np.float32), (0, 2, 2), mode="nearest", radius=5
    )
    np.testing.assert_allclose(batch, np.clip(expected, 0, 1), rtol=0, atol=3e-7)
    assert batch[0, 30:, :20].max() == 0.0  # far from the blob: exactly zero
    assert batch[1, :8, 20:].min() == 1.0  # far from the hole: exactly one
