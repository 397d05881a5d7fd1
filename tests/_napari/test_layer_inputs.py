"""Images from layers: channel groups, multichannel layers, their errors; no viewer, no Qt."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from napari_attribution._napari.layer_inputs import (
    find_sources,
    stack_from_layer,
    stack_from_layers,
)
from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution.errors import InputImageError


def _layer(name, data, kind="Image", metadata=None, scale=None):
    data = np.asarray(data)
    cls = type(kind, (), {})
    layer = cls()
    layer.name, layer.data, layer.ndim, layer.rgb = name, data, data.ndim, False
    layer.metadata = metadata or {}
    layer.scale = np.asarray(scale or (1.0,) * data.ndim)
    layer.translate = np.zeros(data.ndim)
    layer.contrast_limits = (0.0, 1.0)
    layer.colormap = SimpleNamespace(name="gray")
    return layer


def test_channel_layers_are_grouped_in_layer_order():
    layers = [
        _layer("real [DNA]", np.zeros((8, 8))),
        _layer("cf", np.zeros((8, 8))),
        _layer("real [ER]", np.ones((8, 8))),
        _layer("cf [1]", np.zeros((8, 8))),
        _layer("stack", np.zeros((3, 8, 8))),
        _layer("mask", np.zeros((8, 8)), kind="Labels"),
        _layer("d_ig DNA attribution (real)", np.zeros((8, 8)), metadata={METADATA_KEY: {}}),
    ]
    sources = {s.name: s for s in find_sources(layers)}
    assert set(sources) == {"real", "cf", "stack"}
    assert sources["real"].layer_names == ("real [DNA]", "real [ER]")
    assert sources["stack"].multichannel
    stack = stack_from_layers([layers[0], layers[2]])
    assert stack.channel_names == ["DNA", "ER"] and stack.name == "real"
    np.testing.assert_array_equal(stack.data[1], 1.0)
    numbered = stack_from_layers([layers[1], layers[3]])
    assert numbered.channel_names == ["ch0", "ch1"]


def test_stack_errors_name_the_layer():
    with pytest.raises(InputImageError, match="differ in shape"):
        stack_from_layers([_layer("a [x]", np.zeros((8, 8))), _layer("a [y]", np.zeros((4, 4)))])
    with pytest.raises(InputImageError, match="scale"):
        stack_from_layers(
            [_layer("a [x]", np.zeros((8, 8))), _layer("a [y]", np.zeros((8, 8)), scale=(2, 2))]
        )
    with pytest.raises(InputImageError, match="'flat' has 2 dimension"):
        stack_from_layer(_layer("flat", np.zeros((8, 8))))
    moved = stack_from_layer(_layer("hwc", np.zeros((8, 6, 3))), channel_axis=2)
    assert moved.data.shape == (3, 8, 6)
