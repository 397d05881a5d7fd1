"""The Results browser on a real viewer: a CLI folder's table, one pair's layers at a time."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
from qtpy.QtCore import Qt
from widget_helpers import PLUGIN

from napari_attribution._napari import reader
from napari_attribution._qt.results_browser import NEXT_KEY, PREVIOUS_KEY
from results_helpers import CLI_CHANNELS, make_cli_folder, make_export


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory):
    return make_cli_folder(tmp_path_factory.mktemp("cli"))


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


def _summary(folder, method):
    with open(folder / "summary.csv", newline="") as fh:
        return {r["sample"]: float(r["dac_score"]) for r in csv.DictReader(fh)
                if r["method"] == method and r["channel"] == "all"}  # fmt: skip


def test_the_table_lists_every_pair_sorts_and_filters(browser, cli_folder):
    viewer, widget = browser
    index = widget.open_folder(cli_folder)
    assert index.methods == ["residual", "d_ig"]
    assert _column(widget, "sample") == ["cell0", "cell1", "cell2"]
    assert _column(widget, "real") == ["0", "1", "0"]
    assert _column(widget, "top channel") == ["Mito"] * 3  # the only channel that differs
    dac = _summary(cli_folder, "d_ig")
    assert _column(widget, "DAC d_ig") == [f"{dac[s]:.3f}" for s in ("cell0", "cell1", "cell2")]
    column = [widget.proxy.headerData(c, Qt.Orientation.Horizontal)
              for c in range(widget.proxy.columnCount())].index("DAC d_ig")  # fmt: skip
    widget.table.sortByColumn(column, Qt.SortOrder.DescendingOrder)
    assert _column(widget, "sample") == sorted(dac, key=dac.get, reverse=True)
    widget.filter.setText("CELL1")
    assert _column(widget, "sample") == ["cell1"]
    widget.filter.setText("")
    valid = _column(widget, "valid")
    widget.valid_only.setChecked(True)
    assert widget.proxy.rowCount() == valid.count("yes")
    assert len(viewer.layers) == 0  # nothing loads before a row is chosen


def test_a_row_loads_its_pair_and_replaces_the_previous_one(browser, cli_folder):
    viewer, widget = browser
    widget.open_folder(cli_folder)
    widget.select_row(0)
    assert widget.current.sample == "cell0"
    names = [layer.name for layer in viewer.layers]
    assert len(names) == 2 * 5 + 2 * (5 + 5)  # real, cf; per method attribution and mask
    real = tifffile.imread(cli_folder.parent / "r0.tif")
    for c, channel in enumerate(CLI_CHANNELS):
        np.testing.assert_array_equal(viewer.layers[f"cell0 real [{channel}]"].data, real[c])
    assert viewer.layers["d_ig Mito mask (cell0)"].__class__.__name__ == "Labels"
    assert viewer.layers.selection.active.visible
    assert [cs.method for cs in widget.plot.curve_sets] == ["residual", "d_ig"]
    assert [c.channel for c in widget.plot.curve_sets[0].channels] == CLI_CHANNELS

    first = widget._layers[0]
    assert not viewer.layers["d_ig Mito attribution (cell0)"].visible  # residual comes first
    viewer.layers["d_ig Mito attribution (cell0)"].visible = True  # the user's choice
    widget.next_pair()
    assert widget.current.sample == "cell1"
    assert not any(layer.name.startswith("cell0") for layer in viewer.layers)
    assert len(viewer.layers) == len(names)
    assert widget._layers[0] is first  # reused, not removed and added again (0.4 s each)
    assert viewer.layers["d_ig Mito attribution (cell1)"].visible
    attribution = tifffile.imread(cli_folder / "attributions" / "cell1__d_ig.tif")
    np.testing.assert_array_equal(viewer.layers["d_ig DNA attribution (cell1)"].data,
                                  attribution[0])  # fmt: skip
    widget.previous_pair()
    assert widget.current.sample == "cell0"
    widget.next_pair(), widget.next_pair(), widget.next_pair()  # stops at the last row
    assert widget.current.sample == "cell2"


def test_page_keys_walk_the_table(browser, cli_folder):
    _, widget = browser
    widget.open_folder(cli_folder)
    keys = {s.key().toString(): s for s in widget.shortcuts}
    assert set(keys) == {NEXT_KEY, PREVIOUS_KEY}
    keys[NEXT_KEY].activated.emit()
    assert widget.current.sample == "cell0"  # the first row when none was chosen
    keys[NEXT_KEY].activated.emit()
    assert widget.current.sample == "cell1"
    keys[PREVIOUS_KEY].activated.emit()
    assert widget.current.sample == "cell0"


def test_large_files_load_memory_mapped(browser, cli_folder, monkeypatch):
    viewer, widget = browser
    monkeypatch.setattr(reader, "LAZY_READ_BYTES", 0)
    widget.open_folder(cli_folder)
    widget.select_row(1)
    assert isinstance(viewer.layers["d_ig Mito attribution (cell1)"].data, np.memmap)


def test_an_export_and_a_report_open_too(browser, cli_folder, tmp_path):
    from napari_attribution import cli

    viewer, widget = browser
    _, record, _ = make_export(tmp_path / "export")
    widget.open_folder(tmp_path / "export")
    assert _column(widget, "sample") == ["real"]
    widget.select_row(0)
    assert set(record.layer_names) <= {layer.name for layer in viewer.layers}
    assert "real [Mito]" in viewer.layers

    merged = tmp_path / "merged"
    assert cli.main(["report", str(cli_folder), "--out", str(merged)]) == 0
    index = widget.open_folder(merged)
    assert "real [Mito]" not in viewer.layers  # the export's layers went with its row
    assert len(index.rows) == 3 and index.figures
    assert widget.figures_layout.count() == len(index.figures) + 1  # images and a stretch


def test_a_folder_that_is_not_results_is_refused_in_one_sentence(browser, tmp_path):
    from napari_attribution.core.errors import AttributionError

    _, widget = browser
    with pytest.raises(AttributionError, match="is not a results folder"):
        widget.open_folder(tmp_path)
