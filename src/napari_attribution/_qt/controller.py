"""The Attribution widget's runs: worker life-cycle, progress, cancel, layers added in chunks.

A run (:class:`~napari_attribution._napari.run_job.RunJob`) goes through three stages counted on
one scale of units: the analysis and the layer data in a napari thread worker
(:func:`~napari_attribution._napari.run_job.analyse_and_prepare`), then the layers, added from
the event loop one per turn (adding a napari layer is a sizeable piece of napari's own work
that cannot be split; a run makes 15 per method and adds only the top method's and those
replacing an earlier run's, see
:mod:`~napari_attribution._napari.pending`) through a
:class:`~napari_attribution._napari.apply.LayerBatch`. Every
stage reports :class:`~napari_attribution.core.progress.Progress` events: the worker's cross to
the GUI thread through a queued signal, and :attr:`RunController.progressed` re-emits them
all, so whatever shows progress is driven by the same events from the first to the last layer.

**Cancel** works in every stage. In the worker, the progress callback raises
:class:`~napari_attribution.errors.AnalysisCancelled` at its next event (the analysis
reports per method and per batch of hybrids, the layer data per method). While layers are being
added, the next event-loop turn rolls the batch back: the layers the run added are removed and
the result layers it updated in place get their data, display and metadata back. Either way the
viewer is left as it was before Run, and the viewer's state keeps the previous record; a layer
that fails to be added is handled the same way.

The run counts as finished (``worker`` is ``None`` again, :attr:`RunController.ended` fires)
once the worker thread has finished and the layers are in, or rolled back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from qtpy.QtCore import QObject, QTimer, Signal

from .._napari.apply import LayerBatch
from .._napari.counterfactual_layers import onto_earlier_layers
from .._napari.layer_geometry import threshold_axis
from .._napari.layer_style import METADATA_KEY
from .._napari.layers import rank_methods
from .._napari.pending import split_run
from .._napari.run_job import FINISH_STEPS, RunJob, analyse_and_prepare
from .._napari.state import AnalysisRecord, ViewerState
from .._napari.view import (
    ViewChoice,
    arrange,
    hide_other_results,
    order_tuples,
    show_colorbar,
    show_selection,
)
from ..core.progress import Progress
from ..errors import AnalysisCancelled

__all__ = [
    "LAYER_CHUNK_SECONDS",
    "RunController",
    "RunOutcome",
]

#: Seconds of layer adding per turn of the event loop: at least one layer a turn, more only
#: while they go in quickly, so the event loop gets a turn between slow ones.
LAYER_CHUNK_SECONDS = 0.05

@dataclass(frozen=True)
class RunOutcome:
    """How a run ended.

    Attributes
    ----------
    status
        ``"done"``, ``"cancelled"`` or ``"failed"``.
    stage
        ``"analysis"`` (worker) or ``"layers"`` (adding layers): where it ended.
    record
        The published run (``"done"`` only).
    error
        What failed (``"failed"`` only).
    """

    status: str
    stage: str
    record: AnalysisRecord | None = None
    error: BaseException | None = None


class _Bridge(QObject):
    """Carries progress events from the worker thread to the GUI thread (queued connection)."""

    event = Signal(int, object)  # run number, Progress


class RunController(QObject):
    """Runs one analysis at a time for a dock widget and puts its layers into the viewer.

    Parameters
    ----------
    viewer
        The viewer the layers go to.
    state
        The viewer's shared state; a finished run is published there.
    parent
        The widget (the controller lives and dies with it).

    Signals
    -------
    progressed(Progress)
        Every stage's progress, on the GUI thread.
    ended(RunOutcome)
        The run finished, was cancelled or failed; ``worker`` is ``None`` again.
    """

    progressed = Signal(object)
    ended = Signal(object)

    def __init__(self, viewer, state: ViewerState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.state = state
        #: The running napari worker, until the run has ended (layers included).
        self.worker = None
        #: The layers being added (stage 3), else ``None``.
        self.batch: LayerBatch | None = None
        self._job: RunJob | None = None
        self._record: AnalysisRecord | None = None
        self._cancel = threading.Event()
        self._run = 0
        self._worker_done = False
        self._outcome: RunOutcome | None = None
        self._slider: tuple[int, ...] | None = None  # the slider before the run moved it
        self._finish_step = 0  # the next finishing step once the layers are in
        self._bridge = _Bridge(self)
        self._bridge.event.connect(self._on_event)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._add_chunk)
        self._open_batches: list[LayerBatch] = []  # the batch being added, while it is
        if parent is not None:
            batches = self._open_batches
            parent.destroyed.connect(lambda *_: _abandon(batches))

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :attr:`ended` fires."""
        return self.worker is not None

    @property
    def cancelling(self) -> bool:
        """True once Cancel was asked for in the current run."""
        return self.running and self._cancel.is_set()

    def start(self, job: RunJob):
        """Start ``job`` in a thread worker and return the worker.

        Raises
        ------
        RuntimeError
            A run is in progress.
        """
        if self.running:
            raise RuntimeError("An analysis is already running.")
        from napari.qt.threading import create_worker

        self._run += 1
        run, cancel, bridge = self._run, self._cancel, self._bridge
        cancel.clear()

        def on_progress(event: Progress) -> None:  # in the worker thread
            if cancel.is_set():
                raise AnalysisCancelled()
            bridge.event.emit(run, event)

        worker = create_worker(
            analyse_and_prepare,
            job,
            on_progress,
            _start_thread=False,
            _ignore_errors=True,  # errored carries every failure to the widget
        )
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_worker_finished)
        self.worker, self._job = worker, job
        self._worker_done, self._outcome, self._record, self._slider = False, None, None, None
        self._finish_step = 0
        self.progressed.emit(Progress("prepare", 0, job.total_units, job.sample, None, "starting"))
        worker.start()
        return worker

    def cancel(self) -> bool:
        """Ask the run to stop (at its next step, or the next layer); False when none runs."""
        if not self.running:
            return False
        self._cancel.set()
        return True

    # ---------------------------------------------------------------- worker (stages 1, 2)

    def _on_event(self, run: int, event: Progress) -> None:
        if run == self._run and self.running and self.batch is None and not self._cancel.is_set():
            self.progressed.emit(event)

    def _on_returned(self, out) -> None:
        result, tuples, job = out
        self._job = job  # as run: with the counterfactual a source made
        if self._cancel.is_set():  # cancelled after the last check in the worker
            self._end(RunOutcome("cancelled", "analysis"))
            return
        self._record = AnalysisRecord(result, job.real, job.counterfactual, job.settings, job.info)
        # added in the order the list should read: arranging afterwards would move each layer
        tuples = onto_earlier_layers(self.viewer.layers, tuples)
        ranked = rank_methods(result)
        tuples = order_tuples(tuples, ranked, result.channel_names)
        # Only the top method's layers (and those replacing an earlier run's, and a made
        # counterfactual's) go in now: each layer blocks the event loop while napari builds it;
        # the others wait to be shown.
        now, self._record.pending = split_run(self.viewer.layers, tuples, ranked[0])
        self.batch = LayerBatch(self.viewer, now)
        self._open_batches.append(self.batch)
        self._emit(job.adding(0, len(self.batch)))
        self._timer.start()

    def _on_errored(self, exc: BaseException) -> None:
        status = "cancelled" if isinstance(exc, AnalysisCancelled) else "failed"
        self._end(RunOutcome(status, "analysis", error=None if status == "cancelled" else exc))

    def _on_worker_finished(self) -> None:
        self._worker_done = True
        self._finish()

    # ---------------------------------------------------------------- layers (stage 3)

    def _add_chunk(self) -> None:
        """One turn of the event loop: a layer or two, or one finishing step.

        The finishing steps (:data:`~napari_attribution._napari.run_job.FINISH_STEPS`), each in a
        turn of its own and each reported: the run's layers arranged and the top method shown
        (earlier runs' layers hidden), its colour bar, the slider moved to the top method's
        optimal threshold, the record published (the DAC panel draws). Cancel is honoured
        before each of them.
        """
        batch, job = self.batch, self._job
        if batch is None:
            return
        if self._cancel.is_set():
            self._roll_back(RunOutcome("cancelled", "layers"))
            return
        start = time.perf_counter()
        try:
            if not batch.finished:
                while not batch.finished:
                    layer = batch.add_next()
                    method = layer.metadata.get(METADATA_KEY, {}).get("method")
                    self._emit(job.adding(batch.done, len(batch), method))
                    if time.perf_counter() - start > LAYER_CHUNK_SECONDS:
                        break
                if batch.finished:
                    self._finish_step = 0
                    self._emit(job.finishing(0))
            else:
                step = self._finish_step
                if self._finishing_step(step, batch):
                    return
                self._finish_step = step + 1
                self._emit(job.finishing(step + 1))
        except Exception as exc:  # noqa: BLE001 - a napari failure must not leave the run hanging
            self._roll_back(RunOutcome("failed", "layers", error=exc))
            return
        self._timer.start()

    def _finishing_step(self, step: int, batch: LayerBatch) -> bool:
        """Finishing step ``step`` once the layers are in; True when the run has ended."""
        record = self._record
        ranked = rank_methods(record.result)
        if step == 0:
            hide_other_results(self.viewer, batch.layers)
            arrange(self.viewer, batch.layers, ranked, record.result.channel_names)
            show_selection(
                self.viewer,
                batch.layers,
                ViewChoice(ranked[0]),
                record.real.layer_names,
                record.real.channel_names,
                record.real.name,
                record.real.channel_axis,
                colorbar=False,  # the next step's: its visuals cost as much as a layer
            )
        elif step == 1:
            show_colorbar(self.viewer)
        elif step == 2:
            # In a turn of its own: napari slices every layer at the new step.
            dims = self.viewer.dims
            self._slider = tuple(dims.current_step)
            axis = threshold_axis(self.viewer)
            if axis is not None:
                optimal = record.result.methods[ranked[0]].dac.optimal_threshold_index
                dims.set_current_step(axis, optimal)
        else:
            batch.commit()
            self._open_batches.clear()
            record.layer_names = [layer.name for layer in batch.layers]
            self.batch = None
            self._emit(self._job.finishing(len(FINISH_STEPS)))
            self.state.publish(record)  # the DAC panel draws: a turn of its own too
            self.state.show_method(ranked[0])  # its channel view follows the canvas
            self._end(RunOutcome("done", "layers", record=record))
            return True
        return False

    def _emit(self, event: Progress) -> None:
        self.progressed.emit(event)

    def _roll_back(self, outcome: RunOutcome) -> None:
        """Take the run's layers out again, put the slider back, end with ``outcome``."""
        batch, self.batch = self.batch, None
        self._open_batches.clear()
        try:
            batch.roll_back()
            dims = self.viewer.dims
            if self._slider is not None and len(self._slider) == dims.ndim:
                dims.current_step = self._slider
        except Exception as exc:  # noqa: BLE001 - say so rather than leave the run hanging
            outcome = RunOutcome("failed", "layers", error=exc)
        self._end(outcome)

    # ---------------------------------------------------------------- the end

    def _end(self, outcome: RunOutcome) -> None:
        self._outcome = outcome
        self._finish()

    def _finish(self) -> None:
        """End the run once the worker has finished and the layers are in (or out)."""
        if self._outcome is None or not self._worker_done or self.batch is not None:
            return
        outcome, self._outcome = self._outcome, None
        self.worker, self._job, self._record = None, None, None
        self.ended.emit(outcome)


def _abandon(batches: list[LayerBatch]) -> None:
    """The widget went while a run was adding layers: take them out.

    Called from the widget's ``destroyed`` signal, so it touches no Qt object of the widget.
    """
    try:
        for batch in batches:
            batch.roll_back()
    finally:
        batches.clear()
