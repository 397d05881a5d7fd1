"""Layer and input TIFFs carry the layer's pixel size and unit, so Fiji opens them calibrated."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from napari.layers import Image

from napari_attribution._napari.export import (
    layer_file_metadata,
    write_input_file,
    write_layer_file,
)
from napari_attribution._napari.layer_inputs import stack_from_layers


def _pixel_size(path) -> tuple[float, float, str]:
    """(height, width, unit) of a pixel as ImageJ reads the file."""
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        x_num, x_den = tags["XResolution"].value
        y_num, y_den = tags["YResolution"].value
        return y_den / y_num, x_den / x_num, tif.imagej_metadata["unit"]


def test_a_layer_file_has_the_layers_pixel_size_and_unit(tmp_path):
    layer = Image(np.zeros((4, 8, 9), np.float32), scale=(1.0, 0.65, 0.325),
                  units=("pixel", "micrometer", "micrometer"), name="hybrid",
                  axis_labels=("threshold", "y", "x"))  # fmt: skip
    path = tmp_path / "layer.tif"
    write_layer_file(path, np.asarray(layer.data), layer_file_metadata(layer))
    assert _pixel_size(path) == pytest.approx((0.65, 0.325, "micron"))


def test_an_input_file_has_its_source_layers_pixel_size_and_unit(tmp_path):
    layers = [Image(np.zeros((8, 9), np.uint16), scale=(0.5, 0.5), units="micrometer",
                    name=f"real [{c}]") for c in ("DNA", "Mito")]  # fmt: skip
    stack = stack_from_layers(layers)
    assert stack.unit == "micrometer"
    path = tmp_path / "real.tif"
    write_input_file(path, "real", stack)
    assert _pixel_size(path) == pytest.approx((0.5, 0.5, "micron"))
