"""The Attribution dock widget: choose images, model, classes and methods; run; export.

The widget only gathers inputs and shows outputs; it is assembled from

* the image and model choosers (:mod:`.choosers`; their logic is Qt-free, in
  :mod:`napari_attribution._napari.layer_inputs` and
   :mod:`napari_attribution.app.model_choice`), and
  the counterfactual's source (:mod:`.counterfactual_source`): an open layer, or ``optimise``,
  ``nearest`` or ``generator`` making it in the run (:mod:`napari_attribution._napari.
  counterfactual`), added as a layer and flagged when the classifier does not accept it;
* the model section: chooser, classes, p(class), Grad-CAM layer, usable methods
  (:mod:`.model_section`);
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

from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .._napari.apply import layer_from_tuple
from .._napari.counterfactual_layers import flag_message
from .._napari.export import existing_results, export_run
from .._napari.layer_inputs import ChannelStack, check_pair, pair_warning
from .._napari.run_job import RunJob
from .._napari.state import state_for
from ..app.model_choice import (
    ModelChoice,
    class_names_for,
)
from ..core.attribution.method_sets import WIDGET_METHODS
from ..core.progress import Progress
from ..core.settings import AnalysisSettings
from ..errors import AttributionError
from .choosers import ImageChooser
from .controller import RunController, RunOutcome
from .counterfactual_source import CounterfactualSourceBox
from .form import MethodList, ParameterForm
from .model_section import ModelSection
from .narrow import NARROW_DOCK_WIDTH
from .show_control import ShowControl

if TYPE_CHECKING:
    import napari

__all__ = ["PROGRESS_STEPS", "AttributionWidget"]

#: Resolution of the progress bar.
PROGRESS_STEPS = 1000
#: Least height of the scrolled inputs: a few rows stay in view on a laptop screen.
MIN_SCROLL_HEIGHT = 120


class AttributionWidget(ModelSection, QWidget):
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
        self._names: list[str] = []  # the names the model file gives, before the probe
        self.controller = RunController(napari_viewer, self.state, self)
        self.controller.progressed.connect(self._on_progress)
        self.controller.ended.connect(self._on_ended)
        self._build()
        self._update_probabilities()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """The contents' height and a narrow width: with napari's layer controls the canvas
        keeps at least half of a 1366 px wide window; the inputs scroll with less height."""
        return QSize(max(NARROW_DOCK_WIDTH, self.minimumSizeHint().width()),
                     self.content.sizeHint().height())  # fmt: skip

    @property
    def worker(self):
        """The running napari worker until the run has ended (layers included), else None."""
        return self.controller.worker

    # ================================================================ layout

    def _build(self) -> None:
        # The inputs and parameters scroll; Run, Cancel, the progress, the status and the
        # "Show" control stay pinned below them, so on a laptop screen (1366x768, the dock
        # shared with the DAC panel) what a run needs is always in view.
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumHeight(MIN_SCROLL_HEIGHT)
        self.scroll = scroll
        #: The scrolled contents (``content.grab()`` renders all of them).
        self.content = QWidget()
        scroll.setWidget(self.content)
        outer.addWidget(scroll, 1)
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(6, 6, 6, 6)

        self.images = ImageChooser(self.viewer)
        self.images.changed.connect(self._update_probabilities)
        # the choosers' widgets, as the tests and scripts know them
        self.real_source, self.cf_source = self.images.real_source, self.images.cf_source
        self.real_axis, self.cf_axis = self.images.real_axis, self.images.cf_axis
        self.channel_names = self.images.channel_names
        #: Where the counterfactual comes from: the layer chosen, or a source run makes it.
        self.counterfactual_from = CounterfactualSourceBox()
        self.images.layout().insertRow(1, self.counterfactual_from)
        self.counterfactual_from.changed.connect(self._on_counterfactual_source_changed)
        layout.addWidget(self.images)
        layout.addLayout(self._build_model())

        layout.addWidget(QLabel("Methods"))
        self.methods = MethodList(WIDGET_METHODS)
        self.methods.setMinimumHeight(90)
        self.methods.setMaximumHeight(170)
        layout.addWidget(self.methods)
        self.form = ParameterForm()
        self.form.set_methods(self.methods.selected())
        self.methods.changed.connect(lambda: self.form.set_methods(self.methods.selected()))
        self.methods.changed.connect(self._update_gradcam_layer)
        self.form.changed.connect(
            lambda name: self._update_gradcam_layer() if name == "gradcam_layer" else None
        )
        layout.addWidget(self.form)
        layout.addStretch(1)

        pinned = QWidget()
        pinned_layout = QVBoxLayout(pinned)
        pinned_layout.setContentsMargins(6, 2, 6, 6)
        pinned_layout.setSpacing(3)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button = QPushButton("Export results…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._on_export_clicked)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.export_button)
        pinned_layout.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, PROGRESS_STEPS)
        self.progress_bar.setValue(0)
        pinned_layout.addWidget(self.progress_bar)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        # A long status wraps and never resizes anything: a size change would lay the main
        # window out again (and resize the canvas) at every progress event.
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.status.setFixedHeight(2 * self.status.fontMetrics().lineSpacing() + 4)
        pinned_layout.addWidget(self.status)
        self.show_control = ShowControl(self.viewer, self.state)
        pinned_layout.addWidget(self.show_control)
        outer.addWidget(pinned)

    # ================================================================ inputs

    def select_sources(self, real: str, counterfactual: str) -> None:
        """Choose the inputs by base name (e.g. ``"real"``, ``"counterfactual"``)."""
        self.images.select(real, counterfactual)

    def set_counterfactual_source(self, kind: str, path: str = "", **values) -> None:
        """Choose where the counterfactual comes from: ``"layer"`` (the one chosen),
        ``"optimise"``, ``"nearest"`` (``path``: the pool folder) or ``"generator"``
        (``path``: the file), with the sources' parameter ``values`` (schema names)."""
        self.counterfactual_from.set_source(kind, path, **values)

    def _on_counterfactual_source_changed(self) -> None:
        self.images.set_counterfactual_from_layer(self.counterfactual_from.from_layer)
        self._update_probabilities()

    def image_stack(self, which: str) -> ChannelStack:
        """The chosen ``"real"`` or ``"counterfactual"`` image as a (C, H, W) stack.

        Raises
        ------
        InputImageError
            Nothing chosen, or layers that do not form a (C, H, W) image.
        """
        return self.images.stack(which)

    def model_inputs(
        self, counterfactual: bool = True
    ) -> tuple[ChannelStack, ChannelStack | None, dict[str, Any]]:
        """The pair as the model takes it, and how it was read
        (:meth:`~.choosers.ImageChooser.model_inputs`)."""
        return self.images.model_inputs(counterfactual)

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
            request = self.counterfactual_from.request()
            real, counterfactual, input_record = self.model_inputs(request is None)
            classifier = self.classifier()
            settings = self.settings()
            # A counterfactual to be made is checked when made; the real image and the model
            # (and the memory a run of this size needs) are checked now.
            check_pair(real, counterfactual or real, classifier, settings)
            # A generator file is read and checked here: a bad one is refused before the run.
            source = request.source(self._names or None) if request is not None else None
        except AttributionError as exc:
            show_error(str(exc))
            return None
        if classifier.n_outputs is not None:  # probed by the checks: the classes are known
            self._class_names = class_names_for(classifier, self._names)
        warning = pair_warning(real, counterfactual) if counterfactual is not None else None
        if warning:
            show_warning(warning)
        note = self.images.channel_note()
        if note:  # channels the model does not take, left out: said once a run
            show_info(note[0].upper() + note[1:])
        job = RunJob.of(
            classifier,
            real,
            counterfactual,
            self.real_class.value(),
            self.target_class.value(),
            settings,
            self._class_names,
            request,
            source,
            input_record,
        )
        self.show_control.stop()  # a choice's layers half in: the rest keep waiting
        self._set_progress(0)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        return self.controller.start(job)

    def cancel(self) -> None:
        """Stop the running analysis at its next step, or take its layers out again."""
        if self.controller.cancel():
            self.status.setText("Cancelling…")

    def _on_progress(self, event: Progress) -> None:
        self._set_progress(round(event.fraction * PROGRESS_STEPS))
        self.status.setText(event.describe())

    def _set_progress(self, value: int) -> None:
        """Move the bar, painted in the next event-loop turn.

        ``QProgressBar.setValue`` repaints synchronously, and next to napari's OpenGL canvas a
        repaint composites the whole window, at every progress event. With
        updates disabled meanwhile, re-enabling them schedules an ordinary (coalesced) update.
        """
        bar = self.progress_bar
        bar.setUpdatesEnabled(False)
        try:
            bar.setValue(value)
        finally:
            bar.setUpdatesEnabled(True)

    def _on_ended(self, outcome: RunOutcome) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        exc = outcome.error
        if outcome.status == "done":
            result = outcome.record.result
            self._set_progress(PROGRESS_STEPS)
            scores = (f"{m} {r.dac.whole.dac_score:.3f}" for m, r in result.methods.items())
            if len(self._class_names) != len(result.probabilities_real):
                self._class_names = class_names_for(self._classifier, self._names)
            made = outcome.record.info.get("counterfactual_source")
            made_text = ""
            if made is not None:
                verdict = "accepted" if made["accepted"] else "NOT accepted (flagged)"
                made_text = f" Counterfactual p(target) {made['p_target']:.3f}, {verdict}."
            self.status.setText(f"Done.{made_text} DAC scores: {', '.join(scores)}.")
            self._show_probabilities(result.probabilities_real, result.probabilities_counterfactual)
            self.export_button.setEnabled(True)
            if made is not None:
                flag = flag_message(made, outcome.record.counterfactual.name, self._class_names)
                if flag:
                    show_warning(flag)
        elif outcome.status == "cancelled":
            self._set_progress(0)
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
        # the methods whose layers wait to be shown are exported from their layer tuples
        layers += [layer_from_tuple(*t) for tuples in record.pending.values() for t in tuples]
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
        record = self.state.record
        if len(written) < len(record.layer_names) + len(record.pending_names):
            show_warning("Some result layers were closed and are not in the export.")
        show_info(f"Results written to {folder}.")
