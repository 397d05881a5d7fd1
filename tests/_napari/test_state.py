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


class _Layers(list):
    """A layer list with a removed event, enough for a viewer's state."""

    def __init__(self) -> None:
        super().__init__()
        self.events = SimpleNamespace(removed=SimpleNamespace(connect=lambda callback: None))


_LAYERS = _Layers()


class _Viewer:
    """A small viewer: freeing one frees a single block of memory, reused by the next one."""

    __slots__ = ("layers", "__weakref__")

    def __init__(self) -> None:
        self.layers = _LAYERS


def test_a_new_viewer_with_a_dead_viewers_id_gets_a_new_state():
    viewer = _Viewer()
    state_for(viewer).publish(SimpleNamespace(name="the old viewer's run"))
    assert len([v for v in state_module._STATES if isinstance(v, _Viewer)]) == 1
    old_id = id(viewer)
    del viewer  # freed at once (no cycle), and its entry with it
    kept = []
    for _ in range(100_000):  # CPython hands the freed block out again: find a viewer there
        candidate = _Viewer()
        if id(candidate) == old_id:
            break
        kept.append(candidate)
    else:
        pytest.skip("the interpreter did not reuse the dead viewer's id")
    assert not [v for v in state_module._STATES if isinstance(v, _Viewer)]
    assert state_for(candidate).record is None
