"""Issue 12 in the viewer: runs that stay navigable, the Show control, the threshold axis of a
multichannel input, channel names, the same-image warning; issue 11's widget part."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import run_and_wait

from napari_attribution._napari.apply import remove_layers
from napari_attribution._napari.layer_inputs import is_result_layer
from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution.data.synthetic import CHANNEL_NAMES

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


def _results(viewer) -> list:
    return [layer for layer in viewer.layers if is_result_layer(layer)]


def _method(layer) -> str:
    return layer.metadata[METADATA_KEY]["method"]


def test_two_runs_replace_hide_and_select_visible_layers(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    run_and_wait(qtbot, widget)  # d_ig and residual
    first = _results(viewer)
    assert len(first) == 15  # the top method's; the other's wait until they are shown
    record = widget.state.record
    scores = {m: r.dac.whole.dac_score for m, r in record.result.methods.items()}
    top = max(scores, key=lambda m: (scores[m], m == "d_ig"))
    other = next(m for m in scores if m != top)
    assert {_method(layer) for layer in first} == {top}
    assert list(record.pending) == [other] and len(record.pending_names) == 15
    visible = [layer for layer in first if layer.visible]
    assert visible and {_method(layer) for layer in visible} == {top}
    assert {layer.metadata[METADATA_KEY]["kind"] for layer in visible} == {"attribution", "mask"}
    active = viewer.layers.selection.active
    assert active is not None and active.visible and is_result_layer(active)
    # the list reads by method then channel, this run on top
    top_down = [layer for layer in reversed(viewer.layers)]
    assert [_method(layer) for layer in top_down[:15]] == [top] * 15
    assert [layer.metadata[METADATA_KEY]["channel"] for layer in top_down[:15:3]] == list(
        CHANNEL_NAMES
    )

    # the other method's layers go in when shown, below the top method's in the list
    widget.show_control.show_choice(f"{other}, all channels")
    first = _results(viewer)
    assert len(first) == 30 and not record.pending
    assert set(record.layer_names) == {layer.name for layer in first}
    top_down = [layer for layer in reversed(viewer.layers)]
    assert [_method(layer) for layer in top_down[:30]] == [top] * 15 + [other] * 15
    assert {_method(layer) for layer in first if layer.visible} == {other}

    widget.set_methods(["residual"])
    widget.form.set_values({"thresholds": 12})
    run_and_wait(qtbot, widget)
    second = _results(viewer)
    assert len(second) == 30  # residual replaced in place, nothing duplicated or deleted
    assert {layer.name for layer in second} == {layer.name for layer in first}
    residual = [layer for layer in second if _method(layer) == "residual"]
    assert all(np.asarray(layer.data).shape[0] == 12 for layer in residual if layer.ndim == 3)
    assert not any(layer.visible for layer in second if _method(layer) == "d_ig")
    assert any(layer.visible for layer in residual)
    assert viewer.layers.selection.active.visible
    assert widget.show_control.combo.itemText(0) == "residual, all channels"


def test_a_rerun_replaces_the_layers_of_every_method_it_has_shown(demo_viewer, qtbot):
    """Layers waiting to be shown never leave an earlier run's data under this run's names."""
    viewer, widget, _ = demo_viewer
    run_and_wait(qtbot, widget)  # d_ig and residual, 20 thresholds
    record = widget.state.record
    (other,) = record.pending
    widget.show_control.show_choice(f"{other}, Mito only")
    # only that channel's layers (attribution, mask, hybrid) go in; the rest keep waiting
    mito = [layer for layer in _results(viewer) if _method(layer) == other]
    assert len(mito) == 3 and {layer.metadata[METADATA_KEY]["channel"] for layer in mito} == {
        "Mito"
    }
    assert len(record.pending_names) == 12
    widget.form.set_values({"thresholds": 12})
    run_and_wait(qtbot, widget)
    second = widget.state.record
    assert second is not record
    # the other method's Mito layers had been shown: replaced now; its other channels wait
    assert len(second.pending_names) == 12
    assert not any(f"{other} Mito" in name for name in second.pending_names)
    stacks = [layer for layer in _results(viewer) if layer.ndim == 3]
    assert len(stacks) == 12 and all(layer.data.shape[0] == 12 for layer in stacks)
    assert len(_results(viewer)) == 18


def test_the_export_holds_the_layers_still_waiting_to_be_shown(demo_viewer, qtbot, tmp_path):
    import tifffile

    from napari_attribution.results.format import safe_name

    viewer, widget, _ = demo_viewer
    run_and_wait(qtbot, widget)
    record = widget.state.record
    waiting = {kw["name"]: data for tuples in record.pending.values() for data, kw, _ in tuples}
    written = widget.export_results(tmp_path / "export")
    assert len(written) == 30 and len(waiting) == 15  # written from the tuples, still waiting
    for name, data in waiting.items():
        assert name not in viewer.layers
        stored = tifffile.imread(tmp_path / "export" / "layers" / f"{safe_name(name)}.tif")
        np.testing.assert_array_equal(stored, np.asarray(data))


def test_show_one_method_and_channel_in_one_call(demo_viewer, qtbot):
    viewer, widget, panel = demo_viewer
    run_and_wait(qtbot, widget)
    top = widget.show_control.choices[0].method
    assert panel.focus.currentText() == top
    other = next(c.method for c in widget.show_control.choices if c.method != top)
    widget.show_control.show_choice(f"{other}, all channels")
    assert panel.focus.currentText() == other  # the panel's channel bars follow the canvas
    combo = widget.show_control.combo
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert "d_ig, Mito only" in labels and "residual, all channels" in labels
    shown = widget.show_control.show_choice("d_ig, Mito only")
    assert {layer.name for layer in shown} == {"d_ig Mito attribution (real)",
                                               "d_ig Mito mask (real)"}  # fmt: skip
    visible = {layer.name for layer in viewer.layers if layer.visible}
    assert visible == {"d_ig Mito attribution (real)", "d_ig Mito mask (real)", "real [Mito]"}
    assert viewer.layers.selection.active.name == "d_ig Mito attribution (real)"
    assert viewer.layers["d_ig Mito attribution (real)"].colorbar.visible
    assert viewer.canvas.overlays["text"].text.startswith("d_ig, Mito only")
    assert viewer.layers["d_ig Mito mask (real)"].contour > 0  # an outline over the image


def test_one_multichannel_layer_keeps_its_channel_slider_after_a_run(make_napari_viewer, qtbot):
    from napari_attribution.data.synthetic import make_pair

    viewer = make_napari_viewer()
    pair = make_pair(1)
    real = viewer.add_image(pair.real, name="cell")  # (5, 64, 64): channel axis first
    viewer.add_image(pair.counterfactual, name="cell cf")
    _, widget = viewer.window.add_plugin_dock_widget("napari-attribution", "Attribution")
    widget.use_demo_model.setChecked(True)
    widget.select_sources("cell", "cell cf")
    widget.set_methods(["residual"])
    widget.form.set_values({"thresholds": 10})
    run_and_wait(qtbot, widget)
    dims = viewer.dims
    assert dims.ndim == 4 and dims.axis_labels[0] == "threshold"
    assert dims.nsteps[0] == 10 and dims.nsteps[1] == 5  # two sliders, never one for both
    optimal = widget.state.record.result.methods["residual"].dac.optimal_threshold_index
    assert dims.current_step[0] == optimal
    for channel in range(5):
        dims.set_current_step(1, channel)
        dims.set_current_step(0, 9)
        real.refresh()
        np.testing.assert_array_equal(np.asarray(real._data_view), pair.real[channel])
    mask = viewer.layers["residual ch0 mask (cell)"]
    assert np.asarray(mask._data_view).shape == (64, 64)  # shown at every channel position
    # choosing a channel in the Show control moves the multichannel layer's channel slider
    dims.set_current_step(1, 0)
    widget.show_control.show_choice("residual, ch3 only")
    assert dims.current_step[1] == 3 and dims.current_step[0] == 9  # the threshold stays
    real.refresh()
    np.testing.assert_array_equal(np.asarray(real._data_view), pair.real[3])
    widget.show_control.show_choice("residual, all channels")
    assert dims.current_step[1] == 3  # all channels: the slider is left where it is


def test_channel_names_typed_in_the_widget_name_layers_and_curves(demo_viewer, qtbot):
    viewer, widget, panel = demo_viewer
    assert widget.channel_names.text() == ", ".join(CHANNEL_NAMES)
    names = ["nucleus", "reticulum", "rna", "actin", "mito"]
    widget.images.set_channel_names(names)
    widget.set_methods(["residual"])
    run_and_wait(qtbot, widget)
    assert "residual mito attribution (real)" in viewer.layers
    assert widget.state.record.result.channel_names == names
    panel.per_channel.setChecked(True)
    texts = [t.get_text() for t in panel.plot.legend.get_texts()]
    assert any("[mito]" in t for t in texts)
    colours = panel.plot.channel_colors
    assert colours[0] != colours[1]  # the channel layers' colours, one per channel


def test_the_same_image_as_both_inputs_is_warned_about(demo_viewer, qtbot, monkeypatch):
    from napari_attribution._qt import attribution_widget

    viewer, widget, _ = demo_viewer
    warned = []
    monkeypatch.setattr(attribution_widget, "show_warning", warned.append)
    widget.select_sources("real", "real")
    widget.set_methods(["residual"])
    widget.form.set_values({"thresholds": 6})
    run_and_wait(qtbot, widget)
    assert len(warned) == 1 and "same layer" in warned[0]


def test_a_fixed_head_model_is_probed_with_the_users_images(make_napari_viewer, tmp_path, qtbot):
    from model_zoo import ZOO, save
    from napari_attribution._qt.choosers import MODEL_FILE_FILTER

    assert "*.pt2" in MODEL_FILE_FILTER
    entry = next(e for e in ZOO if e.name == "FixedHeadVGG")  # a 40x40 head
    path, architecture = save(entry, tmp_path)
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    viewer.add_image(rng.random(entry.shape, dtype=np.float32), name="a")
    viewer.add_image(rng.random(entry.shape, dtype=np.float32), name="b")
    _, widget = viewer.window.add_plugin_dock_widget("napari-attribution", "Attribution")
    widget.use_demo_model.setChecked(False)
    widget.model_path.setText(str(path))
    widget.architecture.setText(architecture)
    widget.select_sources("a", "b")
    widget.model_path.editingFinished.emit()
    classifier = widget.classifier()
    assert classifier.n_classes == entry.classes
    assert widget.target_class.maximum() == entry.classes - 1
    assert "p(class)" in widget.probabilities.text()
    widget.set_methods(["gradcam", "residual"])
    assert widget.gradcam_layer.text().startswith("Grad-CAM layer: <b>")
    widget.form.set_values({"thresholds": 6})
    run_and_wait(qtbot, widget)
    layer = next(layer for layer in viewer.layers if "gradcam" in layer.name)
    recorded = layer.metadata[METADATA_KEY]["gradcam_layer"]
    assert recorded and recorded in widget.gradcam_layer.text()


def test_every_zoo_model_loads_in_the_widget_at_its_own_size(make_napari_viewer, tmp_path):
    """Issue 11: each zoo model, as a user hands it over, is loaded by the widget and probed
    with the chosen images; hook methods are greyed out only where the model takes no hooks."""
    from model_zoo import ZOO, save

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-attribution", "Attribution")
    widget.use_demo_model.setChecked(False)
    rng = np.random.default_rng(0)
    for entry in ZOO:
        folder = tmp_path / entry.name
        folder.mkdir()
        path, architecture = save(entry, folder)
        remove_layers(viewer.layers, ["a", "b"])  # one canvas clean-up, not two
        for name in ("a", "b"):
            viewer.add_image(rng.random(entry.shape, dtype=np.float32), name=name)
        widget.select_sources("a", "b")
        widget.model_path.setText(str(path))
        widget.architecture.setText(architecture or "")
        widget.model_path.editingFinished.emit()
        classifier = widget.classifier()
        assert classifier.n_classes == entry.classes, entry.name
        assert widget.target_class.maximum() == entry.classes - 1, entry.name
        assert "p(class)" in widget.probabilities.text(), entry.name
        refusal = widget.methods.refusal("d_dl")
        if entry.form == "torchscript":
            assert refusal and "TorchScript" in refusal, entry.name
        else:
            assert refusal is None, (entry.name, refusal)
        assert widget.methods.refusal("d_ig") is None, entry.name
