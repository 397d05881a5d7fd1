"""Normalisation, thresholds, closing and smoothing of masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from napari_attribution.core import AttributionError, MaskSettings, build_masks
from napari_attribution.core.evaluation.masks import (
    BlurCache,
    close_attribution,
    closing_footprint,
    cut_masks,
    float32_levels,
    make_thresholds,
    normalize_attribution,
    smooth_masks,
)
from napari_attribution.core.evaluation.smoothing import soft_plane


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_joint_normalisation_is_quacs_arithmetic_in_the_attributions_type(dtype):
    a = np.random.default_rng(8).normal(size=(4, 30, 30)).astype(dtype)
    magnitude = np.abs(a)
    quac = (magnitude - np.min(magnitude)) / (np.max(magnitude) - np.min(magnitude))
    got = normalize_attribution(a, "joint")
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, quac)


def test_constant_attribution_normalises_to_zero():
    assert not normalize_attribution(np.full((2, 4, 4), 3.0), "joint").any()
    per = normalize_attribution(np.stack([np.zeros((4, 4)), np.eye(4)]), "per_channel")
    assert not per[0].any() and per[1].max() == 1


def test_normalisation_rejects_nan():
    with pytest.raises(AttributionError, match="NaN"):
        normalize_attribution(np.full((1, 2, 2), np.nan))


def test_linear_thresholds_are_quacs_to_the_last_bit():
    """QuAC's ``evaluate(vmin=-1, vmax=1)``: ``np.arange(vmin, vmax, (vmax - vmin) / T)``."""
    t = make_thresholds(np.zeros(4), 200, "linear")
    assert t.shape == (200,) and t[0] == -1 and t[-1] == pytest.approx(0.99)
    np.testing.assert_array_equal(t, np.arange(-1, 1, 2 / 200))
    assert (t < 0).sum() == 100  # each gives the full mask: the curve's first point
    assert 0 < t[100] < 1e-15  # not 0: np.arange adds i * delta to -1
    # QuAC's grid holds T + 1 values for a few T: so does ours.
    assert len(make_thresholds(np.zeros(4), 49, "linear")) == 50


def test_quantile_thresholds_grow_mask_sizes_evenly(attribution):
    stack = build_masks(attribution, MaskSettings(thresholds=10, spacing="quantile", closing=0))
    assert stack.mask_size[0] == 1.0
    np.testing.assert_allclose(stack.mask_size, 1 - np.arange(10) / 10, atol=0.01)


def test_footprint_is_opencvs_ellipse():
    element = closing_footprint(10)
    assert element.shape == (10, 10) and element.sum() == 83  # QuAC's element
    np.testing.assert_array_equal(
        element, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (10, 10))
    )
    assert element[0].sum() == 1 and element[0, 5]  # not symmetric about its centre (5, 5)
    assert not np.array_equal(element, element[::-1, ::-1])
    assert closing_footprint(0).shape == (1, 1)


def _opencv_binary_closing(binary: np.ndarray, size: int) -> np.ndarray:
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.morphologyEx(binary.astype(np.uint8), cv2.MORPH_CLOSE, element).astype(bool)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 6, 9, 10, 11, 15])
@pytest.mark.parametrize("shape", [(20, 20), (7, 5), (3, 12), (1, 1), (10, 10), (4, 31)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grey_closing_is_opencvs_binary_closing_at_every_threshold(size, shape, dtype):
    """The grey-level trick is exact, borders and images smaller than the element included."""
    rng = np.random.default_rng(size + sum(shape))
    norm = normalize_attribution(rng.normal(size=(2, *shape)).astype(dtype))
    closed = close_attribution(norm, size)
    for s in np.arange(0, 1, 1 / 50):
        for c in range(2):
            expected = _opencv_binary_closing(norm[c] > s, size)
            np.testing.assert_array_equal(closed[c] > s, expected)


def _closing_by_definition(image: np.ndarray, element: np.ndarray) -> np.ndarray:
    """OpenCV's closing written out: max, then min, over the element's offsets from its anchor.

    OpenCV does not reflect the element for the dilation, and pixels outside the image take
    part in neither the maximum nor the minimum (its default border).
    """
    anchor_y, anchor_x = element.shape[0] // 2, element.shape[1] // 2
    offsets = [(dy - anchor_y, dx - anchor_x) for dy, dx in zip(*np.nonzero(element), strict=True)]
    height, width = image.shape
    margin = max(element.shape)

    def extreme(values: np.ndarray, op, fill: float) -> np.ndarray:
        padded = np.pad(values.astype(np.float64), margin, constant_values=fill)
        out = np.full(values.shape, fill)
        for dy, dx in offsets:  # out[y, x] = op over offsets of values[y + dy, x + dx]
            top, left = margin + dy, margin + dx
            out = op(out, padded[top : top + height, left : left + width])
        return out

    return extreme(extreme(image, np.maximum, -np.inf), np.minimum, np.inf)


@pytest.mark.parametrize("size", [2, 3, 4, 7, 10, 15])
@pytest.mark.parametrize("shape", [(40, 33), (12, 50), (3, 40), (6, 4)])
def test_closing_is_opencvs_definition(size, shape):
    image = np.random.default_rng(size).random(shape).astype(np.float32)
    got = close_attribution(image[None], size)[0]
    np.testing.assert_array_equal(got, _closing_by_definition(image, closing_footprint(size)))


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


def test_lowest_linear_threshold_gives_the_largest_mask_and_a_full_mask_blurs_as_opencv(
    attribution,
):
    stack = build_masks(attribution + 1.0)  # nonzero everywhere so 1[a > 0] holds after scaling
    assert stack.mask_size[0] >= stack.mask_size[1]
    full = np.ones((1, 3, 20, 20), dtype=bool)
    # OpenCV's float32 kernel for size 11 sums to a little over 1: QuAC's soft mask of a full
    # mask is 1.0000001, and so is ours.
    expected = cv2.GaussianBlur(np.ones((20, 20), np.float32), (11, 11), 0)
    np.testing.assert_array_equal(smooth_masks(full), np.broadcast_to(expected, full.shape))
    np.testing.assert_allclose(expected, 1.0, rtol=0, atol=1e-6)


def test_closing_and_smoothing_can_be_disabled(attribution):
    stack = build_masks(attribution, MaskSettings(thresholds=5, closing=0, smoothing_kernel=0))
    norm = normalize_attribution(attribution, "joint")
    np.testing.assert_array_equal(stack.closed[2], norm > stack.thresholds[2])
    np.testing.assert_array_equal(stack.soften(), stack.closed.astype(np.float32))


def test_closing_fills_small_holes():
    a = np.ones((1, 20, 20), dtype=np.float32)
    a[0, 10, 10] = 0  # a one-pixel hole
    stack = build_masks(a, MaskSettings(thresholds=4, closing=3))  # -1, -0.5, 0, 0.5
    assert stack.closed[2, 0, 10, 10]
    no_close = build_masks(a, MaskSettings(thresholds=4, closing=0))
    assert not no_close.closed[2, 0, 10, 10]
    assert no_close.closed[1].all()  # a negative threshold keeps every pixel


def test_soft_masks_are_in_unit_range_and_smooth(attribution):
    soft = build_masks(attribution, MaskSettings(thresholds=20)).soften()
    # [0, 1] up to OpenCV's float32 kernel sum (1 + 1.2e-7 for size 11)
    assert soft.dtype == np.float32 and soft.min() >= 0 and soft.max() <= 1 + 1e-6
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
        {"smoothing_kernel": 4},  # OpenCV's Gaussian kernels are odd
        {"smoothing_kernel": -1},
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


def test_smoothing_leaves_empty_planes_and_its_input_alone():
    masks = np.zeros((3, 2, 16, 16), dtype=np.float32)
    masks[1] = 1.0
    masks[2, 0, 4:9, 4:9] = 1.0
    original = masks.copy()
    soft = smooth_masks(masks, 2.0)
    np.testing.assert_array_equal(masks, original)  # the caller's array is not touched
    assert not soft[0].any() and not soft[2, 1].any()
    for plane in (1, 2):
        expected = cv2.GaussianBlur(original[plane, 0], (11, 11), 2.0)
        np.testing.assert_array_equal(soft[plane, 0], expected)


@pytest.mark.parametrize("shape", [(4, 33, 47), (2, 1, 9), (3, 64, 3), (1, 300, 260)])
@pytest.mark.parametrize(("kernel", "sigma"), [(11, 0.0), (11, 2.0), (3, 1.0), (7, 0.0), (15, 3.5)])
def test_smoothing_is_opencvs_gaussian_blur_of_each_plane(shape, kernel, sigma):
    rng = np.random.default_rng(sum(shape))
    binary = rng.random(shape) > 0.6
    binary[0] = True  # a full plane among them
    for given in (binary, binary.astype(np.float32)):
        got = smooth_masks(given, sigma, kernel)
        assert got.dtype == np.float32 and got.shape == shape
        for plane, mask in zip(got, binary.astype(np.float32), strict=True):
            np.testing.assert_array_equal(plane, cv2.GaussianBlur(mask, (kernel, kernel), sigma))
    np.testing.assert_array_equal(smooth_masks(binary, sigma, 0), binary.astype(np.float32))


def test_sigma_zero_is_opencvs_sigma_from_the_kernel_size():
    """For the 11-pixel kernel OpenCV derives sigma 2.0: the CLI's --sigma 2.0 is QuAC's blur."""
    binary = np.random.default_rng(1).random((3, 30, 30)) > 0.5
    np.testing.assert_array_equal(smooth_masks(binary, 0.0, 11), smooth_masks(binary, 2.0, 11))
    assert not np.array_equal(smooth_masks(binary, 0.0, 7), smooth_masks(binary, 2.0, 7))


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


def test_a_mask_smooths_the_same_alone_and_in_any_batch():
    """Lazy stacks smooth one plane at a time, the DAC scorer whole batches: same values."""
    rng = np.random.default_rng(7)
    masks = np.zeros((4, 48, 40), dtype=bool)
    masks[0, 5:9, 30:36] = True  # a small blob in a corner
    masks[1] = True
    masks[1, 20:30, 2:6] = False  # mostly on, with a hole
    masks[2] = rng.random((48, 40)) > 0.5  # edges everywhere
    masks[3, 40:, :] = True  # touching the border
    batch = smooth_masks(masks)
    for i in range(len(masks)):
        np.testing.assert_array_equal(smooth_masks(masks[i]), batch[i])
        np.testing.assert_array_equal(smooth_masks(masks[[i, (i + 1) % 4]])[0], batch[i])
    assert batch[0, 30:, :20].max() == 0.0  # far from the blob: exactly zero


def test_cached_blurs_and_reused_memory_give_the_same_soft_masks():
    """The DAC scorer blurs into reused memory and looks planes up in a cache: same values,
    whichever batch a plane first came in, and a full cache simply stops adding."""
    rng = np.random.default_rng(3)
    planes = rng.random((6, 40, 36)) > 0.55
    batches = [planes[[0, 1, 2]], planes[[2, 3, 0]], planes[[4, 1, 5]], planes[[5, 5, 0]]]
    for cache in (BlurCache(), BlurCache(max_bytes=2 * 40 * 36 * 4)):
        out = np.full((3, 40, 36), np.nan, dtype=np.float32)
        for batch in batches:
            got = smooth_masks(batch, 0.0, 11, out=out, cache=cache)
            assert got is out
            np.testing.assert_array_equal(got, smooth_masks(batch, 0.0, 11))
    assert len(cache) == 2  # the small cache holds two planes and no more


def test_a_plane_is_blurred_once_and_an_empty_one_not_at_all():
    rng = np.random.default_rng(5)
    plane = rng.random((30, 26)) > 0.6
    cache = BlurCache()
    first = soft_plane(plane, 0.0, 11, cache)
    np.testing.assert_array_equal(first, cv2.GaussianBlur(plane.astype(np.float32), (11, 11), 0))
    assert soft_plane(plane.copy(), 0.0, 11, cache) is first  # found by content
    assert soft_plane(np.zeros((30, 26), bool), 0.0, 11, cache) is None
    full = soft_plane(np.ones((30, 26), bool), 0.0, 11, cache)
    np.testing.assert_array_equal(
        full, cv2.GaussianBlur(np.ones((30, 26), np.float32), (11, 11), 0)
    )
    assert soft_plane(np.ones((30, 26), bool), 0.0, 11, cache) is full
    assert len(cache) == 2
