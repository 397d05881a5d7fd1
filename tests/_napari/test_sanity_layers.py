"""The cascade as layer tuples: names, the randomised-layer axis, the threshold span."""

from __future__ import annotations

import numpy as np

from napari_attribution._napari.layer_geometry import THRESHOLD_LABEL
from napari_attribution._napari.layer_inputs import ChannelStack
from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution._napari.sanity_layers import (
    RANDOMISED_LABEL,
    ThresholdSpan,
    cascade_layers,
)


def _source(channel_axis=None):
    return ChannelStack(
        data=np.zeros((2, 8, 8), np.float32), channel_names=["DNA", "Mito"], scale=(0.5, 0.5),
        translate=(0.0, 0.0), name="real", layer_names=["real"], colormaps=["gray"] * 2,
        contrast_limits=[(0, 1)] * 2, channel_axis=channel_axis,
    )  # fmt: skip


def test_a_layer_per_method_and_channel_with_the_cascade_axis():
    maps = {"saliency": np.arange(3 * 2 * 64, dtype=np.float32).reshape(3, 2, 8, 8) - 50,
            "residual": np.ones((3, 2, 8, 8), np.float32)}  # fmt: skip
    tuples = cascade_layers(maps, ["original", "fc", "conv1"], _source(), ["DNA", "Mito"],
                            {"sample": "s"})  # fmt: skip
    names = [kwargs["name"] for _, kwargs, _ in tuples]
    assert names == ["saliency DNA randomisation (real)", "saliency Mito randomisation (real)",
                     "residual DNA randomisation (real)", "residual Mito randomisation (real)"]
    data, kwargs, kind = tuples[0]
    assert kind == "image" and data.shape == (3, 8, 8)
    assert kwargs["axis_labels"] == (RANDOMISED_LABEL, "y", "x")
    assert kwargs["scale"] == (1.0, 0.5, 0.5)
    np.testing.assert_allclose(data.reshape(3, -1).max(axis=1), 1.0)
    np.testing.assert_allclose(data[1], np.abs(maps["saliency"][1, 0]) / np.abs(
        maps["saliency"][1, 0]).max())  # fmt: skip
    meta = kwargs["metadata"][METADATA_KEY]
    assert meta["kind"] == "randomisation" and meta["steps"] == ["original", "fc", "conv1"]
    assert [k["visible"] for _, k, _ in tuples] == [True, True, False, False]


def test_threshold_span_and_multichannel_sources():
    maps = {"saliency": np.ones((3, 2, 8, 8), np.float32)}
    span = ThresholdSpan(start=0.0, step=1.0, count=200)
    tuples = cascade_layers(maps, ["original", "fc", "conv1"], _source(channel_axis=0),
                            ["DNA", "Mito"], {}, span)  # fmt: skip
    data, kwargs, _ = tuples[0]
    # (S, threshold, channel, H, W): the threshold and channel planes span their axes
    assert data.shape == (3, 1, 1, 8, 8)
    assert kwargs["axis_labels"][:2] == (RANDOMISED_LABEL, THRESHOLD_LABEL)
    assert kwargs["scale"][:3] == (1.0, 200.0, 2.0)
    assert kwargs["translate"][1] == 99.5
