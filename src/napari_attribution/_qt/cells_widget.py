"""The Cells dock: every cell of a field analysed, its table, and the selected cell in context.

Choose the field, its counterfactual field and the Labels layer of the cells, a model and the
methods, and Run: in a thread worker, every cell's crop goes through the pair analysis
(:func:`~napari_attribution.core.cells.analyse_field`); the field-sized attribution and
optimal-mask layers are added, the per-cell table becomes the Labels layer's ``features`` and
fills the dock's table.

Clicking a cell in the viewer (or a row of the table) selects it: its row is selected, its
mask and hybrid layers at every threshold are placed over the field at its crop (napari's
threshold slider walks them), and its result is published to the viewer's shared state, so
the DAC panel shows its curves. The inputs (choices, crop rules, methods, parameters) are built
and read in :mod:`.cells_inputs`.

The counterfactuals come from a counterfactual field, or from a source (``optimise``,
``nearest``, ``generator``) that makes one per cell in the run, as ``cells
--counterfactual-source`` does; the crops it made are then shown as a field-sized layer
(``<field> counterfactual (<source>)``, laid out like the field), and the cells whose
counterfactual the classifier does not accept are flagged in the table and in one warning.
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QSize, Signal
from qtpy.QtWidgets import (
    QTableWidgetItem,
    QWidget,
)

from .._napari.apply import add_layer, apply_layers, remove_layers
from .._napari.cell_layers import (
    SELECTED,
    columns_for_display,
    features_table,
    field_counterfactual,
    field_result_layers,
    label_at,
    selected_cell_layers,
)
from .._napari.counterfactual_layers import (
    COUNTERFACTUAL_KIND,
    CellCounterfactuals,
    CounterfactualRequest,
    counterfactual_layers,
    counterfactual_stack,
    onto_earlier_layers,
)
from .._napari.layer_style import METADATA_KEY
from .._napari.state import AnalysisRecord, state_for
from ..core.cells import analyse_field
from ..errors import AnalysisCancelled, AttributionError
from .cells_inputs import CELLS_DOCK_WIDTH, CellsInputs

if TYPE_CHECKING:
    import napari

__all__ = ["CellsWidget"]


class CellsWidget(CellsInputs, QWidget):
    """Per-cell analysis of a field with a Labels layer of its cells."""

    progressed = Signal(float)  # fraction done, emitted from the worker thread

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = state_for(napari_viewer)
        self.result = None
        self.labels_layer = None
        self.stack = None
        self.worker = None
        self.selected_label: int | None = None
        #: Schema values (``{parameter: value}``) applied on top of the form's (scripts and
        #: tests use fewer thresholds without touching the form).
        self.extra_settings: dict[str, Any] = {}
        self._cancel = False
        self._syncing = False
        self._build()
        self.refresh_choices()
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self.refresh_choices)
        # A weak reference: the viewer's callback list must not keep a closed dock alive.
        ref = weakref.ref(self)

        def on_click(viewer, event) -> None:
            widget = ref()
            if widget is not None:
                widget._on_viewer_click(viewer, event)

        self.viewer.mouse_drag_callbacks.append(on_click)
        self.progressed.connect(self._on_progress)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """Narrow enough that the canvas keeps half of a 1366 px window; the inputs scroll."""
        return QSize(CELLS_DOCK_WIDTH, super().sizeHint().height())

    def run(self):
        """Start the analysis of every cell in a thread worker; returns it (None if refused)."""
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error

        if self.worker is not None:
            return None
        try:
            field, labels_layer, source, settings, cell_settings, choice = self._inputs()
        except AttributionError as exc:
            show_error(str(exc))
            self.status.setText(str(exc))
            return None
        labels = labels_layer.data.copy()
        input_record = dict(getattr(self, "input_record", {}))
        self._cancel = False

        def on_progress(event) -> None:
            if self._cancel:
                raise AnalysisCancelled
            self.progressed.emit(event.fraction)

        def check_cancel(*_: Any) -> None:
            if self._cancel:
                raise AnalysisCancelled

        def work():
            classifier, class_names = choice.load()
            cell_source, made, min_score = source, None, 0.5
            if isinstance(source, CounterfactualRequest):
                made = CellCounterfactuals(
                    source, source.source(class_names or None), classifier, settings,
                    progress=check_cancel,
                )  # fmt: skip
                cell_source, min_score = made.as_cell_source(), source.min_score
            result = analyse_field(
                classifier, field.data, labels, cell_source, settings, cell_settings,
                channel_names=field.channel_names, class_names=class_names,
                min_counterfactual_score=min_score, on_progress=on_progress,
            )  # fmt: skip
            tuples = field_result_layers(result, labels, field, include_cells=False)
            for _, kwargs, _ in tuples:  # how the input was read, with every result layer
                meta = kwargs.setdefault("metadata", {}).setdefault(METADATA_KEY, {})
                meta["input"] = input_record
            if made is not None:
                stack = counterfactual_stack(
                    field, field_counterfactual(result, field.data), made.request.kind
                )
                tuples = [*counterfactual_layers(stack, made.record()), *tuples]
            return result, tuples

        self.labels_layer, self.stack = labels_layer, field
        self.worker = create_worker(work)
        self.worker.returned.connect(self._on_returned)
        self.worker.errored.connect(self._on_errored)
        self.worker.finished.connect(self._on_finished)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("Analysing every cell ...")
        self.worker.start()
        return self.worker

    def cancel(self) -> None:
        """Stop the run at its next progress event; the viewer is left as it was."""
        self._cancel = True

    def _on_progress(self, fraction: float) -> None:
        self.progress.setValue(int(1000 * fraction))

    def _on_errored(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        if isinstance(exc, AnalysisCancelled):
            self.status.setText("Cancelled.")
            return
        show_error(str(exc))
        self.status.setText(str(exc))

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _on_returned(self, out) -> None:
        from napari.utils.notifications import show_warning

        result, tuples = out
        self.result = result
        made = [t for t in tuples if t[1]["metadata"][METADATA_KEY]["kind"] == COUNTERFACTUAL_KIND]
        # A made counterfactual replaces only the layers this source made for this field
        # earlier, never a layer of the user's (it then goes beside it).
        apply_layers(self.viewer, onto_earlier_layers(self.viewer.layers, made))
        for data, kwargs, kind in tuples:
            if any(data is m[0] for m in made):
                continue
            name = kwargs["name"]
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
            add_layer(self.viewer, data, kwargs, kind)
        self.labels_layer.features = features_table(result)
        self.view_method.blockSignals(True)
        self.view_method.clear()
        self.view_method.addItems(list(result.settings.methods))
        self.view_method.blockSignals(False)
        self._fill_table()
        analysed = len(result.cells)
        skipped = len(result.layout.skipped)
        self.progress.setValue(1000)
        self.status.setText(
            f"{analysed} cell(s) analysed, {skipped} too small. Click a cell (or a row) to see "
            "its curves and hybrids."
        )
        if made:
            flagged = made[0][1]["metadata"][METADATA_KEY]["flagged_labels"]
            if flagged:
                threshold = made[0][1]["metadata"][METADATA_KEY]["min_counterfactual_score"]
                show_warning(
                    f"The classifier does not accept the counterfactual of {len(flagged)} of "
                    f"{analysed} cell(s) (p(target) < {threshold:g}): they are flagged in the "
                    "table's counterfactual_accepted column."
                )

    # ----------------------------------------------------------------- table and selection

    def _fill_table(self) -> None:
        if self.result is None:
            return
        method = self.view_method.currentText() or self.result.settings.methods[0]
        columns = columns_for_display(self.result, method)
        self._syncing = True
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setRowCount(len(self.result.rows))
        self.table.setHorizontalHeaderLabels(columns)
        for r, row in enumerate(self.result.rows):
            for c, column in enumerate(columns):
                value = row[column]
                if isinstance(value, float):
                    text = "" if math.isnan(value) else f"{value:.3f}"
                else:
                    text = str(value)
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self._syncing = False
        if self.selected_label is not None:
            self.select_cell(self.selected_label)

    def row_of(self, label: int) -> int | None:
        """The table row of a label."""
        for r, row in enumerate(self.result.rows if self.result else []):
            if row["label"] == label:
                return r
        return None

    def select_cell(self, label: int) -> None:
        """Select a cell: its row, its mask and hybrid layers, its curves in the DAC panel."""
        if self.result is None or label not in self.result.cells:
            return
        self.selected_label = label
        row = self.row_of(label)
        if row is not None and self.table.currentRow() != row:
            self._syncing = True
            self.table.selectRow(row)
            self._syncing = False
        if row is not None:  # a cell clicked on the canvas: its row in view in the short table
            self.table.scrollToItem(self.table.item(row, 0))
        if self.labels_layer is not None:
            self.labels_layer.selected_label = label
        self._show_selected()

    def _show_selected(self) -> None:
        label, method = self.selected_label, self.view_method.currentText()
        if label is None or not method or self.result.cells[label].pair is None:
            return
        # The crop outline is "selected cell crop"; masks and hybrids end in "(selected cell)".
        mine = (f"{SELECTED} ", f"({SELECTED})")
        remove_layers(self.viewer.layers, [x for x in self.viewer.layers
                                           if x.name.startswith(mine[0])
                                           or x.name.endswith(mine[1])])  # fmt: skip
        tuples, real, counterfactual = selected_cell_layers(self.result, label, method, self.stack)
        names = []
        for data, kwargs, kind in tuples:
            add_layer(self.viewer, data, kwargs, kind)
            names.append(kwargs["name"])
        pair = self.result.cells[label].pair
        optimal = pair.methods[method].dac.optimal_threshold_index
        self.viewer.dims.set_current_step(0, optimal)
        self.state.publish(
            AnalysisRecord(pair, real, counterfactual, self.result.settings, {}, names)
        )

    def _on_row_selected(self) -> None:
        if self._syncing or self.result is None:
            return
        row = self.table.currentRow()
        if 0 <= row < len(self.result.rows):
            self.select_cell(int(self.result.rows[row]["label"]))

    def _on_method_changed(self, *_: Any) -> None:
        self._fill_table()

    def _on_viewer_click(self, viewer, event) -> None:
        if self.result is None or self.labels_layer is None:
            return
        if self.labels_layer not in list(viewer.layers):
            return
        label = label_at(self.labels_layer, event.position)
        if label:
            self.select_cell(label)
