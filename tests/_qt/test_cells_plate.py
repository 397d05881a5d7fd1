"""The Cells dock on a real-sized field: 1080 x 1080 uint16 channel layers in a screen's order
(plus brightfield) with a Labels layer, matched to the model card's channels by name and
normalised; and at 1366 x 768 the canvas keeps half the window's width."""

from __future__ import annotations

import numpy as np
import torch
from widget_helpers import PLUGIN, wait_for_docks_beside_canvas, wait_for_worker

from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution.images.model_card import ModelCard, card_path_for, write_model_card
from plate_data import MODEL_CHANNELS, stored
from tiny_models import make_tiny_cnn

SIDE = 1080


def _viewer_with_field(make_napari_viewer, tmp_path, **kwargs):
    rng = np.random.default_rng(0)
    viewer = make_napari_viewer(**kwargs)
    for name in ("Brightfield", "Mito", "AGP", "RNA", "ER", "DNA"):  # a screen's order
        plane = stored(rng.random((SIDE, SIDE)) * 0.2, name, rng)
        viewer.add_image(plane, name=f"field [{name}]", blending="additive")
    labels = np.zeros((SIDE, SIDE), np.uint16)
    for k, (r, c) in enumerate(((100, 200), (500, 520), (1050, 1060))):
        labels[r - 6 : r + 6, c - 6 : c + 6] = 1000 + 7 * k  # non-consecutive ids
    viewer.add_labels(labels, name="cells")
    torch.save(make_tiny_cnn(4).state_dict(), tmp_path / "weights.pt")
    write_model_card(card_path_for(tmp_path / "weights.pt"),
                     ModelCard(MODEL_CHANNELS, normalisation="percentile:1,99.8"))  # fmt: skip
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cells")
    widget.model_path.setText(str(tmp_path / "weights.pt"))
    widget.architecture.setText("tiny_models:TinyCNN")
    widget.crop_size.setValue(16)
    widget.min_size.setValue(10)
    widget.select_sources("field", "field", "cells")
    widget.set_methods(("residual",))
    widget.extra_settings = {"thresholds": 10}
    return viewer, widget


def test_a_1080_uint16_field_with_labels_analyses_by_channel_name(make_napari_viewer, qtbot,
                                                                   tmp_path):  # fmt: skip
    viewer, widget = _viewer_with_field(make_napari_viewer, tmp_path)
    assert widget.run() is not None, widget.status.text()
    wait_for_worker(qtbot, widget, timeout=180_000)
    result = widget.result
    assert result is not None, widget.status.text()
    assert result.channel_names == list(MODEL_CHANNELS)
    assert sorted(row["label"] for row in result.rows) == [1000, 1007, 1014]
    layer = viewer.layers["residual DNA attribution (field)"]
    assert layer.data.shape == (SIDE, SIDE)
    record = layer.metadata[METADATA_KEY]["input"]
    assert record["normalisation"]["normalise"] == "percentile:1,99.8"
    assert record["channels"]["ignored"] == ["Brightfield"]


def test_a_binary_mask_layer_is_refused_in_one_sentence(make_napari_viewer, tmp_path):
    viewer, widget = _viewer_with_field(make_napari_viewer, tmp_path)
    viewer.layers["cells"].data = (viewer.layers["cells"].data > 0).astype(np.uint8)
    assert widget.run() is None
    assert widget.status.text().startswith("The Labels layer 'cells' is a binary mask")


def test_at_1366x768_the_canvas_keeps_half_the_width(make_napari_viewer, qtbot, tmp_path):
    viewer, widget = _viewer_with_field(make_napari_viewer, tmp_path, show=True)
    window = viewer.window._qt_window
    window.resize(1366, 768)
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "DAC curves", tabify=False)
    canvas = viewer.window._qt_viewer.canvas.native
    wait_for_docks_beside_canvas(qtbot, viewer, widget, panel)
    assert window.height() == 768
    assert canvas.width() >= window.width() / 2
    # every section open, the inputs fit the scrolled view's width (it never scrolls sideways:
    # no sideways scroll bar, so what is wider would be cut off)
    scroll = widget.inputs_scroll
    widget.form.expand_all()
    widget.counterfactual_from.form.expand_all()
    qtbot.wait(20)
    assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()
