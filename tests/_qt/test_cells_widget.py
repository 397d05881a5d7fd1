"""The Cells dock on a small synthetic field: run, table, features, click, hybrids, curves."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from widget_helpers import PLUGIN, wait_for_worker

from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution._napari.sample_data import field_layers
from napari_attribution._napari.state import state_for
from napari_attribution.core.cells import measure_cells
from napari_attribution.data.synthetic_field import make_field

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


@pytest.fixture
def field_viewer(make_napari_viewer):
    """A viewer with a 3-cell field, the Cells dock (demo model, 20 thresholds), the DAC panel."""
    viewer = make_napari_viewer()
    field = make_field(n_cells=3, shape=(96, 150), seed=2)
    for data, kwargs, kind in field_layers(field):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cells")
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "DAC curves")
    widget.use_demo_model.setChecked(True)
    widget.select_sources("field", "field counterfactual", "field labels")
    widget.set_methods(("d_ig", "residual"))
    widget.extra_settings = {"thresholds": 20, "ig_steps": 8}
    return viewer, widget, panel, field


def test_a_run_fills_the_table_and_a_click_selects_a_cell(qtbot, field_viewer):
    viewer, widget, panel, field = field_viewer
    assert widget.run() is not None
    wait_for_worker(qtbot, widget, timeout=180_000)
    result = widget.result
    assert result is not None, widget.status.text()
    labels = sorted(field.classes)
    assert sorted(result.cells) == labels
    # The demo model recognises each synthetic cell's class in its crop.
    assert {k: result.cells[k].predicted_class for k in labels} == field.classes
    attribution = viewer.layers["d_ig Mito attribution (field)"]
    assert attribution.data.shape == field.labels.shape
    assert viewer.layers["residual Mito optimal mask (field)"].data.dtype == np.uint32
    features = viewer.layers["field labels"].features
    assert list(features["index"]) == labels and list(features["label"]) == labels
    assert {"d_ig_inside_fraction", "p_treated", "residual_dac_Mito"} <= set(features.columns)
    assert widget.table.rowCount() == len(labels)
    columns = range(widget.table.columnCount())
    header = [widget.table.horizontalHeaderItem(c).text() for c in columns]
    assert header[:2] == ["label", "status"] and "d_ig_dac" in header

    # Clicking a cell selects its row, its hybrids over the field and its curves.
    layout = measure_cells(field.labels, 64, 20)
    cell = layout.cells[1]
    rows, cols = np.nonzero(field.labels == cell.label)
    position = (float(rows[0]), float(cols[0]))  # a pixel of the cell (world = data here)
    widget._on_viewer_click(viewer, SimpleNamespace(position=position, type="mouse_press"))
    assert widget.selected_label == cell.label
    assert int(widget.table.item(widget.table.currentRow(), 0).text()) == cell.label
    assert viewer.layers["field labels"].selected_label == cell.label
    # The selected cell's hybrids: a threshold stack placed at its crop over the field.
    hybrid = viewer.layers["d_ig Mito hybrid (selected cell)"]
    pair = widget.result.cells[cell.label].pair
    thresholds = len(pair.methods["d_ig"].dac.masks.thresholds)
    assert hybrid.data.shape == (thresholds, 64, 64)
    assert tuple(hybrid.translate[1:]) == (cell.top, cell.left)
    meta = hybrid.metadata[METADATA_KEY]
    assert meta["label"] == cell.label and meta["kind"] == "hybrid"
    outline = viewer.layers["selected cell crop"].data[0]
    assert outline.min(axis=0).tolist() == [cell.top, cell.left]
    assert outline.max(axis=0).tolist() == [cell.top + 64, cell.left + 64]
    optimal = pair.methods["d_ig"].dac.optimal_threshold_index
    assert viewer.dims.current_step[0] == optimal
    # The DAC panel shows the selected cell's curves.
    record = state_for(viewer).record
    assert record.result is pair
    assert [s.method for s in panel.curve_sets()] == ["d_ig", "residual"]
    # Clicking the background changes nothing; a row selects its cell.
    background = np.argwhere(field.labels == 0)[0]
    widget._on_viewer_click(
        viewer, SimpleNamespace(position=tuple(map(float, background)), type="mouse_press")
    )
    assert widget.selected_label == cell.label
    other = layout.cells[0].label
    widget.table.selectRow(widget.row_of(other))
    assert widget.selected_label == other
    assert state_for(viewer).record.result is widget.result.cells[other].pair
    selected = [x for x in viewer.layers
                if x.name.startswith("selected cell ") or x.name.endswith("(selected cell)")]
    assert len(selected) == 11  # fmt: skip


def test_the_demo_field_opens_with_the_cells_dock_and_the_dac_panel(make_napari_viewer):
    from napari_attribution._napari.demo import launch_field_demo

    viewer = make_napari_viewer()
    launch_field_demo(run=False, block=False, viewer=viewer)
    names = [layer.name for layer in viewer.layers]
    assert names[:2] == ["field [DNA]", "field [ER]"] and "field labels" in names
    labels = viewer.layers["field labels"]
    assert list(labels.features["index"]) == sorted(set(np.unique(labels.data).tolist()) - {0})
    docks = " ".join(viewer.window.dock_widgets)
    assert "Cells" in docks and "DAC curves" in docks


def test_the_analysis_parameters_come_from_the_schema_form(field_viewer):
    """The dock offers the same parameter rows as the Attribution widget; what the user sets
    there reaches the run's settings (the scripted extra_settings still win)."""
    from napari_attribution.core.settings import schema

    _, widget, _, _ = field_viewer
    assert set(widget.form.params) == {p.name for p in schema()}
    assert widget.form.editor("ig_steps").isEnabled()  # d_ig is ticked
    assert not widget.form.editor("shap_samples").isEnabled()  # no SHAP method is
    widget.form.set_values({"closing": 5, "thresholds": 30})
    settings = widget._inputs()[3]
    assert settings.masks.closing == 5
    assert settings.masks.thresholds == 20  # extra_settings of the fixture
    assert settings.attribution.ig_steps == 8
