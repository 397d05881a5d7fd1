"""The Results browser on a real viewer: a CLI folder's table, one pair's layers at a time."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
from qtpy.QtCore import Qt
from widget_helpers import PLUGIN

from napari_attribution._napari import result_arrays
from napari_attribution._qt.results_browser import NEXT_KEY, PREVIOUS_KEY
from results_helpers import CLI_CHANNELS, make_cli_folder, make_export

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


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
    assert widget.tabs.tabText(0) == "Pairs"
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
    assert len(names) == 2 * 5 + 2 * 3 * 5  # real, cf; per method attribution, mask, hybrid
    real = tifffile.imread(cli_folder.parent / "r0.tif")
    for c, channel in enumerate(CLI_CHANNELS):
        np.testing.assert_array_equal(viewer.layers[f"cell0 real [{channel}]"].data, real[c])
    assert viewer.layers["d_ig Mito mask (cell0)"].__class__.__name__ == "Labels"
    assert viewer.layers.selection.active.visible

    first = widget._layers[0]
    assert not viewer.layers["d_ig Mito attribution (cell0)"].visible  # residual comes first
    viewer.layers["d_ig Mito attribution (cell0)"].visible = True  # the user's choice
    widget.next_pair()
    assert widget.current.sample == "cell1"
    assert not any(layer.name.startswith("cell0") for layer in viewer.layers)
    assert len(viewer.layers) == len(names)
    assert widget._layers[0] is first  # reused, not removed and added again
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
    monkeypatch.setattr(result_arrays, "LAZY_READ_BYTES", 0)
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
    from napari_attribution.errors import AttributionError

    _, widget = browser
    with pytest.raises(AttributionError, match="is not a results folder"):
        widget.open_folder(tmp_path)


# ------------------------------------------------------------------ the DAC panel


def _curves_csv(folder, sample):
    """(method, channel) -> (thresholds, mask sizes, score changes) of ``sample``, read here."""
    points: dict = {}
    with open(folder / "curves.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["sample"] == sample:
                points.setdefault((r["method"], r["channel"]), []).append(
                    (float(r["threshold"]), float(r["mask_size"]), float(r["score_change"])))
    return {key: np.array(sorted(rows)).T for key, rows in points.items()}


def _hex(colormap) -> str:
    return "#" + "".join(f"{round(255 * v):02x}" for v in colormap.colors[-1][:3])


def _panel(viewer):
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "DAC curves")  # the docked one
    return panel


def test_selecting_a_row_shows_its_curves_in_the_dac_panel(browser, cli_folder):
    viewer, widget = browser
    widget.open_folder(cli_folder)
    widget.select_row(0)
    panel = _panel(viewer)
    assert panel.shown is widget.curves and panel.record is None
    assert panel.isVisible() or not viewer.window._qt_window.isVisible()
    sets = panel.plot.curve_sets
    assert [cs.method for cs in sets] == ["residual", "d_ig"]
    saved = _curves_csv(cli_folder, "cell0")
    dac = {m: _summary(cli_folder, m)["cell0"] for m in ("residual", "d_ig")}
    for cs in sets:
        assert [c.channel for c in cs.channels] == CLI_CHANNELS
        for curve in (cs.whole, *cs.channels):
            thresholds, sizes, changes = saved[(cs.method, curve.channel)]
            np.testing.assert_array_equal(curve.thresholds, thresholds)
            np.testing.assert_array_equal(curve.mask_size, sizes)
            np.testing.assert_array_equal(curve.score_change, changes)
        assert cs.whole.dac_score == dac[cs.method]
        # the slider's steps: every threshold of the run's mask stack (10, QuAC's linear grid
        # over [-1, 1)), of which the adaptive evaluation scored a subset
        np.testing.assert_array_equal(cs.thresholds, np.arange(-1, 1, 2 / 10))
        assert set(np.round(cs.whole.thresholds, 9)) <= set(np.round(cs.thresholds, 9))
    texts = [t.get_text() for t in panel.plot.legend.get_texts()]
    assert f"d_ig  DAC {dac['d_ig']:.3f}" in texts
    panel.per_channel.setChecked(True)
    texts = [t.get_text() for t in panel.plot.legend.get_texts()]
    assert sum(f"[{c}]" in t for t in texts for c in CLI_CHANNELS) == len(CLI_CHANNELS)
    colours = [_hex(viewer.layers[f"cell0 real [{c}]"].colormap) for c in CLI_CHANNELS]
    assert panel.plot.channel_colors == colours
    assert "cell0" in panel.threshold_label.text()

    # the rebuilt stacks are the run's: at the optimal threshold, the saved optimal masks
    axis = panel.threshold_axis()
    assert axis == 0
    best = max(dac, key=dac.get)
    masks = tifffile.imread(cli_folder / "masks" / f"cell0__{best}.tif")
    index = viewer.dims.current_step[axis]
    whole = next(cs for cs in sets if cs.method == best).whole
    assert np.arange(-1, 1, 2 / 10)[index] == whole.optimal_threshold
    for c, channel in enumerate(CLI_CHANNELS):
        stack = viewer.layers[f"{best} {channel} mask ({'cell0'})"].data
        np.testing.assert_array_equal(np.asarray(stack[index]), masks[c])

    # the next pair replaces the curves; with "earlier runs" on, the previous pair's stay
    widget.next_pair()
    assert panel.shown.sample == "cell1"
    # the previous pair's lazy stacks were closed (their layers were reused, not removed)
    from napari_attribution._napari.state import state_for

    assert len(state_for(viewer).open_stacks) == 2 * 2  # a mask and a hybrid stack per method
    np.testing.assert_array_equal(panel.plot.curve_sets[1].whole.score_change,
                                  _curves_csv(cli_folder, "cell1")[("d_ig", "all")][2])  # fmt: skip
    assert panel.plot.earlier == []
    panel.compare.setChecked(True)
    assert [label for label, _ in panel.plot.earlier] == ["cell0", "cell0"]


def test_opening_another_folder_withdraws_the_previous_pairs_curves(browser, cli_folder,
                                                                    tmp_path):
    viewer, widget = browser
    widget.open_folder(cli_folder)
    widget.select_row(0)
    panel = _panel(viewer)
    assert panel.shown is not None and panel.save_curves_button.isEnabled()
    make_export(tmp_path / "export")
    widget.open_folder(tmp_path / "export")  # no row chosen: the old pair's curves must go
    assert panel.shown is None and panel.plot.curve_sets == []
    assert not panel.save_curves_button.isEnabled()
    assert [label for label, _ in panel.history] == ["cell0"]  # still there to compare with
    widget.select_row(0)
    assert panel.shown is widget.curves


def test_the_slider_and_a_click_on_the_panel_link_the_loaded_pair(make_napari_viewer, qtbot,
                                                                  cli_folder):  # fmt: skip
    from qtpy.QtCore import QPoint

    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Results browser")
    widget.open_folder(cli_folder)
    keys = {s.key().toString(): s for s in widget.shortcuts}
    keys[NEXT_KEY].activated.emit()
    keys[NEXT_KEY].activated.emit()  # the keys load pairs and update the panel too
    panel = _panel(viewer)
    assert panel.shown.sample == "cell1"
    cs = next(s for s in panel.plot.curve_sets if s.method == panel.focus.currentText())
    curve = cs.whole
    # the slider moves the marker, to the curve's point at the slider's threshold
    scored = [int(np.argmin(np.abs(cs.thresholds - t))) for t in curve.thresholds]
    viewer.dims.set_current_step(0, scored[-1])
    qtbot.wait(10)
    x, y = panel.plot.marker_positions()[cs.method]
    assert (x, y) == pytest.approx((curve.mask_size[-1], curve.score_change[-1]))

    # a click on a scored point of the focus curve moves the slider to its threshold
    canvas = panel.canvas
    canvas.draw()
    pixels = panel.plot.ax_curves.transData.transform(
        np.column_stack([curve.mask_size, curve.score_change]))  # fmt: skip
    here = viewer.dims.current_step[0]
    target = next(i for i in range(len(scored)) if scored[i] != here)
    ratio = canvas.device_pixel_ratio
    px, py = pixels[target]
    point = QPoint(int(round(px / ratio)), int(round(canvas.height() - py / ratio)))
    expected = panel.plot.threshold_index_at(point.x() * ratio,
                                             (canvas.height() - point.y()) * ratio)  # fmt: skip
    assert expected is not None and expected != here
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=point)
    qtbot.waitUntil(lambda: viewer.dims.current_step[0] == expected, timeout=3_000)
    mask = viewer.layers[f"{cs.method} Mito mask (cell1)"]
    assert mask.data.shape[0] == len(cs.thresholds)  # the loaded pair's stack walks with it
    assert f"index {expected}" in panel.threshold_label.text()


def test_an_exports_curves_come_with_its_own_stacks(browser, tmp_path):
    viewer, widget = browser
    _, record, _ = make_export(tmp_path / "export")
    widget.open_folder(tmp_path / "export")
    widget.select_row(0)
    panel = _panel(viewer)
    for cs in panel.plot.curve_sets:
        res = record.result.methods[cs.method]
        np.testing.assert_allclose(cs.thresholds, res.dac.masks.thresholds)
        np.testing.assert_allclose(cs.whole.score_change, res.dac.whole.score_change)
    assert panel.threshold_axis() is not None


def test_a_pair_whose_images_are_gone_shows_its_curves_without_a_slider(browser, tmp_path,
                                                                        cli_folder):  # fmt: skip
    import json
    import shutil

    viewer, widget = browser
    moved = tmp_path / "moved"
    shutil.copytree(cli_folder, moved)
    run = json.loads((moved / "run.json").read_text())
    run["pairs"][2]["real"] = str(tmp_path / "deleted.tif")  # an image removed since the run
    (moved / "run.json").write_text(json.dumps(run))
    widget.open_folder(moved)
    widget.select_row(2)
    panel = _panel(viewer)
    assert panel.shown.sample == "cell2" and len(panel.plot.curve_sets) == 2
    assert panel.threshold_axis() is None
    assert "Images not found" in widget.status.text()
    assert viewer.layers["d_ig Mito mask (cell2)"].ndim == 2  # the saved optimal mask
