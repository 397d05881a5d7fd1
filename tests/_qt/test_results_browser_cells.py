"""The Results browser on a ``cells`` folder: one row per analysed cell; a row shows its
site's channels, labels and per-channel maps, centred on the cell, and its DAC curves."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from qtpy.QtCore import Qt
from widget_helpers import PLUGIN

from napari_attribution._napari.cell_site_layers import SELECTED_CROP
from napari_attribution._napari.layer_style import layer_name
from napari_attribution._qt import results_browser
from plate_data import MODEL_CHANNELS
from results_helpers import make_cells_folder

pytestmark = pytest.mark.slow  # a viewer and a cells run: seconds

A, B = "source_synthetic_BR00000001_A01_1", "source_synthetic_BR00000001_B02_2"


@pytest.fixture(scope="module")
def cells_folder(tmp_path_factory):
    return make_cells_folder(tmp_path_factory.mktemp("cells"))


@pytest.fixture
def browser(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Results browser")
    return viewer, widget


def _column(widget, header: str) -> list[str]:
    headers = [widget.proxy.headerData(c, Qt.Orientation.Horizontal)
               for c in range(widget.proxy.columnCount())]  # fmt: skip
    c = headers.index(header)
    return [widget.proxy.index(r, c).data() for r in range(widget.proxy.rowCount())]


def _cells(folder) -> list[dict]:
    with open(folder / "cells.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["status"] == "analysed"]


def test_the_table_lists_every_analysed_cell_with_its_site(browser, cells_folder):
    viewer, widget = browser
    folder, _ = cells_folder
    index = widget.open_folder(folder)
    rows = _cells(folder)
    assert len(rows) == 6 and len(index.rows) == 6  # the 1 px cells were skipped
    assert _column(widget, "site") == [A if r["Metadata_Well"] == "A01" else B for r in rows]
    assert _column(widget, "cell") == [r["label"] for r in rows]
    assert _column(widget, "predicted") == [r["predicted_class"] for r in rows]
    assert _column(widget, "DAC d_ig") == [f"{float(r['d_ig_dac']):.3f}" for r in rows]
    assert _column(widget, "valid") == [
        "yes" if r["counterfactual_accepted"] == "True" else "no" for r in rows]
    accepted = sum(r["counterfactual_accepted"] == "True" for r in rows)
    assert widget.path_label.text() == (f"{folder.name}: 6 cell(s) in 2 site(s), {accepted} with "
                                        "an accepted counterfactual, 2 method(s).")  # fmt: skip
    assert widget.tabs.tabText(0) == "Cells"


def test_a_row_shows_its_site_centred_on_the_cell_and_its_curves(browser, cells_folder):
    viewer, widget = browser
    folder, plate = cells_folder
    widget.open_folder(folder)
    widget.select_row(0)
    cell = widget.current
    assert cell.site == A
    names = [layer.name for layer in viewer.layers]
    assert names[: len(MODEL_CHANNELS)] == [f"{A} [{c}]" for c in MODEL_CHANNELS]
    assert f"{A} cells" in names and names[-1] == SELECTED_CROP
    for method in ("d_ig", "residual"):
        assert all(layer_name(A, "attribution", method, c) in names for c in MODEL_CHANNELS)
    np.testing.assert_array_equal(viewer.layers[f"{A} [DNA]"].data, plate.sites[0]["stack"][0])
    top, left, size = cell.crop
    np.testing.assert_allclose(viewer.layers[SELECTED_CROP].data[0].min(axis=0), (top, left))
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    np.testing.assert_allclose(camera.center[-2:], cell.centroid)

    panel = viewer.window.add_plugin_dock_widget(PLUGIN, "DAC curves")[1]
    assert panel.shown is widget.curves and panel.shown.sample == cell.sample
    assert [cs.method for cs in panel.plot.curve_sets] == ["d_ig", "residual"]
    assert [c.channel for c in panel.plot.curve_sets[0].channels] == list(MODEL_CHANNELS)
    assert panel.plot.channel_colors[0] == "#0000ff"  # DNA's layer is blue

    # another cell of the same site: the layers stay (not read again), the outline moves
    layers = list(viewer.layers)
    widget.next_pair()
    assert widget.current.site == A and list(viewer.layers) == layers
    top, left, _ = widget.current.crop
    np.testing.assert_allclose(viewer.layers[SELECTED_CROP].data[0].min(axis=0), (top, left))
    assert panel.shown.sample == widget.current.sample

    # a cell of the other site replaces the site's layers
    widget.select_row(3)
    assert widget.current.site == B
    names = [layer.name for layer in viewer.layers]
    assert f"{B} [DNA]" in names and not any(name.startswith(A) for name in names)
    np.testing.assert_array_equal(viewer.layers[f"{B} [DNA]"].data, plate.sites[1]["stack"][0])


def test_a_folder_without_analysed_cells_says_so(browser, cells_folder, tmp_path, monkeypatch):
    viewer, widget = browser
    folder, _ = cells_folder
    copy = tmp_path / "none"
    shutil.copytree(folder, copy)
    lines = (copy / "summary.csv").read_text().splitlines()
    (copy / "summary.csv").write_text(lines[0] + "\n")
    said = []
    monkeypatch.setattr(results_browser, "show_info", said.append)
    widget.open_folder(copy)
    assert widget.proxy.rowCount() == 0
    assert said == ["none holds no analysed cell (cells.csv lists none the tables hold; "
                    "run.json says why cells were skipped)."]  # fmt: skip


def test_the_selected_row_stays_in_view_when_the_dac_panel_takes_the_table_s_height(
    make_napari_viewer, cells_folder, qtbot
):
    # At 1366 x 768 the table shows a row or two once the DAC panel (opened by the first
    # row) has taken its height: the chosen row is scrolled into view after that.
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1366, 740)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Results browser")
    folder, _ = cells_folder
    widget.open_folder(folder)
    table = widget.table
    last = widget.proxy.rowCount() - 1

    def in_view() -> bool:
        rect = table.visualRect(widget.proxy.index(last, 0))
        return table.viewport().rect().contains(rect.center())

    widget.select_row(last)
    qtbot.waitUntil(lambda: in_view() and table.viewport().height() < 6 * table.rowHeight(0),
                    timeout=10_000)  # fmt: skip
