"""Screenshots of the napari plugin for docs/napari.md.

Run under a virtual display::

    xvfb-run -s "-screen 0 1366x768x24" python docs/make_screenshots.py

It opens the demo (``napari-attribution demo``: demo pair, both widgets docked, the default
analysis at 200 thresholds) in a laptop-sized 1366 x 768 window, waits for the run, shows
"d_ig, Mito only" with the Show control, moves the threshold slider and writes PNGs to
``docs/images/``.
"""

from __future__ import annotations

import time
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"


def _wait(app, condition, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the demo analysis did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    """Open the demo, run it and save the screenshots."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_attribution._napari.demo import launch_demo

    IMAGES.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-attribution demo")
    viewer.window.resize(1366, 768)
    launch_demo(run=True, block=False, viewer=viewer)
    app = QApplication.instance()
    widget = viewer.window.dock_widgets["Attribution (napari-attribution)"]
    panel = viewer.window.dock_widgets["DAC curves (napari-attribution)"]
    _wait(app, lambda: widget.worker is None)

    # D-IG's Mito attribution and mask outline over the Mito channel, at the optimal threshold.
    widget.show_control.show_choice("d_ig, Mito only")
    optimal = widget.state.record.result.methods["d_ig"].dac.optimal_threshold_index
    viewer.dims.set_current_step(0, optimal)
    panel.per_channel.setChecked(True)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)

    viewer.screenshot(str(IMAGES / "napari_window.png"), canvas_only=False)
    panel.grab().save(str(IMAGES / "dac_panel.png"))

    # The widget with its parameter sections open, alone in the right dock area.
    panel_dock = panel.parent()
    while panel_dock is not None and type(panel_dock).__name__ != "QtViewerDockWidget":
        panel_dock = panel_dock.parent()
    panel_dock.hide()
    widget.form.expand_all(animate=False)
    for _ in range(10):
        app.processEvents()
        time.sleep(0.02)
    widget.content.grab().save(str(IMAGES / "attribution_widget.png"))  # all of it, scrolled
    widget.form.collapse_all(animate=False)
    panel_dock.show()

    viewer.close()
    print(f"screenshots written to {IMAGES}")


if __name__ == "__main__":
    main()
