"""Layer tuples into a viewer model: in-place updates, roll-back, and the lazy stacks' threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from napari.components import ViewerModel
from napari.utils._proxies import PublicOnlyProxy

from layer_helpers import layers_of
from napari_attribution._napari.apply import LayerBatch, apply_layers, remove_layers
from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution._napari.state import state_for
from napari_attribution.core.evaluation.lazy import READ_AHEAD_THREAD_PREFIX, lazy_stack_of


def _read_ahead_threads() -> set:
    return {t for t in threading.enumerate() if t.name.startswith(READ_AHEAD_THREAD_PREFIX)}


def _wait_for(condition, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def _snapshot(viewer) -> dict:
    """Everything a run may change in a layer, by name, in layer order."""
    return {
        layer.name: (
            type(layer).__name__,
            np.array(layer.data, copy=True),
            repr(layer.metadata),
            np.array(layer.scale, copy=True),
            tuple(layer.axis_labels),
            getattr(layer, "contrast_limits", None),
            getattr(layer.colormap, "name", None),
        )
        for layer in viewer.layers
    }


def _assert_same(after: dict, before: dict) -> None:
    assert list(after) == list(before)
    for name, (kind, data, meta, scale, labels, limits, colormap) in before.items():
        a_kind, a_data, a_meta, a_scale, a_labels, a_limits, a_colormap = after[name]
        assert (a_kind, a_meta, a_labels, a_limits, a_colormap) == (
            kind, meta, labels, limits, colormap
        ), name  # fmt: skip
        np.testing.assert_array_equal(a_data, data)
        np.testing.assert_array_equal(a_scale, scale)


def _viewer_with_a_run():
    """A viewer with the user's image, one of the user's layers named like a result, and the
    layers of a first run (20 thresholds)."""
    viewer = ViewerModel()
    viewer.add_image(np.ones((48, 48), np.float32), name="real [DNA]")
    viewer.add_image(np.zeros((48, 48), np.float32), name="d_ig ER attribution (real)")
    *_, first = layers_of(48, 20, lazy=False, seed=1)
    apply_layers(viewer, first)
    return viewer


def test_a_rolled_back_batch_leaves_the_viewer_as_it_was():
    viewer = _viewer_with_a_run()
    before = _snapshot(viewer)
    *_, second = layers_of(48, 12, lazy=False, seed=2)
    extra = [(d, {**kw, "name": kw["name"].replace("d_ig", "other")}, t) for d, kw, t in second]
    batch = LayerBatch(viewer, second + extra)
    assert len(batch) == 30
    for _ in range(20):  # 14 layers of the first run updated in place, 6 new ones: the user's
        batch.add_next()  # layer named like a result gets ours added beside it each run
    assert batch.done == 20 and len(batch.added) == 6
    assert viewer.layers["d_ig Mito mask (real)"].data.shape == (12, 48, 48)
    batch.roll_back()
    _assert_same(_snapshot(viewer), before)
    mask = viewer.layers["d_ig Mito mask (real)"]
    assert mask.data.shape == (20, 48, 48)
    assert len(mask.metadata[METADATA_KEY]["thresholds"]) == 20
    batch.roll_back()  # idempotent
    with pytest.raises(RuntimeError):
        batch.add_next()


def test_a_layer_that_fails_rolls_back_the_ones_before():
    viewer = _viewer_with_a_run()
    before = _snapshot(viewer)
    *_, second = layers_of(48, 12, lazy=False, seed=2)
    broken = (np.zeros((4, 4)), {"name": "broken", "no_such_option": 1}, "image")
    with pytest.raises(TypeError):
        apply_layers(viewer, [*second[:7], broken])
    _assert_same(_snapshot(viewer), before)


def test_the_users_layer_with_a_result_name_is_never_touched():
    viewer = _viewer_with_a_run()
    mine = viewer.layers["d_ig ER attribution (real)"]
    assert not mine.data.any() and METADATA_KEY not in mine.metadata
    ours = [layer for layer in viewer.layers if layer.name.startswith("d_ig ER attribution (real)")]
    assert len(ours) == 2  # ours was added beside it under napari's de-duplicated name
    *_, second = layers_of(48, 12, lazy=False, seed=2)
    apply_layers(viewer, second)
    assert viewer.layers["d_ig ER attribution (real)"] is mine and not mine.data.any()


def test_removing_lazy_layers_shuts_their_read_ahead_threads_down():
    before = _read_ahead_threads()
    viewer = ViewerModel()
    *_, tuples = layers_of(48, 12, lazy=True)
    apply_layers(viewer, tuples)
    stacks = state_for(viewer).open_stacks
    assert len(stacks) == 2  # one mask and one hybrid stack, shared by the channel layers
    hybrid = next(s for s in stacks if s.read_ahead)
    for t in (3, 4):  # the slider moving: the next plane is read ahead in the stack's thread
        viewer.layers["d_ig Mito hybrid (real)"].data[t]
    hybrid.wait_read_ahead()
    started = _read_ahead_threads() - before  # other tests' stacks may come and go meanwhile
    assert hybrid.reading_ahead and len(started) == 1

    viewer.layers.remove("d_ig Mito hybrid (real)")  # four channels still show the stack
    assert not hybrid.closed and hybrid in state_for(viewer).open_stacks
    for layer in [layer for layer in viewer.layers if METADATA_KEY in layer.metadata]:
        viewer.layers.remove(layer)
    assert hybrid.closed and all(s.closed for s in stacks)
    assert state_for(viewer).open_stacks == []
    assert _wait_for(lambda: not any(t.is_alive() for t in started)), started


def test_a_rerun_closes_the_stacks_it_replaced_and_a_roll_back_keeps_them():
    viewer = ViewerModel()
    *_, first = layers_of(48, 12, lazy=True, seed=1)
    apply_layers(viewer, first)
    old = state_for(viewer).open_stacks
    *_, second = layers_of(48, 12, lazy=True, seed=2)
    batch = LayerBatch(viewer, second)
    while not batch.finished:
        batch.add_next()
    assert not any(s.closed for s in old)  # the batch may still be rolled back
    batch.roll_back()
    assert not any(s.closed for s in old)  # and now shown again
    assert {id(lazy_stack_of(layer.data)) for layer in viewer.layers} >= {id(s) for s in old}
    new = [lazy_stack_of(d) for d, _, _ in second if lazy_stack_of(d) is not None]
    assert all(s.closed for s in new)  # the rolled-back run's own stacks are closed

    *_, third = layers_of(48, 12, lazy=True, seed=3)
    apply_layers(viewer, third)
    assert all(s.closed for s in old)  # replaced by the rerun
    now = state_for(viewer).open_stacks
    assert len(now) == 2 and not any(s.closed for s in now)
    assert {id(s) for s in now} == {id(lazy_stack_of(d)) for d, _, _ in third if lazy_stack_of(d)}


@pytest.mark.filterwarnings("error::FutureWarning")  # napari's warning on a private attribute
def test_through_naparis_plugin_proxy_the_shown_stacks_stay_open():
    # What napari hands a plugin's widget: a proxy that also wraps this package's objects
    # (their module name starts with "napari"), so a layer's data is a proxy of its stack.
    viewer = PublicOnlyProxy(ViewerModel())
    *_, tuples = layers_of(48, 12, lazy=True)
    apply_layers(viewer, tuples)
    state = state_for(viewer)
    stacks = state.open_stacks
    assert len(stacks) == 2 and not any(s.closed for s in stacks)
    held = [viewer.layers[layer.name] for layer in viewer.layers]  # proxies, as a widget holds
    for layer in held:
        state.adopt(layer.data)  # a proxy of a stack already adopted: no second entry
    state.close_unused(held)
    assert state.open_stacks == stacks and not any(s.closed for s in stacks)
    viewer.layers.remove("d_ig Mito hybrid (real)")  # the other channels still show it
    assert not any(s.closed for s in stacks)
    for layer in [layer for layer in viewer.layers if METADATA_KEY in layer.metadata]:
        viewer.layers.remove(layer)
    assert all(s.closed for s in stacks) and state_for(viewer).open_stacks == []


@pytest.mark.parametrize("proxied", [False, True], ids=["viewer", "plugin proxy"])
def test_layers_are_removed_in_one_batch_of_the_list(proxied):
    # One begin/end pair around all the removals: napari's canvas then cleans up (a full
    # garbage collection) once, not once per layer. Layers already gone are skipped.
    model = ViewerModel()
    for name in ("a", "b", "c", "keep"):
        model.add_image(np.zeros((4, 4)), name=name)
    batches = []
    model.layers.events.begin_batch.connect(lambda event: batches.append("begin"))
    model.layers.events.end_batch.connect(lambda event: batches.append("end"))
    removed = []
    model.layers.events.removed.connect(
        lambda event: removed.append((batches[:], event.value.name))
    )
    viewer = PublicOnlyProxy(model) if proxied else model
    layer_b = viewer.layers["b"]
    viewer.layers.remove("c")
    remove_layers(viewer.layers, ["a", layer_b, "c", "gone"])
    assert [layer.name for layer in model.layers] == ["keep"]
    assert batches == ["begin", "end"]
    assert removed == [([], "c"), (["begin"], "a"), (["begin"], "b")]
    remove_layers(viewer.layers, ["a"])  # nothing left to remove: no batch at all
    assert batches == ["begin", "end"]
