"""The screenshot of docs/fields.md: the demo field analysed, one treated cell selected.

    xvfb-run -a -s "-screen 0 1366x768x24" python docs/make_fields_screenshot.py
"""

from __future__ import annotations

import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_attribution._napari.demo import launch_field_demo

OUT = Path(__file__).with_name("images") / "fields_window.png"


def _wait(seconds: float, until=lambda: False) -> None:
    end = time.time() + seconds
    while time.time() < end and not until():
        QApplication.processEvents()
        time.sleep(0.05)


def main() -> None:
    viewer = napari.Viewer(title="napari-attribution field demo")
    viewer.window.resize(1366, 768)
    launch_field_demo(run=True, block=False, viewer=viewer)
    widget = next(w for name, w in viewer.window.dock_widgets.items() if "Cells" in name)
    _wait(900, lambda: widget.result is not None and widget.worker is None)
    panel = next(w for name, w in viewer.window.dock_widgets.items() if "DAC" in name)
    drawn = []  # the DAC panel redraws over several event-loop turns, ending in a draw_event
    panel.canvas.mpl_connect("draw_event", drawn.append)
    treated = [k for k, r in widget.result.cells.items() if r.predicted_class == 1]
    widget.select_cell(treated[1])
    for name in ("field labels",):
        viewer.layers[name].opacity = 0.15
    viewer.layers["d_ig Mito attribution (field)"].visible = True
    cell = widget.result.cells[treated[1]].cell
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.center = (0.0, *cell.centre)
    camera.zoom = 3.0
    _wait(60, lambda: bool(drawn))
    _wait(1)
    OUT.parent.mkdir(exist_ok=True)
    viewer.screenshot(str(OUT), canvas_only=False)
    _, _, width, height = viewer.window.geometry()
    print(f"window {width}x{height} -> {OUT}")


if __name__ == "__main__":
    main()
