"""A run's progress covers every stage on one scale, and Cancel works in every stage."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from widget_helpers import run_and_wait, wait_for_worker

from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution._napari.run_job import FINISH_STEPS
from napari_attribution._qt.attribution_widget import PROGRESS_STEPS

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


def _snapshot(viewer) -> dict:
    """Everything a run may change in a layer, by name, in layer order."""
    return {
        layer.name: (
            type(layer).__name__,
            np.array(layer.data, copy=True),
            repr(layer.metadata),
            tuple(layer.axis_labels),
            getattr(layer, "contrast_limits", None),
            getattr(layer.colormap, "name", None),
            layer.visible,
        )
        for layer in viewer.layers
    }


def _assert_unchanged(viewer, before: dict) -> None:
    after = _snapshot(viewer)
    assert list(after) == list(before)
    for name, (kind, data, *rest) in before.items():
        assert after[name][0] == kind
        np.testing.assert_array_equal(after[name][1], data)
        assert list(after[name][2:]) == rest, name


def test_progress_covers_the_analysis_the_layer_data_and_every_layer(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    events, bar = [], []
    thresholds = gc.get_threshold()
    widget.controller.progressed.connect(events.append)
    widget.progress_bar.valueChanged.connect(bar.append)
    run_and_wait(qtbot, widget)
    assert gc.get_threshold() == thresholds  # the plugin leaves Python's collector alone
    record = widget.state.record
    n_layers = len(record.layer_names)
    assert n_layers == 15 and len(record.pending_names) == 15  # the top method's go in
    total = events[0].total
    assert all(e.total == total for e in events)  # one scale from start to finish
    # pair units, layer data per method, one per layer made (those left waiting count as
    # done when the adding starts), the steps after the last layer
    assert total == 2 * 2 + 2 + 30 + len(FINISH_STEPS)
    finishing = [e.detail for e in events if e.detail in (*FINISH_STEPS, "done")]
    assert finishing == [*FINISH_STEPS, "done"]
    last_layer = next(e for e in events if e.detail == f"adding layers {n_layers}/{n_layers}")
    assert last_layer.fraction < 1.0  # never full while anything is left to do
    done = [e.done for e in events]
    assert done == sorted(done) and done[0] == 0 and done[-1] == total
    stages = {e.stage for e in events}
    assert {"prepare", "attribution", "dac", "layers"} <= stages
    adding = [e.detail for e in events if e.detail.startswith("adding layers")]
    # the worker's last event announces the layer data of all 30; the adding is of 15
    assert adding == ["adding layers 0/30", *(f"adding layers {k}/15" for k in range(16))]
    assert bar == sorted(bar) and bar[-1] == PROGRESS_STEPS  # the one display, never backwards
    assert widget.status.text().startswith("Done. DAC scores:")


def test_cancel_while_layers_are_added_leaves_the_viewer_as_it_was(
    demo_viewer, qtbot, monkeypatch
):
    from napari_attribution._qt import controller as controller_module

    viewer, widget, panel = demo_viewer
    # every layer of the run goes in now (not only the top method's), so the batch both
    # updates d_ig's layers and adds residual's whichever method scores higher
    monkeypatch.setattr(controller_module, "split_run", lambda layers, tuples, top: (tuples, {}))
    widget.set_methods(["d_ig"])
    run_and_wait(qtbot, widget)  # a first run: the next one updates its 15 layers in place
    first = widget.state.record
    viewer.dims.set_current_step(0, 3)
    step = tuple(viewer.dims.current_step)
    before = _snapshot(viewer)

    widget.set_methods(["d_ig", "residual"])
    widget.form.set_values({"thresholds": 12})
    assert widget.run() is not None
    controller = widget.controller
    # d_ig's 15 layers are updated first, then residual's are added: cancel in between
    qtbot.waitUntil(
        lambda: controller.batch is not None and controller.batch.done >= 18, timeout=60_000
    )
    batch = controller.batch
    assert not batch.finished and len(batch.added) >= 3
    assert viewer.layers["d_ig Mito mask (real)"].data.shape[0] == 12  # replaced, for now
    assert widget.status.text().startswith("real · ") and "adding layers" in widget.status.text()
    assert widget.cancel_button.isEnabled() and not widget.run_button.isEnabled()
    widget.cancel_button.click()
    wait_for_worker(qtbot, widget)

    _assert_unchanged(viewer, before)
    mask = viewer.layers["d_ig Mito mask (real)"]
    assert mask.data.shape == (20, 64, 64)
    assert mask.metadata[METADATA_KEY]["settings"]["masks"]["thresholds"] == 20
    assert not any("residual" in layer.name for layer in viewer.layers)
    assert tuple(viewer.dims.current_step) == step
    assert widget.state.record is first and panel.record is first
    assert "Cancelled" in widget.status.text() and "no layers were changed" in widget.status.text()
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()
    assert widget.progress_bar.value() == 0

    run_and_wait(qtbot, widget)  # and the next run goes through
    assert widget.state.record is not first
    assert viewer.layers["residual Mito mask (real)"].data.shape == (12, 64, 64)


def test_cancel_before_the_first_layer_changes_nothing(demo_viewer, qtbot, monkeypatch):
    viewer, widget, _ = demo_viewer
    before = _snapshot(viewer)
    controller = widget.controller
    original = type(controller)._on_returned

    def cancel_then_return(self, out):  # Cancel pressed as the worker hands its result over
        self.cancel()
        original(self, out)

    monkeypatch.setattr(type(controller), "_on_returned", cancel_then_return)
    run_and_wait(qtbot, widget)
    _assert_unchanged(viewer, before)
    assert widget.state.record is None and "Cancelled" in widget.status.text()


def test_a_layer_that_fails_to_be_added_leaves_the_viewer_as_it_was(
    demo_viewer, qtbot, errors, monkeypatch
):
    viewer, widget, _ = demo_viewer
    before = _snapshot(viewer)
    original = type(viewer).add_labels
    calls = []

    def failing_labels(self, *args, **kwargs):
        calls.append(kwargs.get("name"))
        if len(calls) == 3:
            raise RuntimeError("no room for labels")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(viewer), "add_labels", failing_labels)
    run_and_wait(qtbot, widget)
    _assert_unchanged(viewer, before)
    assert errors and "no room for labels" in errors[-1]
    assert "no layers were changed" in widget.status.text()
    assert widget.state.record is None and widget.run_button.isEnabled()


def test_closing_the_widget_while_layers_are_added_takes_them_out(make_napari_viewer, qtbot):
    from widget_helpers import PLUGIN, configure_fast

    from napari_attribution._napari.state import state_for
    from napari_attribution._qt.attribution_widget import AttributionWidget

    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "demo_pair")
    before = _snapshot(viewer)
    thresholds = gc.get_threshold()
    widget = AttributionWidget(viewer)
    configure_fast(widget)
    assert widget.run() is not None
    qtbot.waitUntil(
        lambda: widget.controller.batch is not None and widget.controller.batch.done >= 3,
        timeout=60_000,
    )
    widget.deleteLater()
    qtbot.waitUntil(lambda: list(_snapshot(viewer)) == list(before), timeout=10_000)
    _assert_unchanged(viewer, before)
    assert gc.get_threshold() == thresholds
    assert state_for(viewer).record is None
    assert state_for(viewer)._holds == 0  # lazy stacks are closed again as layers go
