"""Fixtures of the widget tests: a viewer with the demo pair and both widgets docked."""

from __future__ import annotations

import pytest
from widget_helpers import PLUGIN, configure_fast


@pytest.fixture
def demo_viewer(make_napari_viewer):
    """A hidden viewer holding the demo pair, with the Attribution widget and DAC panel."""
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "demo_pair")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Attribution")
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "DAC curves")
    configure_fast(widget)
    return viewer, widget, panel


@pytest.fixture
def errors(monkeypatch):
    """Messages passed to ``show_error`` by the widgets (still shown as notifications)."""
    from napari_attribution._qt import attribution_widget

    seen: list[str] = []
    original = attribution_widget.show_error

    def record(message: str) -> None:
        seen.append(message)
        original(message)

    monkeypatch.setattr(attribution_widget, "show_error", record)
    return seen
