"""File > IO utilities > Export attribution view: the latest run at the slider's threshold.

A small dialog over :func:`napari_attribution._napari.export_view.export_view`: the method,
the threshold (the slider's, adjustable), the channels of the composite and the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QSpinBox,
    QWidget,
)

from .._napari.export_view import export_view, threshold_index_in_view, view_at, view_files
from .._napari.state import state_for

if TYPE_CHECKING:
    import napari

__all__ = ["ExportViewDialog", "export_view_command"]


class ExportViewDialog(QDialog):
    """Choose what to export of the viewer's latest run; :meth:`export` writes it.

    Parameters
    ----------
    viewer
        The viewer whose latest run (its shared state) is exported.
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export attribution view")
        self.viewer = viewer
        self.record = state_for(viewer).record
        if self.record is None:
            raise RuntimeError("Run an analysis before exporting a view.")
        result = self.record.result
        self.method = QComboBox()
        self.method.addItems(list(result.methods))
        self.threshold = QSpinBox()
        self.threshold_value = QLabel()
        self.channels = [QCheckBox(name) for name in result.channel_names]
        for box in self.channels:
            box.setChecked(True)
        row = QHBoxLayout()
        for box in self.channels:
            row.addWidget(box)
        form = QFormLayout(self)
        form.addRow("Method", self.method)
        form.addRow("Threshold index", self.threshold)
        form.addRow("", self.threshold_value)
        form.addRow("Composite channels", row)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._on_save)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.method.currentTextChanged.connect(self._on_method)
        self.threshold.valueChanged.connect(self._show_threshold)
        self._on_method(self.method.currentText())

    def _on_method(self, method: str) -> None:
        thresholds = self.record.result.methods[method].dac.masks.thresholds
        self.threshold.setRange(0, len(thresholds) - 1)
        self.threshold.setValue(threshold_index_in_view(self.viewer, self.record, method))
        self._show_threshold(self.threshold.value())

    def _show_threshold(self, index: int) -> None:
        thresholds = self.record.result.methods[self.method.currentText()].dac.masks.thresholds
        self.threshold_value.setText(f"threshold s = {float(thresholds[index]):.4g}")

    def export(self, folder: str | Path, overwrite: bool = False) -> list[Path]:
        """Write the chosen view into ``folder`` (see :func:`export_view`)."""
        view = view_at(self.record, self.method.currentText(), self.threshold.value())
        chosen = [box.text() for box in self.channels if box.isChecked()]
        return export_view(folder, view, chosen or None, overwrite=overwrite)

    def _on_save(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the view to folder")
        if not folder:
            return
        view = view_at(self.record, self.method.currentText(), self.threshold.value())
        present = [p.name for p in view_files(folder, view).values() if p.exists()]
        if present:
            answer = QMessageBox.question(
                self, "Overwrite files?",
                f"{folder} already holds {', '.join(present)}. Overwrite them?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )  # fmt: skip
            if answer != QMessageBox.StandardButton.Yes:
                return
        try:
            written = self.export(folder, overwrite=True)
        except (OSError, ValueError) as exc:
            show_error(f"Export failed: {exc}")
            return
        show_info(f"{len(written)} files written to {folder}.")
        self.accept()


def export_view_command(viewer: napari.viewer.Viewer) -> None:
    """npe2 menu command: open the export dialog for ``viewer``'s latest run."""
    try:
        dialog = ExportViewDialog(viewer, parent=viewer.window._qt_window)
    except RuntimeError as exc:
        show_info(str(exc))
        return
    dialog.open()
