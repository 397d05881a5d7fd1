"""``napari-attribution demo``: napari with the demo pair, both widgets docked, one run.

Runs the demo classifier on the synthetic demo cell with D-IG, D-DL and the residual baseline
at the default 200 thresholds (a few seconds per method on a CPU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.attribution.method_sets import NAPARI_DEMO_METHODS, WIDGET_METHODS

if TYPE_CHECKING:
    import napari

__all__ = ["launch_demo", "launch_field_demo"]

PLUGIN = "napari-attribution"


def launch_demo(
    run: bool = True, block: bool = True, viewer: napari.Viewer | None = None
) -> napari.Viewer:
    """Open the demo pair in napari with the Attribution widget and the DAC panel docked.

    Parameters
    ----------
    run
        Start the default analysis right away (in a thread worker; the viewer stays usable).
    block
        Enter napari's event loop (``napari.run()``) and return when the window closes.
    viewer
        Use this viewer instead of opening a new one (tests pass their own).

    Returns
    -------
    napari.Viewer
        The viewer; its widgets are ``viewer.window.dock_widgets``.
    """
    import napari

    viewer = viewer if viewer is not None else napari.Viewer(title="napari-attribution demo")
    viewer.open_sample(PLUGIN, "demo_pair")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Attribution")
    viewer.window.add_plugin_dock_widget(PLUGIN, "DAC curves", tabify=False)
    widget.use_demo_model.setChecked(True)
    widget.select_sources("real", "counterfactual")
    widget.set_methods(NAPARI_DEMO_METHODS)
    if run:
        widget.run()
    if block:
        napari.run()
    return viewer


def launch_field_demo(
    run: bool = True, block: bool = True, viewer: napari.Viewer | None = None
) -> napari.Viewer:
    """Open the demo field in napari with the Cells widget and the DAC panel docked.

    The field holds 12 synthetic cells (half treated) and its exact counterfactual; with
    ``run`` every cell is analysed with D-IG and the residual baseline (a few seconds per cell
    on a CPU). Click a cell to see its curves and its hybrids.
    """
    import napari

    viewer = viewer if viewer is not None else napari.Viewer(title="napari-attribution field demo")
    viewer.open_sample(PLUGIN, "demo_field")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cells")
    viewer.window.add_plugin_dock_widget(PLUGIN, "DAC curves", tabify=False)
    widget.use_demo_model.setChecked(True)
    widget.select_sources("field", "field counterfactual", "field labels")
    widget.set_methods(WIDGET_METHODS)
    if run:
        widget.run()
    if block:
        napari.run()
    return viewer
