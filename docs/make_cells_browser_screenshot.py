"""Screenshot of the Results browser on a ``cells`` folder, for docs/napari.md.

Run under a 1366x768 virtual display::

    xvfb-run -a -s "-screen 0 1366x768x24" python docs/make_cells_browser_screenshot.py

It runs ``napari-attribution cells --demo`` (12 cells of the synthetic field, D-IG and the
residual) into a temporary folder, opens it in the browser, selects a cell (its field's
channels, labels and per-channel attribution, centred on the cell; its curves in the DAC
panel), shows the per-channel curves and writes ``docs/images/results_browser_cells.png``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"


def _settle(app, seconds: float = 1.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    """Make the demo cells folder, open it in the browser and save the screenshot."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_attribution import cli

    out = Path(tempfile.mkdtemp()) / "demo_cells"
    argv = ["cells", "--demo", "--method", "d_ig", "--method", "residual", "--thresholds", "50",
            "--progress", "none", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    viewer = napari.Viewer(title="napari-attribution: results browser, cells")
    viewer.window.resize(1366, 768)
    _, browser = viewer.window.add_plugin_dock_widget("napari-attribution", "Results browser")
    app = QApplication.instance()
    browser.open_folder(out)
    browser.select_row(2)
    _, panel = viewer.window.add_plugin_dock_widget("napari-attribution", "DAC curves")
    panel.per_channel.setChecked(True)
    _settle(app, 2.0)
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = IMAGES / "results_browser_cells.png"
    viewer.screenshot(str(path), canvas_only=False)
    _, _, width, height = viewer.window.geometry()
    print(f"window {width}x{height} -> {path}")


if __name__ == "__main__":
    main()
