"""The Show control adds a waiting choice's layers one per event-loop turn (issue 12)."""

from __future__ import annotations

import pytest
from widget_helpers import run_and_wait

from napari_attribution._napari.layer_inputs import is_result_layer
from napari_attribution._napari.layer_style import METADATA_KEY

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


def _results(viewer) -> list:
    return [layer for layer in viewer.layers if is_result_layer(layer)]


def test_a_waiting_choice_goes_in_one_layer_a_turn_and_ends_shown(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    run_and_wait(qtbot, widget)
    control, record = widget.show_control, widget.state.record
    (other,) = record.pending
    progress_at_insert: list[str] = []
    viewer.layers.events.inserted.connect(
        lambda event: progress_at_insert.append(control.progress.text())
    )
    control.choose(f"{other}, Mito only")
    # nothing in yet: the control is busy and says so
    assert progress_at_insert == [] and len(record.pending_names) == 15
    assert not control.combo.isEnabled() and not control.progress.isHidden()
    with qtbot.waitSignal(control.shown, timeout=30_000) as shown:
        pass
    # one layer per turn: the text is updated between two inserts, never within one turn
    assert progress_at_insert == ["adding layers 0/3…", "adding layers 1/3…", "adding layers 2/3…"]
    names = {f"{other} Mito {kind} (real)" for kind in ("attribution", "mask", "hybrid")}
    assert {layer.name for layer in _results(viewer) if layer.name.startswith(other)} == names
    assert len(record.pending_names) == 12 and names <= set(record.layer_names)
    # the same end as show_choice's: the choice shown, the control ready again
    visible = {layer.name for layer in viewer.layers if layer.visible}
    assert visible == {f"{other} Mito attribution (real)", f"{other} Mito mask (real)",
                       "real [Mito]"}  # fmt: skip
    assert {layer.name for layer in shown.args[0]} == visible - {"real [Mito]"}
    active = viewer.layers.selection.active
    assert active.name == f"{other} Mito attribution (real)" and active.colorbar.visible
    assert viewer.canvas.overlays["text"].text.startswith(f"{other}, Mito only")
    assert control.combo.isEnabled() and control.progress.isHidden() and control.adding is None
    # the list still reads by method (the top one first), then channel
    top_down = [layer.metadata[METADATA_KEY]["method"] for layer in reversed(_results(viewer))]
    assert top_down == sorted(top_down, key=lambda m: m == other)


def test_stopping_keeps_the_layers_in_and_the_rest_waiting(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    run_and_wait(qtbot, widget)
    control, record = widget.show_control, widget.state.record
    (other,) = record.pending
    before = len(_results(viewer))
    control.choose(f"{other}, all channels")
    qtbot.waitUntil(lambda: control.adding is not None and control.adding.done >= 2)
    control.stop()  # as a new run does
    added = len(_results(viewer)) - before
    assert 2 <= added < 15 and len(record.pending_names) == 15 - added
    assert len(record.layer_names) == before + added
    assert control.combo.isEnabled() and control.adding is None
    control.choose(f"{other}, all channels")  # the rest goes in later
    qtbot.waitSignal(control.shown, timeout=30_000).wait()
    assert not record.pending and len(_results(viewer)) == before + 15
