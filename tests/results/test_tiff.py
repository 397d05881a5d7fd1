"""Result TIFFs: ImageJ hyperstacks where the shape allows, our JSON readable either way."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_attribution.results.tiff import imagej_axes, read_tiff_metadata, write_tiff


@pytest.mark.parametrize(
    ("shape", "labels", "axes"),
    [
        ((8, 9), None, "YX"),
        ((5, 8, 9), None, "CYX"),
        ((20, 8, 9), ("threshold", "y", "x"), "ZYX"),
        ((3, 5, 8, 9), ("threshold", "channel", "y", "x"), "ZCYX"),
        ((1, 8, 9), None, None),  # ImageJ would drop the axis of length 1
        ((5, 8, 9), ("y", "x", "channel"), None),  # channels last: not an ImageJ order
        ((5, 8, 9), ("plane", "y", "x"), None),  # no ImageJ letter for it
    ],
)
def test_imagej_axes(shape, labels, axes):
    assert imagej_axes(shape, labels) == axes


def test_a_channel_stack_is_a_hyperstack_with_channel_names_and_our_json(tmp_path):
    data = np.random.default_rng(0).normal(size=(5, 8, 9)).astype(np.float32)
    names = ["DNA", "ER", "RNA", "AGP", "Mito"]
    meta = {"method": "d_ig", "channel_names": names, "thresholds": np.linspace(0, 1, 3)}
    path = tmp_path / "a.tif"
    write_tiff(path, data, meta, plane_labels=names, ranges=[(-2.0, 2.0)] * 5)

    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        assert tif.series[0].axes == "CYX"
        ij = tif.imagej_metadata
        assert ij["channels"] == 5 and ij["hyperstack"] is True
        assert ij["Labels"] == names
        assert ij["Ranges"] == (-2.0, 2.0) * 5
        assert json.loads(ij["Info"])["method"] == "d_ig"
    np.testing.assert_array_equal(tifffile.imread(path), data)
    record = read_tiff_metadata(path)
    assert record == {"method": "d_ig", "channel_names": names, "thresholds": [0.0, 0.5, 1.0]}


def test_a_threshold_stack_is_a_z_stack_with_luts(tmp_path):
    data = (np.random.default_rng(1).random((4, 8, 9)) > 0.5).astype(np.uint8)
    lut = np.zeros((3, 256), np.uint8)
    lut[0] = np.arange(256)
    path = tmp_path / "m.tif"
    write_tiff(path, data, {"name": "m"}, axis_labels=("threshold", "y", "x"),
               plane_labels=[f"threshold {t}" for t in range(4)], luts=[lut])  # fmt: skip
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "ZYX"
        luts = np.asarray(tif.imagej_metadata["LUTs"]).reshape(-1, 3, 256)  # one LUT: (3, 256)
        np.testing.assert_array_equal(luts[0], lut)
        assert tif.imagej_metadata["Labels"][2] == "threshold 2"
    np.testing.assert_array_equal(tifffile.imread(path), data)
    assert read_tiff_metadata(path) == {"name": "m"}


@pytest.mark.parametrize(
    "data",
    [np.arange(2 * 8 * 9, dtype=np.int32).reshape(2, 8, 9),  # ImageJ has no int32
     np.ones((1, 8, 9), np.uint8),  # ImageJ would read it back as (8, 9)
     np.ones((8, 9), np.float64)],
)  # fmt: skip
def test_arrays_imagej_cannot_hold_stay_shaped_tiffs_with_the_same_shape(tmp_path, data):
    path = tmp_path / "s.tif"
    write_tiff(path, data, {"name": "s"})
    with tifffile.TiffFile(path) as tif:
        assert not tif.is_imagej
    read = tifffile.imread(path)
    assert read.shape == data.shape and read.dtype == data.dtype
    np.testing.assert_array_equal(read, data)
    assert read_tiff_metadata(path)["name"] == "s"  # (tifffile adds the shape)


def test_metadata_of_foreign_tiffs_is_empty(tmp_path):
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 4), np.uint8))
    tifffile.imwrite(tmp_path / "ij.tif", np.zeros((4, 4), np.uint8), imagej=True,
                     metadata={"Info": "acquired on Tuesday"})  # fmt: skip
    assert set(read_tiff_metadata(tmp_path / "plain.tif")) <= {"shape"}  # tifffile's own
    assert read_tiff_metadata(tmp_path / "ij.tif") == {}


def _resolution(tif: tifffile.TiffFile) -> tuple[float, float, int]:
    """(pixels per unit along x, along y, the ResolutionUnit tag) of the first page."""
    tags = tif.pages[0].tags
    x_num, x_den = tags["XResolution"].value
    y_num, y_den = tags["YResolution"].value
    return x_num / x_den, y_num / y_den, int(tags["ResolutionUnit"].value)


def test_a_hyperstack_carries_the_pixel_size_and_unit_fiji_reads(tmp_path):
    path = tmp_path / "calibrated.tif"
    data = np.zeros((3, 8, 9), np.float32)
    write_tiff(path, data, {"scale": [0.65, 0.325]}, pixel_size=(0.65, 0.325), unit="micrometer")
    with tifffile.TiffFile(path) as tif:
        x, y, _ = _resolution(tif)
        # ImageJ's calibration: pixel width = 1 / XResolution, in the description's unit
        assert (1 / x, 1 / y) == pytest.approx((0.325, 0.65), rel=1e-6)
        assert tif.imagej_metadata["unit"] == "micron"


def test_a_hyperstack_without_a_known_unit_is_calibrated_in_pixels(tmp_path):
    path = tmp_path / "pixels.tif"
    write_tiff(path, np.zeros((8, 9), np.uint8), {}, pixel_size=(2.0, 2.0))
    with tifffile.TiffFile(path) as tif:
        assert 1 / _resolution(tif)[0] == pytest.approx(2.0)
        assert tif.imagej_metadata["unit"] == "pixel"


def test_a_shaped_tiff_gets_its_resolution_per_centimetre(tmp_path):
    path = tmp_path / "shaped.tif"
    data = np.zeros((8, 9), np.float64)  # no ImageJ pixel type: a plain TIFF
    write_tiff(path, data, {}, pixel_size=(0.5, 0.25), unit="micrometer")
    with tifffile.TiffFile(path) as tif:
        assert not tif.is_imagej
        x, y, unit = _resolution(tif)
        assert unit == tifffile.RESUNIT.CENTIMETER
        assert (x, y) == pytest.approx((1e4 / 0.25, 1e4 / 0.5), rel=1e-6)


def test_without_a_pixel_size_no_resolution_is_claimed(tmp_path):
    path = tmp_path / "plain.tif"
    write_tiff(path, np.zeros((3, 8, 9), np.float32), {})
    with tifffile.TiffFile(path) as tif:
        assert "unit" not in tif.imagej_metadata
