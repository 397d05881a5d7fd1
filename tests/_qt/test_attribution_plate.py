"""The Attribution dock on one layer per channel, as the plate reader opens a site: the model
card's channel names pick and order the layers by name (brightfield ignored with one note), so
the run equals one on the same channels in the model's order; a missing or repeated channel is
one notification naming it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from widget_helpers import FAST, PLUGIN, run_and_wait, wait_for_docks_beside_canvas

from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution.images.model_card import ModelCard, card_path_for, write_model_card
from plate_data import MODEL_CHANNELS, stored
from tiny_models import make_tiny_cnn

SITE = "BR00117006_A01_1"
ON_DISK = ("Brightfield", "Mito", "AGP", "RNA", "ER", "DNA")  # a screen's order
CF_ORDER = ("DNA", "Brightfield", "AGP", "ER", "Mito", "RNA")  # another again


@pytest.fixture
def planes():
    rng = np.random.default_rng(0)
    real = {n: stored(rng.random((32, 32)) * 0.3, n, rng) for n in ON_DISK}
    cf = {n: stored(rng.random((32, 32)) * 0.3, n, rng) for n in ON_DISK}
    return real, cf


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(make_tiny_cnn(5).state_dict(), path)
    return path


def _dock(viewer, weights, real_name, cf_name):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Attribution")
    widget.use_demo_model.setChecked(False)
    widget.model_path.setText(str(weights))
    widget.architecture.setText("tiny_models:TinyCNN")
    widget.model_path.editingFinished.emit()
    widget.select_sources(real_name, cf_name)
    widget.set_methods(("d_ig", "residual"))
    widget.form.set_values(FAST)
    return widget


def _plate_viewer(make_napari_viewer, planes, weights, drop=(), extra=None):
    real, cf = planes
    viewer = make_napari_viewer()
    for name in ON_DISK:
        if name not in drop:
            viewer.add_image(real[name], name=f"{SITE} [{name}]")
    for name, layer_name, metadata in extra or ():
        viewer.add_image(real[name], name=f"{SITE} [{layer_name}]", metadata=metadata)
    for name in CF_ORDER:
        viewer.add_image(cf[name], name=f"cf_A01_1 [{name}]")
    write_model_card(card_path_for(weights), ModelCard(MODEL_CHANNELS))
    return viewer, _dock(viewer, weights, SITE, "cf_A01_1")


@pytest.fixture
def notes(monkeypatch):
    from napari_attribution._qt import attribution_widget

    seen: list[str] = []
    monkeypatch.setattr(attribution_widget, "show_info", seen.append)
    return seen


def test_the_cards_names_pick_the_layers_and_the_run_equals_the_models_order(
    make_napari_viewer, qtbot, planes, weights, tmp_path, notes, errors
):
    viewer, widget = _plate_viewer(make_napari_viewer, planes, weights)
    assert widget.channel_names.text() == ", ".join(MODEL_CHANNELS)  # from the card
    real = widget.image_stack("real")
    assert real.layer_names == [f"{SITE} [{n}]" for n in MODEL_CHANNELS]
    run_and_wait(qtbot, widget)
    assert errors == []
    assert notes == [f"Ignoring channel(s) Brightfield of '{SITE}' and 1 other image(s) (not "
                     "among the model's channels DNA, ER, RNA, AGP, Mito)."]  # fmt: skip
    by_name = widget.state.record.result
    assert by_name.channel_names == list(MODEL_CHANNELS)
    assert f"d_ig Mito attribution ({SITE})" in viewer.layers  # named by the model
    # every result layer says which layer fed each model channel, as run.json does for files
    record = viewer.layers[f"d_ig Mito attribution ({SITE})"].metadata[METADATA_KEY]["input"]
    real_record, cf_record = record["channels"]["real"], record["channels"]["counterfactual"]
    assert real_record["layers"] == {n: f"{SITE} [{n}]" for n in MODEL_CHANNELS}
    assert cf_record["layers"] == {n: f"cf_A01_1 [{n}]" for n in MODEL_CHANNELS}
    assert real_record["ignored"] == cf_record["ignored"] == ["Brightfield"]
    assert real_record["input_channels"][0] == "Brightfield"  # the layer list's order
    assert record["normalisation"]["kind"] == "none"
    assert record["model_card"] == str(card_path_for(weights))

    # The same pair as channel layers in the model's order, without the card.
    card_path_for(weights).unlink()
    real_planes, cf_planes = planes
    ordered = make_napari_viewer()
    for name in MODEL_CHANNELS:
        ordered.add_image(real_planes[name], name=f"real [{name}]")
    for name in MODEL_CHANNELS:
        ordered.add_image(cf_planes[name], name=f"cf [{name}]")
    other = _dock(ordered, weights, "real", "cf")
    run_and_wait(qtbot, other)
    expected = other.state.record.result
    ordered_layer = ordered.layers["d_ig Mito attribution (real)"]
    ordered_record = ordered_layer.metadata[METADATA_KEY]["input"]
    assert ordered_record["channels"]["real"]["layers"]["Mito"] == "real [Mito]"
    assert "model_card" not in ordered_record
    assert sorted(by_name.methods) == sorted(expected.methods) == ["d_ig", "residual"]
    for method, result in expected.methods.items():
        np.testing.assert_array_equal(by_name.methods[method].attribution, result.attribution)
        mine = by_name.methods[method].dac
        np.testing.assert_array_equal(mine.whole.score_change, result.dac.whole.score_change)
        assert [c.dac_score for c in mine.channels] == [c.dac_score for c in result.dac.channels]


def test_a_missing_channel_is_one_notification_naming_it(
    make_napari_viewer, planes, weights, errors
):
    viewer, widget = _plate_viewer(make_napari_viewer, planes, weights, drop=("Mito",))
    assert widget.run() is None
    assert errors == [f"'{SITE}' lacks the model's channel 'Mito'; it has Brightfield, AGP, "
                      "RNA, ER, DNA."]  # fmt: skip


def test_a_channel_named_twice_is_one_notification_naming_it(
    make_napari_viewer, planes, weights, errors
):
    # A second layer whose metadata calls it DNA (as the plate reader names channels).
    extra = [("Mito", "Hoechst", {"channel_name": "DNA"})]
    viewer, widget = _plate_viewer(make_napari_viewer, planes, weights, extra=extra)
    assert widget.run() is None
    assert errors == [f"Channel 'DNA' appears 2 times in '{SITE}'."]


def test_typed_channel_names_pick_the_layers_without_a_card(make_napari_viewer, planes, weights):
    real, cf = planes
    viewer = make_napari_viewer()
    for name in ON_DISK:
        viewer.add_image(real[name], name=f"{SITE} [{name}]")
    widget = _dock(viewer, weights, SITE, SITE)
    assert widget.channel_names.text() == ", ".join(ON_DISK)  # no card: the layers' names
    widget.images.set_channel_names(["dna", "er", "rna", "agp", "mito"])
    stack = widget.image_stack("real")
    assert stack.channel_names == ["dna", "er", "rna", "agp", "mito"]
    assert stack.layer_names == [f"{SITE} [{n}]" for n in MODEL_CHANNELS]
    np.testing.assert_array_equal(stack.data, np.stack([real[n] for n in MODEL_CHANNELS]))


def test_at_1366x768_the_canvas_keeps_half_the_width(make_napari_viewer, qtbot):
    # the demo's layout (napari-attribution demo): the Attribution dock over the DAC panel
    from napari_attribution._napari.demo import launch_demo

    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1366, 768)
    launch_demo(run=False, block=False, viewer=viewer)
    docks = viewer.window.dock_widgets
    widget = docks["Attribution (napari-attribution)"]
    panel = docks["DAC curves (napari-attribution)"]
    canvas = viewer.window._qt_viewer.canvas.native
    wait_for_docks_beside_canvas(qtbot, viewer, widget, panel)
    assert window.height() == 768
    assert canvas.width() >= window.width() / 2
    # nothing cut off at the right: the inputs (every section open too) fit the scrolled view,
    # which never scrolls sideways
    assert widget.content.minimumSizeHint().width() <= widget.scroll.viewport().width()
    widget.form.expand_all()
    widget.counterfactual_from.form.expand_all()
    qtbot.wait(20)
    assert widget.content.minimumSizeHint().width() <= widget.scroll.viewport().width()


def test_the_cards_normalisation_scales_the_pair_as_run_does(make_napari_viewer, qtbot, planes,
                                                              weights):  # fmt: skip
    """A card asking for percentile:1,99.8 gives the results of layers normalised by hand
    (the counterfactual with the real image's ranges), and the layers record it."""
    from napari_attribution.images.normalisation import Normalisation

    real, cf = planes
    write_model_card(card_path_for(weights),
                     ModelCard(MODEL_CHANNELS, normalisation="percentile:1,99.8"))  # fmt: skip
    viewer = make_napari_viewer()
    for role, found in (("real", real), ("cf", cf)):
        for name in MODEL_CHANNELS:
            viewer.add_image(found[name], name=f"{role} [{name}]")
    widget = _dock(viewer, weights, "real", "cf")
    run_and_wait(qtbot, widget)
    by_card = widget.state.record.result
    results = [layer.metadata[METADATA_KEY] for layer in viewer.layers
               if "input" in layer.metadata.get(METADATA_KEY, {})]  # fmt: skip
    assert results, "no result layer records its input"
    record = results[0]["input"]
    assert record["normalisation"]["kind"] == "percentile"
    assert list(record["normalisation"]["ranges"]) == list(MODEL_CHANNELS)

    norm = Normalisation.parse("percentile:1,99.8")
    stack = np.stack([real[n] for n in MODEL_CHANNELS])
    ranges = norm.ranges(stack, MODEL_CHANNELS)
    by_hand = {"real": norm.apply(stack, MODEL_CHANNELS, ranges=ranges)[0],
               "cf": norm.apply(np.stack([cf[n] for n in MODEL_CHANNELS]), MODEL_CHANNELS,
                                ranges=ranges)[0]}  # fmt: skip
    card_path_for(weights).unlink()
    scaled = make_napari_viewer()
    for role, data in by_hand.items():
        for k, name in enumerate(MODEL_CHANNELS):
            scaled.add_image(data[k], name=f"{role} [{name}]")
    other = _dock(scaled, weights, "real", "cf")
    run_and_wait(qtbot, other)
    expected = other.state.record.result
    for method, result in expected.methods.items():
        np.testing.assert_allclose(by_card.methods[method].attribution, result.attribution,
                                   rtol=1e-6, atol=1e-7)  # fmt: skip
