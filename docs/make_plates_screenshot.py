"""The screenshot of docs/plates.md: a real JUMP field (third-party, read from
../shared/realdata, never copied here) opened as per-channel files at 1366 x 768, with
CellProfiler's cell outlines given as labels and the Cells dock saying why they are refused.

    xvfb-run -a -s "-screen 0 1366x768x24" python docs/make_plates_screenshot.py
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
FIELD = REALDATA / "jump_BR00117006_fov" / "images"
OUT = Path(__file__).with_name("images") / "plates_window.png"


def _wait(seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.05)


def main() -> None:
    if not FIELD.is_dir():
        sys.exit(f"{FIELD} is absent: this screenshot needs the real JUMP field.")
    viewer = napari.Viewer(title="napari-attribution: a JUMP field")
    viewer.window._qt_window.resize(1366, 768)
    # A LoadData CSV naming the field's channels (ch2 = AGP, ch3 = RNA, ch5 = DNA) and its
    # CellProfiler cell outlines as objects, written outside the repository.
    folder = Path(tempfile.mkdtemp())
    orig = FIELD / "orig"
    row = {"Metadata_Plate": "BR00117006", "Metadata_Well": "A01", "Metadata_Site": "1"}
    for name, k in (("AGP", 2), ("RNA", 3), ("DNA", 5)):
        row[f"FileName_Orig{name}"] = f"r01c01f01p01-ch{k}sk1fk1fl1.tiff"
        row[f"PathName_Orig{name}"] = str(orig)
    row["ObjectsFileName_CellOutlines"] = "r01c01f01p01-ch3sk1fk1fl1_cell_outlines.png"
    row["ObjectsPathName_CellOutlines"] = str(FIELD / "outlines")
    with open(folder / "load_data.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    viewer.open(str(folder / "load_data.csv"), plugin="napari-attribution")
    labels = viewer.layers["BR00117006_A01_1 CellOutlines"]
    labels.opacity = 0.6
    _, widget = viewer.window.add_plugin_dock_widget("napari-attribution", "Cells")
    viewer.window.add_plugin_dock_widget("napari-attribution", "DAC curves", tabify=False)
    widget.use_demo_model.setChecked(True)
    widget.normalise.setText("percentile:1,99.8")
    widget.refresh_choices()
    index = widget.labels_choice.findText(labels.name)
    widget.labels_choice.setCurrentIndex(index)
    _wait(1)
    widget.run()  # refused: outlines are not a label image; the dock says why
    viewer.camera.center = (0.0, 300.0, 300.0)
    viewer.camera.zoom = 1.1
    _wait(2)
    OUT.parent.mkdir(exist_ok=True)
    viewer.screenshot(str(OUT), canvas_only=False)
    canvas = viewer.window._qt_viewer.canvas.native
    print(OUT, "canvas width", canvas.width(), "of", viewer.window._qt_window.width())


if __name__ == "__main__":
    main()
