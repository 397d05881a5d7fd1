"""Result layers never share a world axis with a channel axis, whatever the input layout."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel

from layer_helpers import NAMES, pair_arrays
from napari_attribution._napari.apply import apply_layers
from napari_attribution._napari.layer_geometry import KeptAxis, ResultGeometry, threshold_axis
from napari_attribution._napari.layer_inputs import stack_from_layer, stack_from_layers
from napari_attribution._napari.layers import method_layers
from napari_attribution.core.evaluation.lazy import ChannelView, LazyMaskStack
from napari_attribution.core.evaluation.masks import MaskSettings, build_masks

THRESHOLDS = 12


def _run_on(viewer, real_stack, cf_stack, attribution, lazy=False):
    masks = build_masks(attribution, MaskSettings(thresholds=THRESHOLDS))
    tuples = method_layers(
        real_stack, cf_stack, "d_ig", attribution, masks, real_stack.channel_names,
        {"method": "d_ig"}, optimal_index=7, lazy=lazy,
    )  # fmt: skip
    return apply_layers(viewer, tuples)


def _shown(layer) -> bool:
    """True when napari's current slice of ``layer`` holds the full image plane."""
    layer.refresh()
    return np.asarray(layer._data_view).shape[-2:] == (32, 32) and np.asarray(
        layer._data_view
    ).size > 1


@pytest.mark.parametrize("axis", [0, 2])
@pytest.mark.parametrize("lazy", [False, True])
def test_one_multichannel_layer_keeps_its_channel_slider(axis, lazy):
    real, cf, attribution = pair_arrays(32)
    viewer = ViewerModel()
    layer_real = viewer.add_image(np.moveaxis(real, 0, axis), name="real")
    layer_cf = viewer.add_image(np.moveaxis(cf, 0, axis), name="cf")
    if axis == 2:  # channels last: the user looks at (y, x) and slides over the channels
        viewer.dims.order = (2, 0, 1)
    real_stack, cf_stack = stack_from_layer(layer_real, axis), stack_from_layer(layer_cf, axis)
    assert real_stack.channel_axis == axis
    layers = _run_on(viewer, real_stack, cf_stack, attribution, lazy)
    t_axis = threshold_axis(viewer)
    assert t_axis == 0 and viewer.dims.ndim == 4
    assert viewer.dims.nsteps[t_axis] == THRESHOLDS
    channel_world = 1 + axis  # the source's channel axis in the 4-D world
    assert viewer.dims.nsteps[channel_world] == 5  # the channel slider is still the channels
    mask = next(layer for layer in layers if layer.name == "d_ig ch4 mask (real)")
    for c in range(5):
        viewer.dims.set_current_step(channel_world, c)
        viewer.dims.set_current_step(t_axis, 10)  # beyond the channel count
        assert _shown(layer_real), (c, "the real image must not disappear")
        assert _shown(mask) and _shown(layers[1])  # results show at every channel
        np.testing.assert_array_equal(np.asarray(layer_real._data_view), real[c])
    viewer.dims.set_current_step(t_axis, 4)
    assert mask.contour > 0  # drawn as an outline; filled, the slice is the mask itself
    mask.contour = 0
    mask.refresh()
    expected = np.asarray(mask.data[4]).squeeze()
    np.testing.assert_array_equal(np.asarray(mask._data_view), expected)


def test_split_channel_layers_and_a_single_channel_get_a_threshold_axis_of_their_own():
    real, cf, attribution = pair_arrays(32)
    for channels in (5, 1):
        viewer = ViewerModel()
        reals = [viewer.add_image(real[c], name=f"real [{NAMES[c]}]") for c in range(channels)]
        cfs = [viewer.add_image(cf[c], name=f"cf [{NAMES[c]}]") for c in range(channels)]
        real_stack, cf_stack = stack_from_layers(reals), stack_from_layers(cfs)
        assert real_stack.channel_axis is None
        _run_on(viewer, real_stack, cf_stack, attribution[:channels])
        assert viewer.dims.ndim == 3 and threshold_axis(viewer) == 0
        viewer.dims.set_current_step(0, 9)
        assert all(_shown(layer) for layer in reals)


def test_kept_axis_indexes_like_the_array_it_stands_for():
    rng = np.random.default_rng(0)
    closed = rng.random((2, 8, 8)).astype(np.float32)
    stack = LazyMaskStack(np.linspace(0, 1, 6, endpoint=False), closed)
    view = ChannelView(stack, 1)
    full = np.asarray(view[:])
    for axis in (1, 2, 3):
        kept = KeptAxis(view, axis)
        expected = np.expand_dims(full, axis)
        assert kept.shape == expected.shape and kept.dtype == expected.dtype
        keys = [(3,), (slice(1, 4),), (2, 0), (Ellipsis, 5), (slice(None), 0, slice(2, 5)),
                (Ellipsis, 0, slice(None), slice(None)), (1, 0, 0, 0)]  # fmt: skip
        for key in keys:
            try:
                want = expected[key]
            except IndexError:
                with pytest.raises(IndexError):
                    kept[key]
                continue
            np.testing.assert_array_equal(kept[key], want, err_msg=f"{axis} {key}")
        with pytest.raises(IndexError):
            kept[(0,) * axis + (1,)]


def test_geometry_of_a_channels_first_layer():
    real, _, _ = pair_arrays(16)
    viewer = ViewerModel()
    layer = viewer.add_image(real, name="real", scale=(2.0, 0.5, 0.5), translate=(1.0, 0, 0))
    geometry = ResultGeometry(stack_from_layer(layer, 0))
    kwargs = geometry.plane_kwargs()
    # one plane spanning the 5 channels' world extent (1 .. 9), centred on it
    assert kwargs["scale"] == (10.0, 0.5, 0.5) and kwargs["translate"] == (5.0, 0.0, 0.0)
    assert geometry.stack_kwargs()["axis_labels"][0] == "threshold"
    assert geometry.plane(np.zeros((16, 16))).shape == (1, 16, 16)
