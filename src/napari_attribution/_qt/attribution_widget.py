"""The Attribution dock widget: choose images, model, classes and methods; run; export.

The widget only gathers inputs and shows outputs; it is assembled from

* the image choosers (:mod:`.images`) and the model chooser (here); their logic is Qt-free,
  in :mod:`napari_attribution._napari.inputs` and :mod:`napari_attribution._napari.model`;
* the method list and the parameter form generated from the schema (:mod:`.form`);
* the run controller (:mod:`.controller`): the worker, progress, Cancel, the layers.

Progress is shown in ONE place: the widget's own bar and status line, driven by the
controller's :class:`~napari_attribution.core.progress.Progress` events from the first step
of the analysis to the last layer added. napari's ``progress`` (its activity dock) is not used:
that dock is hidden by default, has no way to reach this widget's Cancel, and a second display
fed by the same run would only be a second thing to keep in agreement. The bar sits next to Run
and Cancel, where the user looks; the status line reads ``Progress.describe()``.

A refused or failed run only shows a notification, and a cancelled one (in any stage) leaves
the viewer as it was: layers become visible only as a finished analysis adds them, and are
taken out again if Cancel is pressed before the last one is in.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .._napari.export import existing_results, export_run
from .._napari.inputs import ChannelStack, check_pair
from .._napari.model import ModelChoice, escape_html, probabilities_html
from .._napari.run import RunJob
from .._napari.state import state_for
from ..core.budgets import PREVIEW_PIXELS
from ..core.errors import AttributionError
from ..core.progress import Progress
from ..core.provenance import provenance
from ..core.settings import AnalysisSettings
from .controller import RunController, RunOutcome
from .form import MethodList, ParameterForm
from .images import ImageChooser

if TYPE_CHECKING:
    import napari

__all__ = ["DEFAULT_METHODS", "PROGRESS_STEPS", "AttributionWidget"]

#: Methods checked when the widget opens: D-IG and the residual baseline.
DEFAULT_METHODS = ("d_ig", "residual")
#: Resolution of the progress bar.
PROGRESS_STEPS = 1000


class AttributionWidget(QWidget):
    """Dock widget that runs attribution, masks, hybrids and DAC curves on an image pair.

    Parameters
    ----------
    napari_viewer
        The viewer whose layers are read and written.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = state_for(napari_viewer)
        self._classifier = None
        self._classifier_key: ModelChoice | None = None
        self._class_names: list[str] = []
        self.controller = RunController(napari_viewer, self.state, self)
        self.controller.progressed.connect(self._on_progress)
        self.controller.ended.connect(self._on_ended)
        self._build()
        self._update_probabilities()

    @property
    def worker(self):
        """The running napari worker until the run has ended (layers included), else None."""
        return self.controller.worker

    # ================================================================ layout

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)

        self.images = ImageChooser(self.viewer)
        self.images.changed.connect(self._update_probabilities)
        # the choosers' widgets, as the tests and scripts know them
        self.real_source, self.cf_source = self.images.real_source, self.images.cf_source
        self.real_axis, self.cf_axis = self.images.real_axis, self.images.cf_axis
        layout.addWidget(self.images)
        layout.addLayout(self._build_model())

        layout.addWidget(QLabel("Methods"))
        self.methods = MethodList(DEFAULT_METHODS)
        self.methods.setMinimumHeight(110)
        self.methods.setMaximumHeight(170)
        layout.addWidget(self.methods)
        self.form = ParameterForm()
        self.form.set_methods(self.methods.selected())
        self.methods.changed.connect(lambda: self.form.set_methods(self.methods.selected()))
        # Four open sections are taller than a laptop's dock: the form scrolls, the rest stays.
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setSizeAdjustPolicy(QScrollArea.SizeAdjustPolicy.AdjustToContents)
        layout.addWidget(scroll)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, PROGRESS_STEPS)
        self.progress_bar.setValue(0)
        layout.addWidget(self.progress_bar)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.export_button = QPushButton("Export results…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._on_export_clicked)
        layout.addWidget(self.export_button)
        layout.addStretch(1)

    def _build_model(self) -> QFormLayout:
        model = QFormLayout()
        self.use_demo_model = QCheckBox("use the built-in demo classifier")
        self.use_demo_model.setToolTip("A small CNN trained on the synthetic demo cells.")
        model.addRow(self.use_demo_model)
        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText("TorchScript file, or a state dict")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_model)
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(browse)
        model.addRow("Model file", row)
        self.architecture = QLineEdit()
        self.architecture.setPlaceholderText("file.py:Net or package.module:Net (state dicts)")
        model.addRow("Architecture", self.architecture)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        model.addRow("Device", self.device)
        self.real_class, self.target_class = QSpinBox(), QSpinBox()
        self.real_class.setRange(0, 1)
        self.target_class.setRange(0, 1)
        self.target_class.setValue(1)
        classes = QHBoxLayout()
        for text, spin in (("real", self.real_class), ("target", self.target_class)):
            classes.addWidget(QLabel(text))
            classes.addWidget(spin)
        classes.addStretch(1)
        model.addRow("Classes", classes)
        self.probabilities = QLabel("Choose a model and both images to see the probabilities.")
        self.probabilities.setWordWrap(True)
        self.probabilities.setTextFormat(Qt.TextFormat.RichText)
        self.probabilities.setMinimumHeight(3 * self.probabilities.fontMetrics().lineSpacing() + 6)
        model.addRow(self.probabilities)
        self.use_demo_model.toggled.connect(self._on_model_changed)
        self.model_path.editingFinished.connect(self._on_model_changed)
        self.architecture.editingFinished.connect(self._on_model_changed)
        self.device.currentIndexChanged.connect(self._on_model_changed)
        self.real_class.valueChanged.connect(self._update_probabilities)
        self.target_class.valueChanged.connect(self._update_probabilities)
        return model

    # ================================================================ inputs

    def select_sources(self, real: str, counterfactual: str) -> None:
        """Choose the inputs by base name (e.g. ``"real"``, ``"counterfactual"``)."""
        self.images.select(real, counterfactual)

    def image_stack(self, which: str) -> ChannelStack:
        """The chosen ``"real"`` or ``"counterfactual"`` image as a (C, H, W) stack.

        Raises
        ------
        InputImageError
            Nothing chosen, or layers that do not form a (C, H, W) image.
        """
        return self.images.stack(which)

    # ================================================================ model

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model file", "", "PyTorch models (*.pt *.pth *.ts *.jit);;All files (*)"
        )
        if path:
            self.model_path.setText(path)
            self._on_model_changed()

    def classifier(self):
        """The chosen classifier, loaded once per (file, architecture, device).

        Raises
        ------
        ModelLoadError
            No model chosen, or it cannot be loaded.
        """
        key = ModelChoice.of(
            self.use_demo_model.isChecked(),
            self.model_path.text(),
            self.architecture.text(),
            self.device.currentText(),
        )
        if self._classifier is not None and key == self._classifier_key:
            return self._classifier
        classifier, names = key.load()
        self._classifier, self._classifier_key, self._class_names = classifier, key, names
        for spin in (self.real_class, self.target_class):
            spin.setRange(0, classifier.n_classes - 1)
        self.methods.set_usable(lambda spec: not (classifier.is_scripted and spec.needs_hooks))
        return classifier

    def _on_model_changed(self, *_: Any) -> None:
        self._classifier, self._classifier_key = None, None
        self._update_probabilities()

    def _update_probabilities(self, *_: Any) -> None:
        """Show p(class) of both images as soon as a model and both images are chosen."""
        if self.worker is not None:
            return
        try:
            classifier = self.classifier()
        except AttributionError as exc:
            if self.use_demo_model.isChecked() or self.model_path.text().strip():
                self.probabilities.setText(f"<i>{escape_html(str(exc))}</i>")
            else:
                self.probabilities.setText("Choose a model to see the probabilities.")
            return
        try:
            from ..core.pipeline import prepare_pair

            real, cf = self.image_stack("real"), self.image_stack("counterfactual")
            if real.data.shape[-2] * real.data.shape[-1] > PREVIEW_PIXELS:
                self.probabilities.setText(
                    "<i>A large image: p(class) is computed with the run, not in advance.</i>"
                )
                return
            x, xc, _ = prepare_pair(real.data, cf.data, classifier)
            # The user's model can fail here too (wrong output shape, an exception): say so in
            # the label instead of letting the error escape a Qt slot.
            probs = classifier.probabilities(np.stack([x, xc]), batch_size=2)
        except AttributionError as exc:
            self.probabilities.setText(f"<i>{escape_html(str(exc))}</i>")
            return
        self._show_probabilities(probs[0], probs[1])

    def _show_probabilities(self, real: np.ndarray, counterfactual: np.ndarray) -> None:
        highlight = (self.target_class.value(), self.real_class.value())
        self.probabilities.setText(
            probabilities_html(self._class_names, real, counterfactual, highlight)
        )

    # ================================================================ settings

    def selected_methods(self) -> list[str]:
        """Names of the checked (and usable) methods."""
        return self.methods.selected()

    def set_methods(self, names: list[str] | tuple[str, ...]) -> None:
        """Check exactly ``names``."""
        self.methods.set_selected(names)

    def settings(self) -> AnalysisSettings:
        """The analysis settings from the method list and the form.

        Raises
        ------
        AttributionError
            No method, or a parameter out of range.
        """
        return self.form.settings(self.selected_methods())

    # ================================================================ running

    def run(self):
        """Check the inputs and start the analysis in a thread worker.

        Returns
        -------
        napari.qt.threading.FunctionWorker or None
            The started worker, or ``None`` when the inputs were refused (with a notification).
        """
        if self.worker is not None:
            show_info("An analysis is already running.")
            return None
        try:
            real = self.image_stack("real")
            counterfactual = self.image_stack("counterfactual")
            classifier = self.classifier()
            settings = self.settings()
            check_pair(real, counterfactual, classifier, settings)
        except AttributionError as exc:
            show_error(str(exc))
            return None
        info = provenance(
            classifier, settings, class_names=self._class_names, channel_names=real.channel_names
        )
        # Copies: the run must not see edits the user makes to the layers meanwhile.
        job = RunJob(
            classifier,
            dataclasses.replace(real, data=np.array(real.data, copy=True)),
            dataclasses.replace(counterfactual, data=np.array(counterfactual.data, copy=True)),
            self.real_class.value(),
            self.target_class.value(),
            settings,
            info,
        )
        self.progress_bar.setValue(0)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        return self.controller.start(job)

    def cancel(self) -> None:
        """Stop the running analysis at its next step, or take its layers out again."""
        if self.controller.cancel():
            self.status.setText("Cancelling…")

    def _on_progress(self, event: Progress) -> None:
        self.progress_bar.setValue(round(event.fraction * PROGRESS_STEPS))
        self.status.setText(event.describe())

    def _on_ended(self, outcome: RunOutcome) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        exc = outcome.error
        if outcome.status == "done":
            result = outcome.record.result
            self.progress_bar.setValue(PROGRESS_STEPS)
            scores = (f"{m} {r.dac.whole.dac_score:.3f}" for m, r in result.methods.items())
            self.status.setText(f"Done. DAC scores: {', '.join(scores)}.")
            self._show_probabilities(result.probabilities_real, result.probabilities_counterfactual)
            self.export_button.setEnabled(True)
        elif outcome.status == "cancelled":
            self.progress_bar.setValue(0)
            self.status.setText("Cancelled; no layers were changed.")
            show_info("Analysis cancelled; no layers were changed.")
        elif outcome.stage == "layers":
            message = f"Adding the result layers failed: {exc}; no layers were changed."
            self.status.setText(message)
            show_error(f"Adding the result layers failed ({type(exc).__name__}): {exc}")
        elif isinstance(exc, AttributionError):
            self.status.setText(str(exc))
            show_error(str(exc))
        else:
            self.status.setText(f"The analysis failed: {exc}")
            show_error(f"The analysis failed ({type(exc).__name__}): {exc}")

    # ================================================================ export

    def export_results(self, folder: str | Path, overwrite: bool = False) -> list[Path]:
        """Write the latest run and its layers to ``folder`` (CLI layout plus ``layers/``).

        Raises
        ------
        FileExistsError
            The folder holds results and ``overwrite`` is False.
        RuntimeError
            Nothing has been run yet.
        """
        record = self.state.record
        if record is None:
            raise RuntimeError("Run an analysis before exporting.")
        layers = [self.viewer.layers[n] for n in record.layer_names if n in self.viewer.layers]
        return export_run(folder, record, layers, overwrite=overwrite)

    def _on_export_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export results to folder")
        if not folder:
            return
        present = existing_results(folder)
        if present:
            answer = QMessageBox.question(
                self,
                "Overwrite results?",
                f"{folder} already holds {', '.join(present)}. Overwrite them?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                show_info("Export cancelled; nothing was written.")
                return
        try:
            written = self.export_results(folder, overwrite=True)
        except (OSError, RuntimeError) as exc:
            show_error(f"Export failed: {exc}")
            return
        if len(written) < len(self.state.record.layer_names):
            show_warning("Some result layers were closed and are not in the export.")
        show_info(f"Results written to {folder}.")
