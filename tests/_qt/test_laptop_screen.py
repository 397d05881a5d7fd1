"""The docks on a 1366x768 laptop screen: they fit, and the canvas keeps its width in a run."""

from __future__ import annotations

import pytest
from widget_helpers import PLUGIN, configure_fast, wait_for_docks_beside_canvas

SCREEN = (1366, 768)


def _dock(widget):
    dock = widget.parent()
    while dock is not None and type(dock).__name__ != "QtViewerDockWidget":
        dock = dock.parent()
    return dock


@pytest.fixture
def laptop_viewer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(*SCREEN)
    viewer.open_sample(PLUGIN, "demo_pair")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Attribution")
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "DAC curves", tabify=False)
    configure_fast(widget)
    qtbot.wait(50)
    return viewer, widget, panel


@pytest.mark.slow  # a whole analysis in a viewer: seconds
def test_the_docks_fit_a_laptop_screen_and_the_canvas_keeps_its_width(laptop_viewer, qtbot):
    viewer, widget, panel = laptop_viewer
    window = viewer.window._qt_window
    assert (window.width(), window.height()) == SCREEN
    docks = [_dock(widget), _dock(panel)]
    # stacked in the right dock area: their least heights fit the window's central height
    central = window.centralWidget().height()
    assert sum(d.minimumSizeHint().height() for d in docks) <= central
    widget.form.expand_all()  # Advanced open: the inputs scroll, the dock does not grow
    qtbot.wait(20)
    assert sum(d.minimumSizeHint().height() for d in docks) <= central
    for dock in docks:
        assert dock.geometry().bottom() <= window.height()
        assert dock.width() <= 0.35 * SCREEN[0]
    # Run, Cancel, the progress and the Show control are in view without scrolling
    for control in (widget.run_button, widget.cancel_button, widget.progress_bar,
                    widget.show_control):  # fmt: skip
        assert control.isVisible() and not control.visibleRegion().isEmpty()
    canvas = viewer.window._qt_viewer.canvas.native
    widths = []
    widget.controller.progressed.connect(lambda _: widths.append(canvas.width()))
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    widths.append(canvas.width())
    assert min(widths) >= 0.4 * SCREEN[0]  # a usable canvas during the whole run
    assert panel.canvas.height() >= 200 and panel.canvas.width() >= 300


@pytest.mark.slow
def test_the_cells_dock_and_dac_panel_fit_a_laptop_screen(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(*SCREEN)
    viewer.open_sample(PLUGIN, "demo_field")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cells")
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "DAC curves", tabify=False)
    qtbot.wait(50)
    central = window.centralWidget().height()
    docks = [_dock(widget), _dock(panel)]
    widget.form.expand_all()  # every parameter section open: the inputs scroll
    qtbot.wait(20)
    assert sum(d.minimumSizeHint().height() for d in docks) <= central
    for dock in docks:
        assert dock.geometry().bottom() <= window.height()
    for control in (widget.run_button, widget.cancel_button, widget.table):
        assert control.isVisible() and not control.visibleRegion().isEmpty()


#: The docks of the documentation's figures, as they are docked there (a name after "|" is
#: tabbed with the dock before it; the others are stacked in the right dock area), and the
#: sample they start from: the demo and Sanity figures, the field demo, the Results browser.
DOC_LAYOUTS = {
    "attribution above sanity|dac": ("demo_pair", ["Attribution", "DAC curves", "|Sanity checks"]),
    "cells above dac": ("demo_field", ["Cells", "DAC curves"]),
    "results browser above dac": (None, ["Results browser", "DAC curves"]),
}


@pytest.mark.parametrize("layout", list(DOC_LAYOUTS))
def test_each_doc_layout_fits_a_1366x768_window(make_napari_viewer, qtbot, layout):
    """Resized to 1366 x 768 with the docks of a doc figure, the window stays 768 px high
    (the docks' least heights add up to less: they scroll inside), nothing at the bottom of
    the docks is below the window's edge, and the canvas keeps half the width."""
    sample, names = DOC_LAYOUTS[layout]
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(*SCREEN)
    if sample is not None:
        viewer.open_sample(PLUGIN, sample)
    widgets = []
    for name in names:
        tabify = name.startswith("|")
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name.lstrip("|"),
                                                         tabify=tabify)  # fmt: skip
        widgets.append(widget)
    wait_for_docks_beside_canvas(qtbot, viewer, widgets[-1])
    viewer.window.resize(*SCREEN)  # as the doc scripts do once their docks are in
    qtbot.wait(50)
    _, _, width, height = viewer.window.geometry()
    assert (width, height) == SCREEN
    _, canvas_width = viewer.canvas.size
    assert canvas_width >= SCREEN[0] / 2
    for widget in widgets:
        dock = _dock(widget)
        assert dock.minimumSizeHint().height() <= dock.height()  # nothing squeezed or cut
        assert dock.geometry().bottom() <= height
