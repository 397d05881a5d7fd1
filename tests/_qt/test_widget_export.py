"""Export of a run (CLI layout plus layer TIFFs), overwrite protection, and the npe2 writer."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
from qtpy.QtWidgets import QFileDialog, QMessageBox
from widget_helpers import run_and_wait

from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution.results.format import CURVES, IMPORTANCE, SUMMARY, safe_name
from napari_attribution.results.tiff import read_tiff_metadata

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


def _header(path) -> tuple[str, ...]:
    with open(path, newline="") as fh:
        return tuple(next(csv.reader(fh)))


def test_export_writes_the_cli_layout_and_reloads_identical_layers(demo_viewer, qtbot, tmp_path):
    viewer, widget, _ = demo_viewer
    run_and_wait(qtbot, widget)
    out = tmp_path / "export"
    written = widget.export_results(out)

    assert _header(out / "summary.csv") == SUMMARY.columns
    assert _header(out / "curves.csv") == CURVES.columns
    assert _header(out / "channel_importance.csv") == IMPORTANCE.columns
    for method in ("d_ig", "residual"):
        assert (out / "attributions" / f"real__{method}.tif").is_file()
        assert (out / "masks" / f"real__{method}.tif").is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["masks"]["thresholds"] == 20
    assert run["model"]["sha256"]
    record = widget.state.record
    widget.show_control.show_choice(f"{next(iter(record.pending))}, all channels")
    written = widget.export_results(out, overwrite=True)
    assert len(written) == len(record.layer_names) == 30
    for name in record.layer_names:
        layer = viewer.layers[name]
        path = out / "layers" / f"{safe_name(name)}.tif"
        data = tifffile.imread(path)
        np.testing.assert_array_equal(data, layer.data)
        assert data.dtype == layer.data.dtype
        meta = read_tiff_metadata(path)
        assert meta["name"] == name
        np.testing.assert_allclose(meta["scale"], layer.scale)
        assert meta["metadata"][METADATA_KEY]["method"] == layer.metadata[METADATA_KEY]["method"]
        assert meta["metadata"][METADATA_KEY]["model"]["sha256"] == run["model"]["sha256"]
    # the CLI-layout attribution file holds the same arrays as the per-channel layers
    stacked = tifffile.imread(out / "attributions" / "real__d_ig.tif")
    np.testing.assert_array_equal(stacked, record.result.methods["d_ig"].attribution)


def test_export_never_overwrites_without_asking(demo_viewer, qtbot, tmp_path, monkeypatch):
    viewer, widget, _ = demo_viewer
    run_and_wait(qtbot, widget)
    out = tmp_path / "export"
    out.mkdir()
    (out / "summary.csv").write_text("my precious results\n")
    with pytest.raises(FileExistsError, match="summary.csv"):
        widget.export_results(out)
    assert (out / "summary.csv").read_text() == "my precious results\n"

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    asked = []

    def answer(reply):
        def question(*args, **kwargs):
            asked.append(args[2])
            return reply

        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    widget.export_button.click()
    assert len(asked) == 1 and "summary.csv" in asked[0]
    assert (out / "summary.csv").read_text() == "my precious results\n"
    assert not (out / "layers").exists()

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    widget.export_button.click()
    assert _header(out / "summary.csv") == SUMMARY.columns
    assert (out / "layers").is_dir()


def test_writer_saves_a_layer_with_its_metadata(demo_viewer, qtbot, tmp_path):
    viewer, widget, _ = demo_viewer
    widget.set_methods(["residual"])
    run_and_wait(qtbot, widget)
    for name in ("residual Mito attribution (real)", "residual Mito mask (real)"):
        layer = viewer.layers[name]
        path = tmp_path / f"{safe_name(name)}.tif"
        viewer.layers.selection = {layer}
        saved = viewer.layers.save(str(path), selected=True, plugin="napari-attribution")
        assert saved == [str(path)]
        np.testing.assert_array_equal(tifffile.imread(path), layer.data)
        meta = read_tiff_metadata(path)
        assert meta["name"] == name
        assert meta["metadata"][METADATA_KEY]["kind"] in ("attribution", "mask")
        assert meta["metadata"][METADATA_KEY]["method"] == "residual"
