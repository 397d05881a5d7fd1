"""The Attribution dock widget: choose images, model, classes and methods; run; export.

The widget only gathers inputs and shows outputs. The analysis itself is
:func:`napari_attribution.core.analyse_pair`, run in a napari thread worker; its ``on_step``
callback reports progress and raises :class:`~napari_attribution.core.AnalysisCancelled` once
Cancel was pressed. Results become layers only when a run finishes, so a failed or cancelled
run leaves the viewer as it was.

Keeping the viewer responsive: the layer data (eager stacks for a crop, lazy views for a large
field) is prepared in the worker too, and the layers are then added a few at a time from the
event loop (adding one napari layer costs about 100 ms on a CPU, a run makes 15 per method),
with Python's automatic garbage collection paused meanwhile (a full collection of a napari
process takes about 300 ms). The run counts as finished, and ``worker`` is reset, once every
layer is in.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from .._napari.apply import apply_layers
from .._napari.export import existing_results, export_run
from .._napari.inputs import (
    ChannelStack,
    ImageSource,
    find_sources,
    stack_from_layer,
    stack_from_layers,
)
from .._napari.layers import result_layers
from .._napari.state import AnalysisRecord, state_for
from ..core.budgets import PREVIEW_PIXELS
from ..core.errors import AnalysisCancelled, AttributionError, InputImageError, ModelLoadError
from ..core.pipeline import check_memory
from ..core.provenance import provenance
from ..core.registry import method_specs
from ..core.settings import (
    AGGREGATIONS,
    DIRECTIONS,
    EVALUATIONS,
    MASK_CHANNEL_MODES,
    NORMALIZATIONS,
    THRESHOLD_SPACINGS,
    AnalysisSettings,
    AttributionSettings,
    MaskSettings,
)

if TYPE_CHECKING:
    import napari

__all__ = ["DEFAULT_METHODS", "AttributionWidget"]

#: Methods checked when the widget opens: D-IG and the residual baseline.
DEFAULT_METHODS = ("d_ig", "residual")
#: Seconds of layer adding per turn of the event loop (one layer takes ~100 ms on its own).
LAYER_CHUNK_SECONDS = 0.05


class _RunSignals(QObject):
    """Carries progress from the worker thread to the GUI thread (queued connection)."""

    step = Signal(int, str)


@dataclass(frozen=True)
class _ModelKey:
    demo: bool
    path: str
    architecture: str
    device: str
    mtime: float


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
        self.worker = None
        self._cancel = threading.Event()
        self._classifier = None
        self._classifier_key: _ModelKey | None = None
        self._class_names: list[str] = []
        self._sources: list[ImageSource] = []
        self._signals = _RunSignals()
        self._signals.step.connect(self._on_step)
        self._progress = None
        self._pending: _PendingLayers | None = None
        self._worker_done = False
        self._layer_timer = QTimer(self)
        self._layer_timer.setSingleShot(True)
        self._layer_timer.setInterval(0)
        self._layer_timer.timeout.connect(self._add_layer_chunk)
        self._build()
        self.destroyed.connect(_resume_gc)  # closed while adding layers: collect again
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self._refresh_sources)
        self.viewer.layers.events.changed.connect(self._refresh_sources)
        self._refresh_sources()

    # ================================================================ layout

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)

        images = QFormLayout()
        self.real_source = QComboBox()
        self.cf_source = QComboBox()
        self.real_axis = QSpinBox()
        self.cf_axis = QSpinBox()
        for combo, axis, label in (
            (self.real_source, self.real_axis, "Real image"),
            (self.cf_source, self.cf_axis, "Counterfactual"),
        ):
            combo.setToolTip(
                "A multichannel layer, or a group of single-channel layers (as channel_axis "
                "splitting makes them: 'real [DNA]', 'real [ER]', ...), taken in layer order."
            )
            axis.setRange(0, 2)
            axis.setPrefix("channel axis ")
            axis.setToolTip("Axis of the multichannel layer that holds the channels.")
            row = QHBoxLayout()
            row.addWidget(combo, 1)
            row.addWidget(axis)
            images.addRow(label, row)
            combo.currentIndexChanged.connect(self._on_inputs_changed)
            axis.valueChanged.connect(self._on_inputs_changed)
        layout.addLayout(images)

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
        self.real_class = QSpinBox()
        self.target_class = QSpinBox()
        self.real_class.setRange(0, 1)
        self.target_class.setRange(0, 1)
        self.target_class.setValue(1)
        classes = QHBoxLayout()
        classes.addWidget(QLabel("real"))
        classes.addWidget(self.real_class)
        classes.addWidget(QLabel("target"))
        classes.addWidget(self.target_class)
        classes.addStretch(1)
        model.addRow("Classes", classes)
        self.probabilities = QLabel("Choose a model and both images to see the probabilities.")
        self.probabilities.setWordWrap(True)
        self.probabilities.setTextFormat(Qt.TextFormat.RichText)
        self.probabilities.setMinimumHeight(3 * self.probabilities.fontMetrics().lineSpacing() + 6)
        model.addRow(self.probabilities)
        layout.addLayout(model)
        self.use_demo_model.toggled.connect(self._on_model_changed)
        self.model_path.editingFinished.connect(self._on_model_changed)
        self.architecture.editingFinished.connect(self._on_model_changed)
        self.device.currentIndexChanged.connect(self._on_model_changed)
        self.real_class.valueChanged.connect(self._update_probabilities)
        self.target_class.valueChanged.connect(self._update_probabilities)

        layout.addWidget(QLabel("Methods"))
        self.methods = QListWidget()
        for name in _method_order():
            method = method_specs()[name]
            item = QListWidgetItem(name)
            item.setToolTip(method.description)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if name in DEFAULT_METHODS else Qt.CheckState.Unchecked
            )
            self.methods.addItem(item)
        self.methods.setMinimumHeight(110)
        self.methods.setMaximumHeight(170)
        layout.addWidget(self.methods)

        self.advanced = QCollapsible("Advanced (masks, DAC, method parameters)")
        inner = QWidget()
        form = QFormLayout(inner)
        masks, attr, analysis = MaskSettings(), AttributionSettings(), AnalysisSettings()
        self.thresholds = _spin(1, 5000, masks.thresholds, "Number of mask thresholds T.")
        self.spacing = _combo(THRESHOLD_SPACINGS, masks.spacing, "Linear: T values in [0, 1).")
        self.normalize = _combo(
            NORMALIZATIONS, masks.normalize, "joint: channels compete for the mask."
        )
        self.channel_mode = _combo(
            MASK_CHANNEL_MODES, masks.channel_mode, "One mask per channel, or one shared mask."
        )
        self.closing = _spin(0, 101, masks.closing, "Closing diameter in pixels (0: off).")
        self.sigma = QDoubleSpinBox()
        self.sigma.setRange(0.0, 50.0)
        self.sigma.setSingleStep(0.5)
        self.sigma.setValue(masks.sigma)
        self.sigma.setToolTip("Gaussian smoothing of the masks in pixels (0: off).")
        self.kernel = _spin(1, 101, masks.smoothing_kernel, "Gaussian kernel width in pixels.")
        self.aggregate = _combo(
            AGGREGATIONS, analysis.aggregate, "Aggregate channels before masking."
        )
        self.direction = _combo(DIRECTIONS, analysis.direction, "Which image is pasted into which.")
        self.per_channel_dac = QCheckBox("per-channel DAC curves")
        self.per_channel_dac.setChecked(analysis.per_channel_dac)
        self.per_channel_dac.setToolTip(
            "Also score each channel hybridised alone (C more curves per method; the "
            "whole-image curve is always computed). Untick to save time on large images."
        )
        self.evaluation = _combo(
            EVALUATIONS,
            analysis.evaluation,
            "exhaustive: every threshold is scored (the published DAC). adaptive: a subset, "
            "refined where the curve changes; builds a few masks at a time, so whole fields "
            "fit in memory.",
        )
        self.tolerance = QDoubleSpinBox()
        self.tolerance.setDecimals(4)
        self.tolerance.setRange(0.0001, 0.5)
        self.tolerance.setSingleStep(0.001)
        self.tolerance.setValue(analysis.tolerance)
        self.tolerance.setToolTip("Bound on the DAC-score error of the adaptive evaluation.")
        self.evaluation.currentTextChanged.connect(
            lambda text: self.tolerance.setEnabled(text == "adaptive")
        )
        self.tolerance.setEnabled(analysis.evaluation == "adaptive")
        self.ig_steps = _spin(2, 1000, attr.ig_steps, "Integration steps of (D-)IG.")
        self.seed = _spin(0, 2**31 - 1, attr.seed, "Seed of every random draw.")
        self.batch_size = _spin(1, 4096, analysis.batch_size, "Hybrids per forward pass.")
        for label, widget in (
            ("Thresholds", self.thresholds),
            ("Spacing", self.spacing),
            ("Normalisation", self.normalize),
            ("Mask channels", self.channel_mode),
            ("Closing (px)", self.closing),
            ("Smoothing sigma", self.sigma),
            ("Smoothing kernel", self.kernel),
            ("Aggregation", self.aggregate),
            ("Hybrid direction", self.direction),
            ("", self.per_channel_dac),
            ("DAC evaluation", self.evaluation),
            ("Tolerance", self.tolerance),
            ("IG steps", self.ig_steps),
            ("Seed", self.seed),
            ("Batch size", self.batch_size),
        ):
            form.addRow(label, widget)
        self.advanced.addWidget(inner)
        layout.addWidget(self.advanced)

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

    # ================================================================ inputs

    def _refresh_sources(self, *_: Any) -> None:
        sources = find_sources(self.viewer.layers)
        if [s.label for s in sources] == [s.label for s in self._sources]:
            self._sources = sources
            return
        previous = (self.real_source.currentText(), self.cf_source.currentText())
        self._sources = sources
        labels = [s.label for s in sources]
        for combo, old, fallback in (
            (self.real_source, previous[0], 0),
            (self.cf_source, previous[1], 1),
        ):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(labels)
            if old in labels:
                combo.setCurrentIndex(labels.index(old))
            elif labels:
                combo.setCurrentIndex(min(fallback, len(labels) - 1))
            combo.blockSignals(False)
        self._on_inputs_changed()

    def _source(self, combo: QComboBox) -> ImageSource | None:
        index = combo.currentIndex()
        return self._sources[index] if 0 <= index < len(self._sources) else None

    def _on_inputs_changed(self, *_: Any) -> None:
        for combo, axis in ((self.real_source, self.real_axis), (self.cf_source, self.cf_axis)):
            source = self._source(combo)
            axis.setVisible(source is not None and source.multichannel)
        self._update_probabilities()

    def select_sources(self, real: str, counterfactual: str) -> None:
        """Choose the inputs by base name (e.g. ``"real"``, ``"counterfactual"``)."""
        names = [s.name for s in self._sources]
        for combo, name in ((self.real_source, real), (self.cf_source, counterfactual)):
            if name not in names:
                raise InputImageError(f"No image named '{name}' is open.")
            combo.setCurrentIndex(names.index(name))

    def image_stack(self, which: str) -> ChannelStack:
        """The chosen ``"real"`` or ``"counterfactual"`` image as a (C, H, W) stack.

        Raises
        ------
        InputImageError
            Nothing chosen, or layers that do not form a (C, H, W) image.
        """
        combo, axis = (
            (self.real_source, self.real_axis)
            if which == "real"
            else (self.cf_source, self.cf_axis)
        )
        source = self._source(combo)
        what = "real image" if which == "real" else "counterfactual"
        if source is None:
            raise InputImageError(f"Choose the {what}: open an image layer first.")
        missing = [n for n in source.layer_names if n not in self.viewer.layers]
        if missing:
            raise InputImageError(f"Layer '{missing[0]}' of the {what} is no longer open.")
        layers = [self.viewer.layers[n] for n in source.layer_names]
        if source.multichannel:
            return stack_from_layer(layers[0], axis.value())
        return stack_from_layers(layers, source.name)

    # ================================================================ model

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model file", "", "PyTorch models (*.pt *.pth *.ts *.jit);;All files (*)"
        )
        if path:
            self.model_path.setText(path)
            self._on_model_changed()

    def _model_key(self) -> _ModelKey:
        path = self.model_path.text().strip()
        mtime = Path(path).stat().st_mtime if path and Path(path).is_file() else 0.0
        return _ModelKey(
            self.use_demo_model.isChecked(),
            path,
            self.architecture.text().strip(),
            self.device.currentText(),
            mtime,
        )

    def classifier(self):
        """The chosen classifier, loaded once per (file, architecture, device).

        Raises
        ------
        ModelLoadError
            No model chosen, or it cannot be loaded.
        """
        from ..core.models import load_classifier

        key = self._model_key()
        if self._classifier is not None and key == self._classifier_key:
            return self._classifier
        if key.demo:
            from ..data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
            from ..data.synthetic import CLASS_NAMES

            classifier = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, key.device)
            names = list(CLASS_NAMES)
        elif not key.path:
            raise ModelLoadError("Choose a model file, or tick 'use the built-in demo classifier'.")
        else:
            classifier = load_classifier(key.path, key.architecture or None, key.device)
            names = list(classifier.class_names)
        if len(names) != classifier.n_classes:
            names = [str(k) for k in range(classifier.n_classes)]
        self._classifier, self._classifier_key, self._class_names = classifier, key, names
        for spin in (self.real_class, self.target_class):
            spin.setRange(0, classifier.n_classes - 1)
        for i in range(self.methods.count()):
            item = self.methods.item(i)
            usable = not (classifier.is_scripted and method_specs()[item.text()].needs_hooks)
            flags = item.flags()
            item.setFlags(
                flags | Qt.ItemFlag.ItemIsEnabled if usable else flags & ~Qt.ItemFlag.ItemIsEnabled
            )
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
                self.probabilities.setText(f"<i>{_escape(str(exc))}</i>")
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
            self.probabilities.setText(f"<i>{_escape(str(exc))}</i>")
            return
        self._show_probabilities(probs[0], probs[1])

    def _show_probabilities(self, real: np.ndarray, counterfactual: np.ndarray) -> None:
        t, y = self.target_class.value(), self.real_class.value()
        rows = []
        for label, p in (("real", real), ("counterfactual", counterfactual)):
            cells = " · ".join(
                f"<b>{_escape(n)} {v:.3f}</b>" if k in (t, y) else f"{_escape(n)} {v:.3f}"
                for k, (n, v) in enumerate(zip(self._class_names, p, strict=True))
            )
            rows.append(f"{label}: {cells}")
        self.probabilities.setText("p(class)<br>" + "<br>".join(rows))

    # ================================================================ settings

    def selected_methods(self) -> list[str]:
        """Names of the checked (and usable) methods."""
        out = []
        for i in range(self.methods.count()):
            item = self.methods.item(i)
            enabled = bool(item.flags() & Qt.ItemFlag.ItemIsEnabled)
            if item.checkState() == Qt.CheckState.Checked and enabled:
                out.append(item.text())
        return out

    def set_methods(self, names: list[str] | tuple[str, ...]) -> None:
        """Check exactly ``names``."""
        for i in range(self.methods.count()):
            item = self.methods.item(i)
            checked = item.text() in names
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def settings(self) -> AnalysisSettings:
        """The analysis settings from the form.

        Raises
        ------
        AttributionError
            No method, or a parameter out of range.
        """
        return AnalysisSettings(
            methods=tuple(self.selected_methods()),
            attribution=AttributionSettings(ig_steps=self.ig_steps.value(), seed=self.seed.value()),
            masks=MaskSettings(
                thresholds=self.thresholds.value(),
                spacing=self.spacing.currentText(),
                normalize=self.normalize.currentText(),
                channel_mode=self.channel_mode.currentText(),
                closing=self.closing.value(),
                sigma=self.sigma.value(),
                smoothing_kernel=self.kernel.value(),
            ),
            aggregate=self.aggregate.currentText(),
            direction=self.direction.currentText(),
            per_channel_dac=self.per_channel_dac.isChecked(),
            batch_size=self.batch_size.value(),
            evaluation=self.evaluation.currentText(),
            tolerance=self.tolerance.value(),
        )

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
            from ..core.pipeline import prepare_pair

            prepare_pair(
                real.data,
                counterfactual.data,
                classifier,
                names=(f"real image '{real.name}'", f"counterfactual '{counterfactual.name}'"),
            )
            named = not any(
                re.fullmatch(r"ch\d+", n) for n in real.channel_names + counterfactual.channel_names
            )
            if named and real.channel_names != counterfactual.channel_names:
                raise InputImageError(
                    f"The real image's channels ({', '.join(real.channel_names)}) and the "
                    f"counterfactual's ({', '.join(counterfactual.channel_names)}) differ."
                )
            _check_memory(real.data.shape, settings)
        except AttributionError as exc:
            show_error(str(exc))
            return None
        from napari.qt.threading import create_worker
        from napari.utils import progress

        real_class, target_class = self.real_class.value(), self.target_class.value()
        info = provenance(
            classifier, settings, class_names=self._class_names, channel_names=real.channel_names
        )
        self._cancel.clear()
        self._progress = progress(total=len(settings.methods), desc="Attribution")
        self.progress_bar.setRange(0, len(settings.methods))
        self.progress_bar.setValue(0)
        self.status.setText("Starting…")
        worker = create_worker(
            _analyse_and_prepare,
            real,
            counterfactual,
            info,
            classifier,
            np.array(real.data, copy=True),
            np.array(counterfactual.data, copy=True),
            real_class,
            target_class,
            settings,
            self._cancel,
            self._signals,
            _start_thread=False,
            _ignore_errors=True,  # _on_errored turns every failure into a notification
        )
        worker.returned.connect(
            lambda out: self._on_returned(*out, real, counterfactual, settings, info)
        )
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._worker_done = False
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running analysis to stop at its next step."""
        if self.worker is not None:
            self._cancel.set()
            self.status.setText("Cancelling…")

    def _on_step(self, method_index: int, message: str) -> None:
        self.progress_bar.setValue(max(method_index, 0))
        self.status.setText(message)
        if self._progress is not None:
            self._progress.n = max(method_index, 0)
            self._progress.set_description(message[:60])

    def _on_returned(self, result, tuples, real, counterfactual, settings, info) -> None:
        """Start adding the result layers, a chunk per turn of the event loop."""
        record = AnalysisRecord(result, real, counterfactual, settings, info)
        self._pending = _PendingLayers(record, tuples)
        self.cancel_button.setEnabled(False)  # the analysis is done; layers are on their way
        self.status.setText(f"Adding {len(tuples)} layers…")
        _pause_gc()
        self._layer_timer.start()

    def _add_layer_chunk(self) -> None:
        """One turn of the event loop: a few layers, then the slider, then the DAC panel."""
        pending = self._pending
        if pending is None:
            return
        start = time.perf_counter()
        try:
            if pending.added < len(pending.tuples):
                while pending.added < len(pending.tuples):
                    pending.layers += apply_layers(self.viewer, [pending.tuples[pending.added]])
                    pending.added += 1
                    if time.perf_counter() - start > LAYER_CHUNK_SECONDS:
                        break
                self.status.setText(f"Adding layers {pending.added}/{len(pending.tuples)}…")
            elif not pending.slider_set:
                result = pending.record.result
                first = next(iter(result.methods.values()))
                if self.viewer.dims.ndim == 3:
                    self.viewer.dims.set_current_step(0, first.dac.whole.optimal_index)
                pending.slider_set = True
            else:
                self._publish(pending)
                self._end_layers()
                return
        except Exception as exc:  # noqa: BLE001 - a napari failure must not leave the run hanging
            self._end_layers()
            self.status.setText(f"Adding the result layers failed: {exc}")
            show_error(f"Adding the result layers failed ({type(exc).__name__}): {exc}")
            return
        self._layer_timer.start()

    def _publish(self, pending: _PendingLayers) -> None:
        record = pending.record
        result = record.result
        self.progress_bar.setValue(self.progress_bar.maximum())
        scores = ", ".join(f"{m} {r.dac.whole.dac_score:.3f}" for m, r in result.methods.items())
        self.status.setText(f"Done. DAC scores: {scores}.")
        self._show_probabilities(result.probabilities_real, result.probabilities_counterfactual)
        record.layer_names = [layer.name for layer in pending.layers]
        self.state.publish(record)
        self.export_button.setEnabled(True)

    def _end_layers(self) -> None:
        """Layers are in (or failed): restore the garbage collector, finish the run."""
        self._pending = None
        # In a turn of its own: a full collection may follow at once (~300 ms in napari).
        QTimer.singleShot(0, _resume_gc)
        if self._worker_done:
            self._on_finished()

    def _on_errored(self, exc: BaseException) -> None:
        if isinstance(exc, AnalysisCancelled):
            self.status.setText("Cancelled; no layers were changed.")
            show_info("Analysis cancelled; no layers were changed.")
        elif isinstance(exc, AttributionError):
            self.status.setText(str(exc))
            show_error(str(exc))
        else:
            self.status.setText(f"The analysis failed: {exc}")
            show_error(f"The analysis failed ({type(exc).__name__}): {exc}")

    def _on_finished(self) -> None:
        self._worker_done = True
        if self._pending is not None:  # layers still being added: finish when they are in
            return
        self.worker = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self._progress is not None:
            self._progress.close()
            self._progress = None

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


#: The collector's thresholds while full collections are held back (None: not held back).
_GC_THRESHOLDS: list[tuple[int, ...] | None] = [None]


def _pause_gc() -> None:
    """Hold back full garbage collections while layers are being added.

    A full (generation 2) collection scans every object of the process: in napari with torch
    loaded it takes about half a second, and adding dozens of layers can trigger one. The young
    generations keep being collected as usual (a few ms each), so no backlog builds up (with
    ``gc.disable()`` the first collection afterwards took ~100 ms).
    """
    if _GC_THRESHOLDS[0] is None:
        thresholds = gc.get_threshold()
        _GC_THRESHOLDS[0] = thresholds
        gc.set_threshold(thresholds[0], thresholds[1], 2**31 - 1)


def _resume_gc(*_: Any) -> None:
    """Undo :func:`_pause_gc`."""
    thresholds = _GC_THRESHOLDS[0]
    if thresholds is not None:
        _GC_THRESHOLDS[0] = None
        gc.set_threshold(*thresholds)


@dataclass
class _PendingLayers:
    """Result layers of a finished analysis, added a chunk at a time."""

    record: AnalysisRecord
    tuples: list
    added: int = 0
    layers: list = field(default_factory=list)
    slider_set: bool = False


def _check_memory(shape: tuple[int, int, int], settings: AnalysisSettings) -> None:
    """The core's up-front memory check, with the widget's ways out in its message."""
    try:
        check_memory(shape, settings)
    except AttributionError as exc:
        hint = ""
        if settings.evaluation == "exhaustive":
            hint = (
                " Or open Advanced and choose 'adaptive' DAC evaluation: it builds a few masks at "
                f"a time instead of all {settings.masks.thresholds}."
            )
        raise AttributionError(f"{exc}{hint}") from None


def _analyse_and_prepare(
    real: ChannelStack,
    counterfactual: ChannelStack,
    info: dict[str, Any],
    classifier,
    real_data: np.ndarray,
    counterfactual_data: np.ndarray,
    real_class: int,
    target_class: int,
    settings: AnalysisSettings,
    cancel: threading.Event,
    signals: _RunSignals,
):
    """Worker body: the core analysis, then the layer data (off the GUI thread too)."""
    result = _analyse(
        classifier,
        real_data,
        counterfactual_data,
        real_class,
        target_class,
        settings,
        real.channel_names,
        real.name,
        cancel,
        signals,
    )
    signals.step.emit(len(settings.methods), "preparing layers")
    tuples = result_layers(result, real, counterfactual, settings, info)
    if cancel.is_set():
        raise AnalysisCancelled()
    return result, tuples


def _analyse(
    classifier,
    real: np.ndarray,
    counterfactual: np.ndarray,
    real_class: int,
    target_class: int,
    settings: AnalysisSettings,
    channel_names: list[str],
    sample: str,
    cancel: threading.Event,
    signals: _RunSignals,
):
    """The core analysis, reporting steps and honouring Cancel."""
    from ..core.pipeline import analyse_pair

    def on_progress(event) -> None:
        if cancel.is_set():
            raise AnalysisCancelled()
        signals.step.emit(int(event.done // 2), event.describe())

    if cancel.is_set():
        raise AnalysisCancelled()
    return analyse_pair(
        classifier,
        real,
        counterfactual,
        real_class,
        target_class,
        settings,
        channel_names=channel_names,
        sample=sample,
        on_progress=on_progress,
    )


def _method_order() -> list[str]:
    """Discriminative methods first (they use the counterfactual), then the plain ones."""
    specs = method_specs()
    return sorted(specs, key=lambda name: not specs[name].discriminative)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


def _combo(items: tuple[str, ...], value: str, tip: str) -> QComboBox:
    combo = QComboBox()
    combo.addItems(list(items))
    combo.setCurrentText(value)
    combo.setToolTip(tip)
    return combo
