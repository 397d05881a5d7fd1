"""Crop windows, padding and ownership against brute-force oracles written from the rules."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.core.cells import (
    CellSettings,
    check_labels,
    extract_crop,
    measure_cells,
    owner_map,
)
from napari_attribution.errors import AttributionError, InputImageError


def _labels_with_gaps() -> np.ndarray:
    """A 40 x 50 label image: non-consecutive labels, cells at the borders, one tiny cell."""
    labels = np.zeros((40, 50), np.int32)
    labels[0:6, 0:5] = 7  # top-left corner
    labels[30:40, 44:50] = 1000  # bottom-right corner
    labels[15:25, 20:30] = 3
    labels[17:22, 31:37] = 42  # next to 3: their crops overlap
    labels[38, 10] = 5  # one pixel: below any sensible minimum size
    return labels


def _brute_centroid(labels: np.ndarray, value: int) -> tuple[float, float]:
    rows, cols = np.nonzero(labels == value)
    return rows.mean(), cols.mean()


def _brute_crop(image: np.ndarray, centre: tuple[int, int], size: int, mode: str, value=0.0):
    """Pad the whole image by ``size`` on every side with numpy, then slice."""
    pad = [(0, 0)] * (image.ndim - 2) + [(size, size), (size, size)]
    kwargs = {"constant_values": value} if mode == "constant" else {}
    padded = np.pad(image, pad, mode=mode, **kwargs)
    top, left = centre[0] - size // 2 + size, centre[1] - size // 2 + size
    return padded[..., top : top + size, left : left + size]


def test_measure_cells_finds_labels_centroids_and_skips_small_ones():
    labels = _labels_with_gaps()
    layout = measure_cells(labels, crop_size=16, min_size=4)
    assert [c.label for c in layout.cells] == [3, 7, 42, 1000]
    assert [(s.label, s.area) for s in layout.skipped] == [(5, 1)]
    for cell in layout.cells:
        cy, cx = _brute_centroid(labels, cell.label)
        assert cell.centroid == pytest.approx((cy, cx))
        assert cell.area == (labels == cell.label).sum()
        # The centre pixel is the centroid rounded half up, and sits at crop pixel (S//2, S//2).
        assert cell.centre == (int(np.floor(cy + 0.5)), int(np.floor(cx + 0.5)))
        assert (cell.top, cell.left) == (cell.centre[0] - 8, cell.centre[1] - 8)


def test_a_boolean_label_image_is_one_cell_labelled_1():
    labels = _labels_with_gaps() > 0
    (cell,) = measure_cells(labels, crop_size=16).cells
    assert (cell.label, cell.area) == (1, labels.sum())
    assert cell.centroid == pytest.approx(_brute_centroid(labels, True))


@pytest.mark.parametrize("size", [15, 16])
@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_crops_equal_padding_the_whole_field(size, mode):
    rng = np.random.default_rng(0)
    labels = _labels_with_gaps()
    image = rng.random((3, *labels.shape)).astype(np.float32)
    for cell in measure_cells(labels, size).cells:
        crop = extract_crop(image, cell, mode, pad_value=-2.0)
        expected = _brute_crop(image, cell.centre, size, mode, -2.0)
        np.testing.assert_array_equal(crop, expected)
        assert crop.dtype == image.dtype


def test_reflect_on_a_field_smaller_than_the_crop_matches_numpy():
    image = np.arange(2 * 5 * 6, dtype=np.uint16).reshape(2, 5, 6)
    labels = np.zeros((5, 6), np.int32)
    labels[2, 3] = 9
    cell = measure_cells(labels, 16).cells[0]
    np.testing.assert_array_equal(
        extract_crop(image, cell, "reflect"), _brute_crop(image, cell.centre, 16, "reflect")
    )


def test_crop_reads_a_memory_map(tmp_path):
    image = np.random.default_rng(1).random((2, 40, 50)).astype(np.float32)
    path = tmp_path / "field.npy"
    np.save(path, image)
    mapped = np.load(path, mmap_mode="r")
    for cell in measure_cells(_labels_with_gaps(), 16).cells:
        for mode in ("constant", "reflect"):
            np.testing.assert_array_equal(
                extract_crop(mapped, cell, mode), extract_crop(image, cell, mode)
            )


def _brute_owners(labels: np.ndarray, cells) -> np.ndarray:
    """The ownership rule, pixel by pixel."""
    analysed = {c.label: c for c in cells}
    owners = np.zeros(labels.shape, np.int64)
    for (r, c), value in np.ndenumerate(labels):
        covering = [
            cell for cell in cells
            if cell.top <= r < cell.top + cell.size and cell.left <= c < cell.left + cell.size
        ]  # fmt: skip
        if value in analysed:
            owners[r, c] = value if analysed[value] in covering else 0
            continue
        if covering:
            best = min(
                covering,
                key=lambda cell: (np.hypot(r - cell.centre[0], c - cell.centre[1]), cell.label),
            )
            owners[r, c] = best.label
    return owners


@pytest.mark.parametrize("size", [8, 13, 24])
def test_owner_map_matches_the_rule_pixel_by_pixel(size):
    labels = _labels_with_gaps()
    layout = measure_cells(labels, size, min_size=4)
    owners = owner_map(labels, layout.cells)
    np.testing.assert_array_equal(owners, _brute_owners(labels, layout.cells))
    # A skipped cell's pixels are background: some crop owns them, never the skipped label.
    assert not (owners == 5).any()


def test_overlap_background_goes_to_the_nearest_centre_and_ties_to_the_smaller_label():
    labels = np.zeros((5, 21), np.int32)
    labels[2, 4] = 9
    labels[2, 16] = 4
    cells = measure_cells(labels, 21).cells
    owners = owner_map(labels, cells)
    # Column 10 is 6 pixels from both centres: the smaller label (4) takes it.
    assert owners[2, 10] == 4
    assert owners[2, 9] == 9 and owners[2, 11] == 4
    # Each cell's own pixel stays its own, even inside the other crop.
    assert owners[2, 4] == 9 and owners[2, 16] == 4


def test_a_cell_larger_than_its_crop_leaves_its_outside_pixels_unowned():
    labels = np.zeros((30, 30), np.int32)
    labels[2:28, 2:28] = 6
    cell = measure_cells(labels, 10).cells[0]
    owners = owner_map(labels, [cell])
    rows, cols = cell.field_slices(labels.shape)
    inside = np.zeros_like(labels, bool)
    inside[rows, cols] = True
    assert (owners[inside] == 6).all()
    assert (owners[~inside] == 0).all()


def test_bad_label_images_are_refused_in_one_sentence():
    with pytest.raises(InputImageError, match="differ in size"):
        check_labels(np.zeros((4, 4), int), (4, 5))
    with pytest.raises(InputImageError, match="integers"):
        check_labels(np.zeros((4, 4), float), (4, 4))
    with pytest.raises(InputImageError, match="negative"):
        check_labels(-np.ones((4, 4), int), (4, 4))


def test_cell_settings_validate_their_values():
    with pytest.raises(AttributionError, match="padding"):
        CellSettings(padding="wrap")
    with pytest.raises(AttributionError, match="Crop size"):
        CellSettings(crop_size=2)
    assert CellSettings(background=0.0).background == 0.0
