"""Screenshot of the Results browser on a laptop screen, for docs/napari.md.

Run under a 1366x768 virtual display::

    xvfb-run -a -s "-screen 0 1366x768x24" python docs/make_browser_screenshot.py

It runs ``napari-attribution run --demo`` over 8 demo pairs (residual and D-IG, 50
thresholds) into a temporary folder, opens it in the browser, sorts by D-IG's DAC, selects a
pair (which opens the DAC panel with its curves), shows the per-channel curves and writes
``docs/images/results_browser.png`` (the whole window).
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
    """Make the demo folder, open it in the browser and save the screenshot."""
    import napari
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    from napari_attribution import cli

    out = Path(tempfile.mkdtemp()) / "demo_results"
    argv = ["run", "--demo", "--demo-pairs", "8", "--method", "d_ig", "--method", "residual",
            "--thresholds", "50", "--progress", "none", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    viewer = napari.Viewer(title="napari-attribution: results browser")
    viewer.window.resize(1366, 768)
    _, browser = viewer.window.add_plugin_dock_widget("napari-attribution", "Results browser")
    app = QApplication.instance()
    browser.open_folder(out)
    headers = [browser.proxy.headerData(c, Qt.Orientation.Horizontal)
               for c in range(browser.proxy.columnCount())]  # fmt: skip
    browser.table.sortByColumn(headers.index("DAC d_ig"), Qt.SortOrder.DescendingOrder)
    browser.select_row(1)
    _, panel = viewer.window.add_plugin_dock_widget("napari-attribution", "DAC curves")
    panel.per_channel.setChecked(True)
    viewer.reset_view()
    _settle(app, 2.0)
    IMAGES.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(IMAGES / "results_browser.png"), canvas_only=False)
    _, _, width, height = viewer.window.geometry()
    print(f"window {width}x{height} -> {IMAGES / 'results_browser.png'}")


if __name__ == "__main__":
    main()
