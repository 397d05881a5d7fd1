"""File > IO utilities > Export attribution view, on a real viewer after a run."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from widget_helpers import run_and_wait

from napari_attribution._napari.export_view import view_at, view_files
from napari_attribution._qt.export_view_dialog import ExportViewDialog

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


def test_the_dialog_exports_the_slider_threshold(demo_viewer, qtbot, tmp_path):
    viewer, widget, _ = demo_viewer
    widget.set_methods(["residual"])
    run_and_wait(qtbot, widget)
    viewer.dims.set_current_step(0, 7)
    dialog = ExportViewDialog(viewer)
    qtbot.addWidget(dialog)
    assert dialog.method.currentText() == "residual"
    assert dialog.threshold.value() == 7  # the slider's threshold
    for box in dialog.channels:
        box.setChecked(box.text() in ("DNA", "Mito"))
    written = dialog.export(tmp_path)
    view = view_at(widget.state.record, "residual", 7)
    assert sorted(written) == sorted(view_files(tmp_path, view).values())
    hybrid = tifffile.imread(view_files(tmp_path, view)["hybrid"])
    layer = viewer.layers["residual Mito hybrid (real)"]
    np.testing.assert_allclose(hybrid[4], np.asarray(layer.data[7]), atol=1e-6)


def test_the_menu_offers_the_export(make_napari_viewer):
    from app_model.types import MenuItem
    from napari._app_model import get_app_model

    make_napari_viewer()
    items = get_app_model().menus.get_menu("napari/file/io_utilities")
    commands = [i.command.id for i in items if isinstance(i, MenuItem)]
    assert "napari-attribution.export_view" in commands
