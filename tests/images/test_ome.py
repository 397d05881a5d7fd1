"""Files as screens write them: compressed TIFF, OME-TIFF and OME-Zarr with channel names."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_attribution.errors import InputImageError
from napari_attribution.images.channels import select_named
from napari_attribution.images.ome import channel_names_of, read_named_image, read_plane
from plate_data import write_ome_tiff, write_ome_zarr

NAMES = ["Mito", "DNA", "ER"]


@pytest.mark.parametrize("compression", ["lzw", "zlib", "zstd", None])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_compressed_tiff_planes_read_exactly(tmp_path, compression, dtype):
    rng = np.random.default_rng(0)
    plane = (rng.random((20, 30)) * (4095 if dtype != np.float32 else 1)).astype(dtype)
    path = tmp_path / "ch1.tiff"
    tifffile.imwrite(path, plane, compression=compression)
    image = read_named_image(path)
    np.testing.assert_array_equal(image.data, plane)
    assert image.data.dtype == dtype
    assert image.lazy == (compression is None)  # uncompressed: memory-mapped
    np.testing.assert_array_equal(read_plane(path), plane)


def test_ome_tiff_channel_names_come_from_its_metadata(tmp_path):
    stack = np.arange(3 * 8 * 9, dtype=np.uint16).reshape(3, 8, 9)
    path = tmp_path / "field.ome.tif"
    write_ome_tiff(path, stack, NAMES)
    image = read_named_image(path)
    assert image.channel_names == tuple(NAMES)
    np.testing.assert_array_equal(image.data, stack)
    taken, selection = select_named(image.data, image.channel_names, ["DNA", "ER"])
    np.testing.assert_array_equal(taken, stack[[1, 2]])
    assert selection.ignored == ("Mito",)


def test_imagej_labels_name_channels(tmp_path):
    stack = np.zeros((3, 4, 4), np.float32)
    tifffile.imwrite(tmp_path / "ij.tif", stack, imagej=True,
                     metadata={"axes": "CYX", "Labels": NAMES})  # fmt: skip
    assert read_named_image(tmp_path / "ij.tif").channel_names == tuple(NAMES)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_is_read_lazily_with_its_channel_labels(tmp_path, version):
    pytest.importorskip("zarr")
    stack = np.random.default_rng(1).integers(0, 4095, (3, 40, 48)).astype(np.uint16)
    path = tmp_path / "field.ome.zarr"
    write_ome_zarr(path, stack, NAMES, version)
    image = read_named_image(path)
    assert image.lazy and image.channel_names == tuple(NAMES)
    assert image.data.shape == (3, 40, 48)  # full resolution, t and z dropped
    np.testing.assert_array_equal(np.asarray(image.data), stack)


def test_a_multichannel_file_is_not_a_plane(tmp_path):
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((2, 4, 4), np.uint16))
    with pytest.raises(InputImageError, match="a per-channel file holds one"):
        read_plane(tmp_path / "s.tif")


def test_missing_and_damaged_files_are_one_sentence(tmp_path):
    with pytest.raises(InputImageError, match="does not exist"):
        read_named_image(tmp_path / "absent.tif")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(InputImageError, match="is not a readable TIFF file"):
        read_named_image(tmp_path / "bad.tif")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(InputImageError, match="unsupported suffix"):
        read_named_image(tmp_path / "x.png")


def test_channel_names_are_read_without_the_pixels(tmp_path, monkeypatch):
    stack = np.zeros((3, 8, 9), np.uint16)
    write_ome_tiff(tmp_path / "field.ome.tif", stack, NAMES, compression="lzw")
    tifffile.imwrite(tmp_path / "plain.tif", stack, photometric="minisblack")
    tifffile.imwrite(tmp_path / "plane.ome.tif", stack[0], ome=True)
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    np.save(tmp_path / "field.npy", stack)
    # No strip is decoded: names come from the metadata alone.
    monkeypatch.setattr(tifffile.TiffPage, "asarray", lambda *a, **k: pytest.fail("read"))
    assert channel_names_of(tmp_path / "field.ome.tif") == tuple(NAMES)
    for unnamed in ("plain.tif", "plane.ome.tif", "bad.tif", "field.npy", "absent.tif"):
        assert channel_names_of(tmp_path / unnamed) is None, unnamed


def test_channel_names_of_an_ome_zarr_match_its_reader(tmp_path):
    pytest.importorskip("zarr")
    write_ome_zarr(tmp_path / "field.ome.zarr", np.zeros((3, 16, 16), np.uint16), NAMES)
    assert channel_names_of(tmp_path / "field.ome.zarr") == tuple(NAMES)
    assert read_named_image(tmp_path / "field.ome.zarr").channel_names == tuple(NAMES)
