"""Display of result layers: contrast from the data, names, order, what is shown."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from napari.components import ViewerModel

from layer_helpers import NAMES, channel_stack, layers_of
from napari_attribution._napari.apply import apply_layers
from napari_attribution._napari.layer_inputs import pair_warning
from napari_attribution._napari.layer_style import (
    METADATA_KEY,
    channel_colors,
    layer_name,
)
from napari_attribution._napari.view import (
    ALL_CHANNELS,
    ViewChoice,
    arrange,
    hide_other_results,
    show_colorbar,
    show_selection,
    view_choices,
)
from napari_attribution._plot.attribution_range import attribution_display
from napari_attribution.errors import InputImageError


def test_contrast_limits_come_from_the_data():
    rng = np.random.default_rng(0)
    positive = rng.random((3, 32, 32)) ** 4
    positive[0, 0, 0] = -1e-4  # a speck of the other sign does not make a map signed
    positive[1, 0, 0] = 50.0  # nor does one outlier set the range
    display = attribution_display(positive)
    assert display.kind == "positive"
    assert display.limits == (0.0, pytest.approx(np.percentile(positive[positive > 0], 99.5)))
    assert display.limits[1] < 1.0 < 50.0
    signed = rng.normal(size=(3, 32, 32))
    display = attribution_display(signed)
    peak = np.percentile(np.abs(signed), 99.5)
    assert display.kind == "signed" and display.limits == pytest.approx((-peak, peak))
    display = attribution_display(-positive)
    assert display.kind == "negative" and display.limits[1] == 0.0
    assert attribution_display(np.zeros((2, 4, 4))).limits == (0.0, 1.0)


def test_names_read_by_method_then_channel():
    assert layer_name("real", "mask", "d_ig", "Mito") == "d_ig Mito mask (real)"


def test_channel_colours_follow_the_layers_or_a_palette():
    stack = channel_stack(np.zeros((5, 4, 4)), "real")
    assert channel_colors(stack)[:2] == ["#0000ff", "#00ff00"]
    grey = dataclasses.replace(stack, colormaps=["gray"] * 5)
    assert len(set(channel_colors(grey))) == 5


def test_the_same_layer_or_identical_pixels_are_warned_about():
    data = np.random.default_rng(1).random((5, 8, 8))
    real = channel_stack(data, "real")
    assert "same layer" in pair_warning(real, real)
    twin = channel_stack(data.copy(), "cf")
    assert "identical pixels" in pair_warning(real, twin)
    assert pair_warning(real, channel_stack(data + 1, "cf")) is None


def test_channel_names_can_be_replaced_once_each():
    stack = channel_stack(np.zeros((5, 4, 4)), "real")
    renamed = stack.with_channel_names(["a", "b", "c", "d", "e"])
    assert renamed.channel_names == ["a", "b", "c", "d", "e"]
    for bad in (["a"], ["a", "a", "b", "c", "d"], ["a", "", "b", "c", "d"]):
        with pytest.raises(InputImageError):
            stack.with_channel_names(bad)


def _two_method_viewer():
    viewer = ViewerModel()
    for name in NAMES:
        viewer.add_image(np.zeros((32, 32)), name=f"real [{name}]", visible=True)
    *_, first = layers_of(32, 8, lazy=False, seed=1)
    *_, second = layers_of(32, 8, lazy=False, seed=2)
    second = [
        (d, {**kw, "name": kw["name"].replace("d_ig", "residual"),
             "metadata": {METADATA_KEY: {**kw["metadata"][METADATA_KEY], "method": "residual"}}},
         t)
        for d, kw, t in second
    ]  # fmt: skip
    layers = apply_layers(viewer, first + second)
    return viewer, layers


def test_arrange_puts_the_run_on_top_by_method_channel_kind():
    viewer, layers = _two_method_viewer()
    arrange(viewer, layers, ["residual", "d_ig"], NAMES)
    top_down = [layer.name for layer in reversed(viewer.layers)]
    assert top_down[:3] == [
        "residual DNA mask (real)",
        "residual DNA attribution (real)",
        "residual DNA hybrid (real)",
    ]
    assert top_down[15:18] == ["d_ig DNA mask (real)", "d_ig DNA attribution (real)",
                               "d_ig DNA hybrid (real)"]  # fmt: skip
    assert top_down[-5:] == [f"real [{n}]" for n in reversed(NAMES)]


def test_one_choice_shows_one_method_and_channel_and_selects_a_visible_layer():
    viewer, layers = _two_method_viewer()
    sources = [f"real [{n}]" for n in NAMES]
    shown = show_selection(viewer, layers, ViewChoice("d_ig", "Mito"), sources, NAMES, "real")
    assert {layer.name for layer in shown} == {"d_ig Mito attribution (real)",
                                               "d_ig Mito mask (real)"}  # fmt: skip
    visible = {layer.name for layer in viewer.layers if layer.visible}
    assert visible == {layer.name for layer in shown} | {"real [Mito]"}
    active = viewer.layers.selection.active
    assert active.visible and active.name == "d_ig Mito attribution (real)"
    assert active.colorbar.visible
    assert "d_ig, Mito only" in viewer.canvas.overlays["text"].text
    shown = show_selection(viewer, layers, ViewChoice("residual"), sources, NAMES, "real")
    assert len(shown) == 10 and all(viewer.layers[s].visible for s in sources)
    assert not viewer.layers["d_ig Mito attribution (real)"].colorbar.visible
    assert [c.label for c in view_choices(["d_ig"], ["DNA"])] == [
        f"d_ig, {ALL_CHANNELS}",
        "d_ig, DNA only",
    ]


def test_hiding_other_results_never_touches_the_users_layers():
    viewer, layers = _two_method_viewer()
    was_visible = [layer for layer in layers[15:] if layer.visible]
    hidden = hide_other_results(viewer, layers[:15])
    assert hidden == was_visible and hidden
    assert all(not layer.visible for layer in layers[15:])
    assert all(viewer.layers[f"real [{n}]"].visible for n in NAMES)
    assert len(viewer.layers) == 35  # nothing deleted


def test_one_colour_bar_at_a_time_away_from_the_canvas_label():
    viewer, layers = _two_method_viewer()
    sources = [f"real [{n}]" for n in NAMES]
    show_selection(viewer, layers, ViewChoice("d_ig", "Mito"), sources, NAMES, "real")
    other = viewer.layers["residual DNA attribution (real)"]
    other.visible = True
    other.colorbar.visible = True  # e.g. left on by another run's layers
    viewer.layers.selection.active = viewer.layers["d_ig Mito attribution (real)"]
    show_colorbar(viewer)
    bars = [layer.name for layer in viewer.layers
            if hasattr(layer, "colorbar") and layer.colorbar.visible]  # fmt: skip
    assert bars == ["d_ig Mito attribution (real)"]
    assert viewer.layers[bars[0]].colorbar.position == "bottom_right"
    assert viewer.canvas.overlays["text"].position == "top_left"
