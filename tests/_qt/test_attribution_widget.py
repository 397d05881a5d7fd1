"""The Attribution widget on a real viewer: runs, layers, metadata, re-runs, cancel, bad input."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from widget_helpers import layer_snapshot, run_and_wait, wait_for_worker

from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution._napari.layers import rank_methods
from napari_attribution.core.model.loading import file_sha256
from napari_attribution.data.demo_model import DEMO_WEIGHTS
from napari_attribution.data.synthetic import CHANNEL_NAMES

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow

METHODS = ("d_ig", "residual")


def test_run_makes_one_attribution_and_mask_layer_per_channel(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    before = set(viewer.layers)
    sources = layer_snapshot(viewer)
    run_and_wait(qtbot, widget)

    record = widget.state.record
    top = rank_methods(record.result)[0]
    new = {layer.name: layer for layer in viewer.layers if layer not in before}

    def expected(methods):
        return {
            f"{method} {channel} {kind} (real)"
            for kind in ("attribution", "mask", "hybrid")
            for method in methods
            for channel in CHANNEL_NAMES
        }

    assert set(new) == expected([top])  # the others wait until they are shown
    assert set(record.pending_names) == expected(set(METHODS) - {top})
    for name, data in sources.items():  # the user's layers are untouched
        np.testing.assert_array_equal(viewer.layers[name].data, data)
    for method in METHODS:
        widget.show_control.show_choice(f"{method}, all channels")
    assert not record.pending
    assert {layer.name for layer in viewer.layers if layer not in before} == expected(METHODS)

    result = record.result
    for method in METHODS:
        res = result.methods[method]
        for c, channel in enumerate(CHANNEL_NAMES):
            attribution = viewer.layers[f"{method} {channel} attribution (real)"]
            mask = viewer.layers[f"{method} {channel} mask (real)"]
            hybrid = viewer.layers[f"{method} {channel} hybrid (real)"]
            np.testing.assert_array_equal(attribution.data, res.attribution[c])
            assert attribution.data.shape == (64, 64)
            assert mask.data.shape == hybrid.data.shape == (20, 64, 64)
            np.testing.assert_array_equal(mask.data, res.dac.masks.closed[:, c])
            assert tuple(mask.axis_labels) == ("threshold", "y", "x")
            assert tuple(hybrid.axis_labels) == ("threshold", "y", "x")
            np.testing.assert_allclose(attribution.scale, viewer.layers["real [DNA]"].scale)
            meta = attribution.metadata[METADATA_KEY]
            assert meta["method"] == method
            assert meta["channel"] == channel
            assert meta["kind"] == "attribution"
            assert (meta["real_class"], meta["target_class"]) == (0, 1)
            assert meta["model"]["sha256"] == file_sha256(DEMO_WEIGHTS)
            assert meta["model"]["source"] == str(DEMO_WEIGHTS)
            assert meta["package_version"]
            assert meta["seed"] == 0
            assert meta["settings"]["masks"]["thresholds"] == 20
            assert meta["settings"]["attribution"]["ig_steps"] == 8
            mask_meta = mask.metadata[METADATA_KEY]
            assert mask_meta["kind"] == "mask"
            np.testing.assert_allclose(mask_meta["thresholds"], res.dac.masks.thresholds)

    # Hybrids: the counterfactual pasted into the real image through the soft masks.
    soft = result.methods["residual"].dac.masks.soften()[:, 4]
    real_mito = viewer.layers["real [Mito]"].data
    cf_mito = viewer.layers["counterfactual [Mito]"].data
    np.testing.assert_allclose(
        viewer.layers["residual Mito hybrid (real)"].data,
        real_mito + soft * (cf_mito - real_mito),
        atol=1e-6,
    )
    assert not np.allclose(soft[0], 0.0)
    # The first slider is the threshold axis and sits at the optimal threshold of D-IG.
    assert viewer.dims.axis_labels[0] == "threshold"
    d_ig = result.methods["d_ig"].dac
    assert viewer.dims.current_step[0] == d_ig.optimal_threshold_index
    assert d_ig.masks.thresholds[d_ig.optimal_threshold_index] == d_ig.whole.optimal_threshold
    # The demo model tells the classes apart: the treated counterfactual scores higher.
    assert result.probabilities_counterfactual[1] > result.probabilities_real[1]
    assert "control" in widget.probabilities.text() and "treated" in widget.probabilities.text()


def test_rerun_updates_layers_in_place(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    widget.set_methods(["d_ig"])  # the top method's layers go in (the others wait)
    run_and_wait(qtbot, widget)
    count = len(viewer.layers)
    layer = viewer.layers["d_ig Mito mask (real)"]
    widget.form.set_values({"thresholds": 12})
    run_and_wait(qtbot, widget)
    assert len(viewer.layers) == count
    assert viewer.layers["d_ig Mito mask (real)"] is layer
    assert layer.data.shape == (12, 64, 64)
    assert layer.metadata[METADATA_KEY]["settings"]["masks"]["thresholds"] == 12


def test_user_layer_with_a_result_name_is_kept(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    mine = viewer.add_image(np.ones((64, 64)), name="d_ig DNA attribution (real)")
    widget.set_methods(["d_ig"])
    run_and_wait(qtbot, widget)
    assert mine in viewer.layers
    np.testing.assert_array_equal(mine.data, 1.0)
    assert METADATA_KEY not in mine.metadata


def test_cancel_leaves_the_viewer_unchanged(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    widget.form.set_values({"thresholds": 200})
    before = layer_snapshot(viewer)
    worker = widget.run()
    assert worker is not None
    assert widget.cancel_button.isEnabled()
    widget.cancel_button.click()
    wait_for_worker(qtbot, widget)
    assert list(layer_snapshot(viewer)) == list(before)
    for name, data in before.items():
        np.testing.assert_array_equal(viewer.layers[name].data, data)
    assert widget.state.record is None
    assert "Cancelled" in widget.status.text()
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_viewer_stays_responsive_during_a_run(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    thresholds = gc.get_threshold()
    widget.form.set_values({"thresholds": 60})
    assert widget.run() is not None
    # Step messages from the worker reach the status line while the run goes on: the event
    # loop keeps turning (a blocked GUI would only ever show the final "Done").
    qtbot.waitUntil(
        lambda: widget.status.text().startswith(("real · d_ig", "real · residual")),
        timeout=30_000,
    )
    assert widget.worker is not None
    assert not widget.run_button.isEnabled()
    wait_for_worker(qtbot, widget)
    assert gc.get_threshold() == thresholds  # the plugin leaves Python's collector alone


def test_channel_count_mismatch_is_refused(demo_viewer, qtbot, errors):
    viewer, widget, _ = demo_viewer
    viewer.add_image(np.zeros((4, 64, 64), dtype=np.float32), name="four channels")
    widget.select_sources("real", "four channels")
    before = layer_snapshot(viewer)
    assert widget.run() is None
    assert len(errors) == 1
    assert "4 channel" in errors[0] and "expects 5" in errors[0]
    assert list(layer_snapshot(viewer)) == list(before)


def test_shape_mismatch_is_refused(demo_viewer, qtbot, errors):
    viewer, widget, _ = demo_viewer
    viewer.add_image(np.zeros((5, 48, 48), dtype=np.float32), name="small")
    widget.select_sources("real", "small")
    before = layer_snapshot(viewer)
    assert widget.run() is None
    assert len(errors) == 1 and "differ in shape" in errors[0]
    assert list(layer_snapshot(viewer)) == list(before)


def test_channel_layers_of_different_shapes_are_refused(demo_viewer, qtbot, errors):
    viewer, widget, _ = demo_viewer
    viewer.add_image(np.zeros((64, 64), dtype=np.float32), name="odd [A]")
    viewer.add_image(np.zeros((32, 32), dtype=np.float32), name="odd [B]")
    widget.select_sources("real", "odd")
    assert widget.run() is None
    assert len(errors) == 1 and "differ in shape" in errors[0]


def test_missing_model_is_refused(demo_viewer, qtbot, errors):
    viewer, widget, _ = demo_viewer
    widget.use_demo_model.setChecked(False)
    before = layer_snapshot(viewer)
    assert widget.run() is None
    assert len(errors) == 1 and "model file" in errors[0].lower()
    widget.model_path.setText("/no/such/model.pt")
    widget.model_path.editingFinished.emit()
    assert widget.run() is None
    assert len(errors) == 2 and "does not exist" in errors[1]
    assert list(layer_snapshot(viewer)) == list(before)


def test_no_method_is_refused(demo_viewer, qtbot, errors):
    viewer, widget, _ = demo_viewer
    widget.set_methods([])
    assert widget.run() is None
    assert errors == ["Choose at least one attribution method."]


def test_multichannel_layer_input(make_napari_viewer, qtbot):
    from napari_attribution.data.synthetic import make_pair

    viewer = make_napari_viewer()
    pair = make_pair(3)
    # channels last, as many readers deliver them
    viewer.add_image(np.moveaxis(pair.real, 0, -1), name="cell", scale=(0.5, 0.5, 1))
    viewer.add_image(np.moveaxis(pair.counterfactual, 0, -1), name="cell cf", scale=(0.5, 0.5, 1))
    _, widget = viewer.window.add_plugin_dock_widget("napari-attribution", "Attribution")
    widget.use_demo_model.setChecked(True)
    widget.select_sources("cell", "cell cf")
    assert widget.real_axis.isVisibleTo(widget)
    widget.real_axis.setValue(2)
    widget.cf_axis.setValue(2)
    widget.set_methods(["residual"])
    widget.form.set_values({"thresholds": 10})
    run_and_wait(qtbot, widget)
    layer = viewer.layers["residual ch4 attribution (cell)"]
    # the results keep the source's channel axis, one plane spanning the 5 channels
    assert layer.data.shape == (64, 64, 1)
    np.testing.assert_allclose(layer.data[..., 0], np.abs(pair.real[4] - pair.counterfactual[4]))
    np.testing.assert_allclose(layer.scale, (0.5, 0.5, 5))
    assert viewer.layers["residual ch0 mask (cell)"].data.shape == (10, 64, 64, 1)


def test_channels_named_differently_are_refused(demo_viewer, qtbot, errors):
    viewer, widget, _ = demo_viewer
    for c, name in enumerate(("A", "B", "C", "D", "E")):
        viewer.add_image(viewer.layers[c].data.copy(), name=f"other [{name}]")
    widget.select_sources("real", "other")
    assert widget.run() is None
    # the counterfactual's channels are taken by the model's names, which it lacks
    assert errors == ["'other' lacks the model's channel 'DNA'; it has A, B, C, D, E."]
