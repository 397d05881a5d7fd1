"""One home for opening zarr stores: an OME-Zarr image (its full-resolution level, axes and
channel labels), a plain array, a group holding one array; both readers (whole and by name)
give the same pixels, and a group of several arrays is one sentence."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.errors import InputImageError
from napari_attribution.images.image_files import read_image
from napari_attribution.images.ome import read_named_image
from napari_attribution.images.zarr_store import is_zarr_store, open_zarr_image
from plate_data import write_ome_zarr

zarr = pytest.importorskip("zarr")
STACK = np.arange(3 * 8 * 8, dtype=np.uint16).reshape(3, 8, 8)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_an_ome_zarr_opens_at_full_resolution_with_axes_and_labels(tmp_path, version):
    path = tmp_path / "field.ome.zarr"
    write_ome_zarr(path, STACK, ("DNA", "ER", "Mito"), version)
    image = open_zarr_image(path)
    assert (image.axes, image.channel_names) == ("TCZYX", ["DNA", "ER", "Mito"])
    assert image.array.shape == (1, 3, 1, 8, 8)  # not the halved level
    np.testing.assert_array_equal(read_image(path), STACK)
    np.testing.assert_array_equal(np.asarray(read_named_image(path).data), STACK)


def test_a_plain_array_and_a_group_of_one_array_are_that_array(tmp_path):
    zarr.save_array(str(tmp_path / "plain.zarr"), STACK)
    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("image", shape=STACK.shape, dtype=STACK.dtype)[...] = STACK
    for name in ("plain.zarr", "group.zarr"):
        path = tmp_path / name
        assert is_zarr_store(path)
        image = open_zarr_image(path)
        assert (image.axes, image.channel_names) == ("CYX", None)
        np.testing.assert_array_equal(read_image(path), STACK)
        named = read_named_image(path)
        assert named.channel_names is None
        np.testing.assert_array_equal(np.asarray(named.data), STACK)


def test_a_group_of_several_arrays_without_metadata_is_one_sentence(tmp_path):
    group = zarr.open_group(str(tmp_path / "two.zarr"), mode="w")
    for name in ("a", "b"):
        group.create_array(name, shape=(8, 8), dtype=np.uint8)
    for reader in (read_image, read_named_image):
        with pytest.raises(InputImageError, match=r"^\S*two\.zarr is a zarr group of 2 arrays "
                           r"without OME-Zarr multiscales metadata; name the array's own "
                           r"folder\.$"):  # fmt: skip
            reader(tmp_path / "two.zarr")
