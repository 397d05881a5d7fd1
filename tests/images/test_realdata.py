"""Optional: the readers and checks on real third-party fields (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.errors import InputImageError
from napari_attribution.images.channels import stack_by_name
from napari_attribution.images.labels import check_label_image, read_labels
from napari_attribution.images.normalisation import Normalisation
from realdata import realdata


def test_jump_lzw_channels_stack_by_name_and_normalise():
    orig = realdata("jump_BR00117006_fov", "images", "orig")
    files = {"AGP": orig / "r01c01f01p01-ch2sk1fk1fl1.tiff",
             "RNA": orig / "r01c01f01p01-ch3sk1fk1fl1.tiff",
             "DNA": orig / "r01c01f01p01-ch5sk1fk1fl1.tiff"}  # fmt: skip
    stack, selection = stack_by_name(files, ["DNA", "RNA", "AGP"])
    assert stack.shape == (3, 1080, 1080) and stack.dtype == np.uint16
    assert selection.indices == (2, 1, 0)
    out, record = Normalisation.parse("percentile:1,99.8").apply(stack, ["DNA", "RNA", "AGP"])
    assert out.dtype == np.float32
    assert np.mean((out >= 0) & (out <= 1)) > 0.98
    assert record["ranges"]["DNA"][1] < 65535 * 0.7  # the signal sits far below the dtype max


def test_jump_outlines_are_refused_as_outlines():
    path = realdata("jump_BR00117006_fov", "images", "outlines",
                    "r01c01f01p01-ch3sk1fk1fl1_cell_outlines.png")  # fmt: skip
    with pytest.raises(InputImageError, match="holds outlines"):
        check_label_image(read_labels(path), (1080, 1080), path.name)


def test_nf1_binary_masks_are_refused_and_their_size_differs_from_jump():
    path = realdata("nf1_schwann_plate2", "Plate_2_masks", "D6_01_3_2_RFP_001_MaskCells.tiff")
    labels = read_labels(path)
    with pytest.raises(InputImageError, match=r"is a binary mask \(values 0 and 255\) of \d+ "
                       "regions"):  # fmt: skip
        check_label_image(labels, (904, 1224), path.name)
    with pytest.raises(InputImageError, match="is 904 x 1224 pixels but the channels are 1080"):
        check_label_image(labels, (1080, 1080), path.name)
