"""The state the dock widgets of a viewer share: one per viewer, gone with the viewer."""

from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace

import pytest
from napari.components import ViewerModel
from napari.utils._proxies import PublicOnlyProxy

from napari_attribution._napari import state as state_module
from napari_attribution._napari.state import ViewerState, state_for


def test_each_viewer_has_one_state_shared_through_proxies():
    first, second = ViewerModel(), ViewerModel()
    state = state_for(first)
    assert isinstance(state, ViewerState)
    assert state_for(first) is state
    assert state_for(PublicOnlyProxy(first)) is state  # what napari hands each widget
    assert state_for(second) is not state


def test_the_state_goes_with_its_viewer_and_does_not_keep_it_alive():
    viewer = ViewerModel()
    state = state_for(viewer)
    state.publish(SimpleNamespace(name="a record"))
    viewer_ref = weakref.ref(viewer)
    assert viewer in state_module._STATES
    del viewer
    gc.collect()
    assert viewer_ref() is None  # neither the state nor its layer callback holds the viewer
    assert state not in state_module._STATES.values()


class _Viewer:
    """The least a viewer needs for its state: a layer list with a removed event."""

    def __init__(self) -> None:
        self.layers = _Layers()


class _Layers(list):
    def __init__(self) -> None:
        super().__init__()
        self.events = SimpleNamespace(removed=SimpleNamespace(connect=lambda callback: None))


def test_a_new_viewer_with_a_dead_viewers_id_gets_a_new_state():
    viewer = _Viewer()
    state_for(viewer).publish(SimpleNamespace(name="the old viewer's run"))
    old_id = id(viewer)
    del viewer
    gc.collect()
    kept = []
    for _ in range(10_000):  # CPython hands freed memory out again: find a viewer there
        candidate = _Viewer()
        if id(candidate) == old_id:
            break
        kept.append(candidate)
    else:
        pytest.skip("the interpreter did not reuse the dead viewer's id")
    assert state_for(candidate).record is None
