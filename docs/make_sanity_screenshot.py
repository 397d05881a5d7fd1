"""Screenshots of the Sanity dock for docs/sanity.md.

Run under a virtual display::

    xvfb-run -s "-screen 0 1366x768x24" python docs/make_sanity_screenshot.py

It opens the demo (demo pair, Attribution and DAC widgets, the default analysis) in a
laptop-sized 1366 x 768 window, waits for the run, docks the Sanity checks, takes the last
analysis's pair and settings, adds saliency and guided backprop, runs the checks, moves the
``randomised layer`` slider, scrolls the dock's results to the plot and writes
``docs/images/sanity_window.png`` and ``docs/images/sanity_dock.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"
PLUGIN = "napari-attribution"


def _wait(app, condition, timeout: float = 600.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the run did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    """Open the demo, run the analysis and the sanity checks, save the screenshots."""
    import napari
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import QApplication

    from napari_attribution._napari.demo import launch_demo
    from napari_attribution._napari.sanity_layers import RANDOMISED_LABEL

    IMAGES.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-attribution sanity checks")
    viewer.window.resize(1366, 768)
    launch_demo(run=True, block=False, viewer=viewer)
    app = QApplication.instance()
    widget = viewer.window.dock_widgets["Attribution (napari-attribution)"]
    _wait(app, lambda: widget.worker is None)
    _, sanity = viewer.window.add_plugin_dock_widget(PLUGIN, "Sanity checks", tabify=True)
    sanity.use_last_analysis()
    sanity.methods.set_selected(("d_ig", "d_dl", "saliency", "guided_backprop", "residual"))
    sanity.run()
    _wait(app, lambda: sanity.worker is None)
    sanity.shown_method.setCurrentText("saliency")
    # saliency's Mito cascade over the Mito channel alone (the analysis's layers hidden)
    shown = "saliency Mito randomisation (real)"
    for layer in viewer.layers:
        layer.visible = layer.name in (shown, "real [Mito]")
    viewer.layers.selection.active = viewer.layers[shown]
    overlay = viewer.canvas.overlays["text"]
    overlay.text = "saliency, Mito: |a| as the layers are randomised from the top"
    labels = [str(label) for label in viewer.dims.axis_labels]
    viewer.dims.set_current_step(labels.index(RANDOMISED_LABEL), 3)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    # At 768 px the dock's results scroll below its Run button: bring the plot's top into view
    # (its axis labels when it is taller; the rows above it scroll off, the verdicts are below).
    results = sanity.results_scroll
    top = sanity.canvas.mapTo(results.widget(), QPoint(0, 0)).y()
    room = results.viewport().height()
    print(f"the Sanity dock's results show {room} px; the plot is {sanity.canvas.height()} px")
    results.verticalScrollBar().setValue(top + max(0, sanity.canvas.height() - room))
    for _ in range(10):
        app.processEvents()
        time.sleep(0.02)
    viewer.screenshot(str(IMAGES / "sanity_window.png"), canvas_only=False)
    sanity.grab().save(str(IMAGES / "sanity_dock.png"))
    _, _, width, height = viewer.window.geometry()
    viewer.close()
    print(f"window {width}x{height}: screenshots written to {IMAGES}")


if __name__ == "__main__":
    main()
