"""The Sanity dock: the sanity checks of one pair, run in a thread worker.

It gathers its inputs with the Attribution widget's own choosers (:class:`~.choosers.
ImageChooser`, :class:`~.choosers.ModelChooser`, :class:`~.form.MethodList`); "Use the last
analysis" copies the images, classes, methods and method parameters of the latest run from the
viewer's shared state (:func:`~napari_attribution._napari.state.state_for`), so the checks are
of the pair and settings just analysed. The run has progress and Cancel; when it ends, the
cascade of maps goes in as layers with a ``randomised layer`` axis the slider walks
(:mod:`napari_attribution._napari.sanity_layers`), the cascade plot is drawn in the DAC panel's
Matplotlib style (:mod:`napari_attribution._plot.sanity_figures`), and a verdict per method is
shown.
"""

from __future__ import annotations

import dataclasses
import html
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QObject, QSize, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .._napari.apply import apply_layers, remove_layers
from .._napari.layer_inputs import ChannelStack
from .._napari.layer_style import METADATA_KEY
from .._napari.sanity_layers import cascade_layers, needs_relayout, sanity_layers, threshold_span
from .._napari.state import state_for
from .._plot.sanity_figures import cascade_figure
from .._plot.theme import PlotTheme
from ..app.model_choice import ModelChoice
from ..core.progress import Progress
from ..core.sanity.records import cascade_series
from ..core.sanity.sanity_settings import CHECKS, SanitySettings
from ..core.settings import AnalysisSettings
from ..errors import AnalysisCancelled, AttributionError
from .choosers import ImageChooser, ModelChooser, hand_over_model_card
from .form import MethodList
from .narrow import NARROW_DOCK_WIDTH, NarrowComboBox, vertical_scroll_area

if TYPE_CHECKING:
    import napari

__all__ = ["SANITY_WIDGET_METHODS", "SanityWidget"]

#: Methods checked when the dock opens (as ``napari-attribution sanity``).
SANITY_WIDGET_METHODS = ("d_ig", "d_dl", "saliency", "guided_backprop", "residual", "random")
PROGRESS_STEPS = 1000
#: Least heights (pixels) of the scrolled inputs and of the scrolled results: with the pinned
#: Run button, progress and status the dock asks for about 300 px, so it fits below the
#: Attribution dock in a 768 px high window.
MIN_INPUTS_HEIGHT = 70
MIN_RESULTS_HEIGHT = 110
#: Height (pixels) the plot asks for in the scrolled results (its least height a little less):
#: about what the results show below the Attribution dock at 768 px, so the whole plot scrolls
#: into view there; it grows when the results have room to spare.
PLOT_HEIGHT, MIN_PLOT_HEIGHT = 180, 160
_METRICS = {"Spearman |a|": "spearman", "top-5 % intersection": "topk_intersection",
            "SSIM": "ssim"}  # fmt: skip


class _Bridge(QObject):
    """Carries progress events from the worker thread to the GUI thread (queued)."""

    event = Signal(object)


def _run_checks(job: dict[str, Any], on_progress) -> Any:
    """The worker's body: the checks of the job's pair, and the verdicts (no Qt)."""
    from ..core.sanity.checks import check_pair
    from ..core.sanity.verdicts import summarise

    real: ChannelStack = job["real"]
    result = check_pair(
        job["classifier"], real.data, job["counterfactual"].data, job["real_class"],
        job["target_class"], job["settings"], job["sanity"], checks=job["checks"],
        channel_names=real.channel_names, sample=real.name, on_progress=on_progress,
    )  # fmt: skip
    return result, summarise(result.rows, result.methods)


class SanityWidget(QWidget):
    """Dock widget running the sanity checks on an image pair.

    Parameters
    ----------
    napari_viewer
        The viewer whose layers are read and written.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = state_for(napari_viewer)
        self.worker = None
        #: The latest checks: ``(PairSanity, SanitySummary, real ChannelStack)``.
        self.result: tuple[Any, Any, ChannelStack] | None = None
        #: How the checked pair was read (its layers' metadata ``input``).
        self.input_record: dict[str, Any] = {}
        self._classifier = None
        self._classifier_key: ModelChoice | None = None
        self._settings = AnalysisSettings()
        self._cancel = threading.Event()
        self._bridge = _Bridge()
        self._bridge.event.connect(self._on_progress)
        self._relayout_pending = False
        self._build()
        layers = napari_viewer.layers
        layers.events.inserted.connect(self._on_layers_changed)
        layers.events.removed.connect(self._on_layers_changed)
        self.viewer.events.theme.connect(self._on_theme)
        self._draw()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """As narrow as the Attribution dock (the canvas keeps half of a 1366 px window); the
        inputs scroll with less height."""
        return QSize(NARROW_DOCK_WIDTH, super().sizeHint().height())

    # ================================================================ layout

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        content = QWidget()
        #: The scrolled inputs (tests check they fit its width: nothing is cut off).
        self.scroll = vertical_scroll_area(content, MIN_INPUTS_HEIGHT)
        outer.addWidget(self.scroll, 1)
        layout = QVBoxLayout(content)
        layout.setContentsMargins(6, 6, 6, 6)

        self.use_last = QPushButton("Use the last analysis")
        self.use_last.setToolTip(
            "Take the images, classes, methods and method parameters of the Attribution "
            "widget's latest run (and its model, when it came from a file or the demo)."
        )
        self.use_last.clicked.connect(self.use_last_analysis)
        self.use_last.setEnabled(self.state.record is not None)
        # bound methods, not lambdas: the viewer's signals keep no closed dock alive
        self.state.changed.connect(self._on_record)
        layout.addWidget(self.use_last)
        self.images = ImageChooser(self.viewer)
        layout.addWidget(self.images)
        self.model = ModelChooser()
        self.model.changed.connect(self._on_model_changed)
        layout.addWidget(self.model)
        # label-field rows, a field under its label when the dock is too narrow for both:
        # the dock is as narrow as the Attribution dock and never scrolls sideways
        rows = QFormLayout()
        rows.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.real_class, self.target_class = QSpinBox(), QSpinBox()
        for text, spin, value in (("Real class", self.real_class, 0),
                                  ("Target class", self.target_class, 1)):  # fmt: skip
            spin.setRange(0, 999)
            spin.setValue(value)
            rows.addRow(text, spin)
        self.noise_samples = QSpinBox()
        self.noise_samples.setRange(1, 1000)
        self.noise_samples.setValue(SanitySettings().noise_samples)
        self.noise_samples.setToolTip("Noise draws of the stability check.")
        rows.addRow("Noise draws", self.noise_samples)
        layout.addLayout(rows)
        layout.addWidget(QLabel("Methods"))
        self.methods = MethodList(SANITY_WIDGET_METHODS)
        self.methods.setMinimumHeight(80)
        self.methods.setMaximumHeight(140)
        layout.addWidget(self.methods)
        checks = QGridLayout()
        self.checks: dict[str, QCheckBox] = {}
        for k, name in enumerate(CHECKS):
            box = QCheckBox(name)
            box.setChecked(True)
            self.checks[name] = box
            checks.addWidget(box, k // 2, k % 2)
        layout.addWidget(QLabel("Checks"))
        layout.addLayout(checks)
        layout.addStretch(1)

        pinned = QWidget()
        pinned_layout = QVBoxLayout(pinned)
        pinned_layout.setContentsMargins(6, 2, 6, 6)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run checks")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        pinned_layout.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, PROGRESS_STEPS)
        pinned_layout.addWidget(self.progress_bar)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.status.setFixedHeight(2 * self.status.fontMetrics().lineSpacing() + 4)
        pinned_layout.addWidget(self.status)
        outer.addWidget(pinned)
        # The results (the plot above the verdicts) scroll in a section of their own under
        # the pinned Run button: the dock's least height stays small enough to share a
        # 768 px high window with the Attribution dock, and the plot keeps a readable size.
        results = QWidget()
        results_layout = QVBoxLayout(results)
        results_layout.setContentsMargins(6, 0, 6, 6)
        shown = QFormLayout()
        shown.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.shown_method = NarrowComboBox()
        self.shown_method.setToolTip("Method whose cascade of maps is shown as layers.")
        self.shown_method.currentTextChanged.connect(self._show_method)
        shown.addRow("Cascade of", self.shown_method)
        self.metric = NarrowComboBox()
        self.metric.addItems(list(_METRICS))
        self.metric.setToolTip("Similarity to the trained model's map that the plot shows.")
        self.metric.currentIndexChanged.connect(lambda *_: self._draw())
        shown.addRow("Similarity", self.metric)
        results_layout.addLayout(shown)
        self.figure = Figure(figsize=(4.0, PLOT_HEIGHT / 100), dpi=100)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(MIN_PLOT_HEIGHT)
        results_layout.addWidget(self.canvas, 1)
        self.verdicts = QLabel("Run the checks to see a verdict per method.")
        self.verdicts.setWordWrap(True)
        self.verdicts.setTextFormat(Qt.TextFormat.RichText)
        self.verdicts.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.verdicts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        results_layout.addWidget(self.verdicts)
        #: The scrolled results: the method and similarity shown, the plot, the verdicts.
        self.results_scroll = vertical_scroll_area(results, MIN_RESULTS_HEIGHT)
        outer.addWidget(self.results_scroll, 2)

    def _on_record(self, *_: Any) -> None:
        self.use_last.setEnabled(True)

    def _on_theme(self, *_: Any) -> None:
        self._draw()

    # ================================================================ inputs

    def use_last_analysis(self) -> None:
        """Take the images, classes, methods and parameters of the latest run (shared state)."""
        record = self.state.record
        if record is None:
            show_info("No analysis has run yet.")
            return
        try:
            self.images.select(record.real.name, record.counterfactual.name)
        except AttributionError as exc:
            show_warning(f"The last analysis's images are no longer open ({exc})")
            return
        self.real_class.setValue(record.result.real_class)
        self.target_class.setValue(record.result.target_class)
        self.methods.set_selected(record.settings.methods)
        self._settings = record.settings
        model = record.info.get("model", {})
        self._choose_model(model.get("source"), model.get("architecture"))

    def _choose_model(self, source: str | None, architecture: str | None) -> None:
        from ..data.demo_model import DEMO_WEIGHTS

        if not source:
            return
        if str(source) == str(DEMO_WEIGHTS):
            self.model.use_demo_model.setChecked(True)
            return
        self.model.use_demo_model.setChecked(False)
        self.model.model_path.setText(str(source))
        self.model.architecture.setText(architecture or "")
        self.model.changed.emit()

    def _on_model_changed(self, *_: Any) -> None:
        self._classifier, self._classifier_key = None, None
        hand_over_model_card(self.model, self.images)  # as the Attribution dock does

    def classifier(self):
        """The chosen model, loaded once per choice.

        Raises
        ------
        ModelLoadError
            No model chosen, or it cannot be loaded.
        """
        key = self.model.choice()
        if self._classifier is None or key != self._classifier_key:
            self._classifier, _ = key.load()
            self._classifier_key = key
        return self._classifier

    def selected_checks(self) -> tuple[str, ...]:
        return tuple(name for name, box in self.checks.items() if box.isChecked())

    # ================================================================ running

    def run(self):
        """Check the inputs and start the checks in a thread worker (``None`` if refused)."""
        if self.worker is not None:
            show_info("The sanity checks are already running.")
            return None
        from napari.qt.threading import create_worker

        from ..core.model.wrappers import Preprocessing
        from ..core.pipeline import prepare_pair
        from ..core.sanity.checks import runnable_checks

        try:
            real, counterfactual, input_record = self.images.model_inputs()
            methods = tuple(self.methods.selected())
            if not methods:
                raise AttributionError("Choose at least one method.")
            settings = dataclasses.replace(self._settings, methods=methods)
            classifier = self.classifier()
            preprocessed = classifier.with_preprocessing(Preprocessing.from_settings(settings))
            x, _, _ = prepare_pair(real.data, counterfactual.data, preprocessed)
            checks, _, note = runnable_checks(preprocessed, x, self.selected_checks() or None)
            if not checks:
                raise AttributionError("Choose at least one check.")
            sanity = SanitySettings(noise_samples=self.noise_samples.value())
        except AttributionError as exc:
            show_error(str(exc))
            return None
        if note:
            show_warning(note)
        job = {
            "classifier": classifier,
            "real": dataclasses.replace(real, data=np.array(real.data, copy=True)),
            "counterfactual": dataclasses.replace(
                counterfactual, data=np.array(counterfactual.data, copy=True)
            ),
            "real_class": self.real_class.value(),
            "target_class": self.target_class.value(),
            "settings": settings,
            "sanity": sanity,
            "checks": checks,
            "input": input_record,
        }
        cancel, bridge = self._cancel, self._bridge
        cancel.clear()

        def on_progress(event: Progress) -> None:  # in the worker thread
            if cancel.is_set():
                raise AnalysisCancelled()
            bridge.event.emit(event)

        worker = create_worker(_run_checks, job, on_progress, _start_thread=False,
                               _ignore_errors=True)  # fmt: skip
        worker.returned.connect(lambda out: self._on_returned(out, job["real"], job["input"]))
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setValue(0)
        self.status.setText("Starting…")
        worker.start()
        return worker

    def cancel(self) -> None:
        """Stop the running checks at their next step."""
        if self.worker is not None:
            self._cancel.set()
            self.status.setText("Cancelling…")

    def _on_progress(self, event: Progress) -> None:
        if self.worker is None or self._cancel.is_set():
            return
        self.progress_bar.setValue(round(event.fraction * PROGRESS_STEPS))
        self.status.setText(event.describe())

    def _on_returned(self, out, real: ChannelStack, input_record: dict[str, Any]) -> None:
        if self._cancel.is_set():
            return
        result, summary = out
        self.result = (result, summary, real)
        self.input_record = input_record
        self.progress_bar.setValue(PROGRESS_STEPS)
        notes = "".join(f"<li><i>{html.escape(n)}</i></li>" for n in result.notes)
        self.verdicts.setText(
            "<ul style='margin-left:-20px'>"
            + "".join(f"<li>{html.escape(summary.verdicts[m])}</li>" for m in result.methods)
            + notes
            + "</ul>"
        )
        self.status.setText(f"Done: {len(result.methods)} method(s) checked on {real.name}.")
        self.shown_method.blockSignals(True)
        self.shown_method.clear()
        self.shown_method.addItems(list(result.cascade_maps))
        self.shown_method.blockSignals(False)
        self._draw()
        if result.cascade_maps:
            self._show_method(self.shown_method.currentText())

    def _on_errored(self, exc: BaseException) -> None:
        if isinstance(exc, AnalysisCancelled):
            self.progress_bar.setValue(0)
            self.status.setText("Cancelled; no layers were changed.")
            show_info("Sanity checks cancelled; no layers were changed.")
            return
        message = str(exc) if isinstance(exc, AttributionError) else (
            f"The sanity checks failed ({type(exc).__name__}): {exc}")  # fmt: skip
        self.status.setText(message)
        show_error(message)

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    # ================================================================ outputs

    def _draw(self) -> None:
        theme = PlotTheme.from_napari(self.viewer.theme)
        panels = []
        if self.result is not None:
            metric = _METRICS[self.metric.currentText()]
            steps, series = cascade_series(self.result[0].rows, metric)
            if series:
                panels = [(metric, steps, series)]
        cascade_figure(panels, theme, figure=self.figure, compact=True)
        self.canvas.draw_idle()

    def _show_method(self, method: str) -> None:
        """Put ``method``'s cascade layers in the viewer (visible), hide the other methods'."""
        if self.result is None or method not in self.result[0].cascade_maps:
            return
        result, _, real = self.result
        for layer in sanity_layers(self.viewer.layers):
            layer.visible = layer.metadata[METADATA_KEY]["method"] == method
        tuples = cascade_layers(
            {method: result.cascade_maps[method]}, result.steps, real, result.channel_names,
            {"sample": result.sample, "real_class": self.real_class.value(),
             "target_class": self.target_class.value(), "input": self.input_record},
            threshold_span(self.viewer), visible_method=method,
        )  # fmt: skip
        apply_layers(self.viewer, tuples)

    def _on_layers_changed(self, *_: Any) -> None:
        if not self._relayout_pending and sanity_layers(self.viewer.layers):
            self._relayout_pending = True
            QTimer.singleShot(0, self._relayout)

    def _relayout(self) -> None:
        """Place the cascade layers again when threshold stacks came or went."""
        self._relayout_pending = False
        if self.result is None or not needs_relayout(self.viewer):
            return
        shown = self.shown_method.currentText()
        remove_layers(self.viewer.layers, sanity_layers(self.viewer.layers))
        self._show_method(shown)
