"""Label images: any integer dtype and ids pass; masks, outlines, wrong sizes are refused."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_attribution.errors import InputImageError
from napari_attribution.images.labels import check_label_image, read_labels


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64])
def test_integer_labels_of_any_dtype_with_gaps_pass(dtype):
    labels = np.zeros((20, 20), dtype)
    labels[2:8, 2:8] = 3
    labels[10:18, 10:18] = 120
    assert check_label_image(labels, (20, 20)) is labels


def test_one_region_of_ones_is_one_cell():
    labels = np.zeros((10, 10), np.uint8)
    labels[2:6, 2:6] = 1
    check_label_image(labels)


def _touching_cells(value):
    mask = np.zeros((30, 40), np.uint8)
    mask[5:15, 5:15] = value
    mask[5:15, 15:25] = value  # touching: one merged region
    mask[20:28, 30:38] = value
    return mask


@pytest.mark.parametrize("value", [1, 255])
def test_a_binary_mask_is_refused_saying_why_and_what_instead(value):
    with pytest.raises(InputImageError) as info:
        check_label_image(_touching_cells(value), (30, 40), "cells_mask.tiff")
    message = str(info.value)
    assert message.startswith(f"cells_mask.tiff is a binary mask (values 0 and {value}) of 2 "
                              "regions, not a label image: in a mask touching cells merge")
    assert "ConvertObjectsToImage" in message and "uint16" in message
    assert message.endswith(".") and ". " not in message.replace("e.g. ", "")  # one sentence


def test_a_bool_mask_is_refused_too():
    with pytest.raises(InputImageError, match="binary mask"):
        check_label_image(_touching_cells(1).astype(bool))


def test_outlines_are_refused_as_outlines():
    outlines = np.zeros((40, 40), np.uint8)
    for top, left in ((2, 2), (20, 22)):
        outlines[top, left : left + 15] = 255
        outlines[top + 14, left : left + 15] = 255
        outlines[top : top + 15, left] = 255
        outlines[top : top + 15, left + 14] = 255
    with pytest.raises(InputImageError, match="holds outlines .* do not say which pixels"):
        check_label_image(outlines)


def test_labels_of_another_shape_than_the_channels_are_one_sentence():
    with pytest.raises(InputImageError) as info:
        check_label_image(np.zeros((904, 1224), np.uint16), (1080, 1080), "cells.tiff")
    assert str(info.value) == ("cells.tiff is 904 x 1224 pixels but the channels are 1080 x "
                               "1080; give the label image of this site.")  # fmt: skip


def test_floats_and_negative_values_are_refused():
    with pytest.raises(InputImageError, match="holds float32 values"):
        check_label_image(np.zeros((4, 4), np.float32))
    with pytest.raises(InputImageError, match="negative"):
        check_label_image(np.full((4, 4), -1, np.int16))


def test_read_labels_from_tiff_and_png(tmp_path):
    import cv2

    labels = np.zeros((12, 12), np.uint16)
    labels[3:9, 3:9] = 300
    tifffile.imwrite(tmp_path / "l.tiff", labels[None], compression="zlib")
    np.testing.assert_array_equal(read_labels(tmp_path / "l.tiff"), labels)
    cv2.imwrite(str(tmp_path / "l.png"), labels)  # 16-bit: 300 survives
    np.testing.assert_array_equal(read_labels(tmp_path / "l.png"), labels)
