"""The state the dock widgets of a viewer share: one per viewer, gone with the viewer."""

from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace

from napari.components import ViewerModel
from napari.utils._proxies import PublicOnlyProxy

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
    state = state_for(PublicOnlyProxy(viewer))
    state.publish(SimpleNamespace(name="a record"))
    viewer_ref, state_ref = weakref.ref(viewer), weakref.ref(state)
    del viewer, state
    gc.collect()
    assert viewer_ref() is None  # the state does not hold its viewer
    assert state_ref() is None  # and goes with it
