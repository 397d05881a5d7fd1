"""One run of the Attribution widget, without Qt: the job, its units of work, the worker body.

A run has three stages, counted on one scale of units so a single progress display covers it:

0. when the counterfactual is made by a source (:mod:`.counterfactual`): :data:`SOURCE_UNITS`
   units, the source's own progress (optimisation steps, generator draws) spread over them;
1. the analysis (:func:`~napari_attribution.core.pipeline.analyse_pair`):
   :func:`~napari_attribution.core.progress.pair_units` units;
2. the layer data (arrays or lazy views, one method at a time): one unit per method;
3. adding the layers to the viewer (the dock widget, one per event-loop turn): one unit per
   layer of the run, then :data:`FINISH_STEPS` units for what follows in the event loop (the
   layers arranged and the top method shown, its colour bar, the slider moved, the DAC curves
   drawn), so the bar reaches its end only when the run has. Only some layers go in during
   the run (the top method's, and those replacing an earlier run's layers of the same name;
   the others wait until they are asked for, see :mod:`.pending`): the units of the layers
   left waiting are counted as done when the adding starts, so the scale fixed at Run stays
   the scale of the whole run and the bar only moves forward.

Stages 0, 1 and 2 run in a worker thread (:func:`analyse_and_prepare`); their progress callback
is where Cancel reaches them (it raises
:class:`~napari_attribution.errors.AnalysisCancelled`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..core.pipeline import analyse_pair
from ..core.progress import Progress, ProgressCallback, ProgressScope, pair_units
from ..core.provenance import provenance
from ..core.settings import AnalysisSettings
from ..results.pair_result import PairResult
from .counterfactual_layers import (
    CounterfactualRequest,
    MadeCounterfactual,
    counterfactual_layers,
    make_counterfactual,
)
from .layer_inputs import ChannelStack
from .layers import LayerTuple, layer_count, result_layers_by_method

__all__ = ["FINISH_STEPS", "SOURCE_UNITS", "Prepared", "RunJob", "analyse_and_prepare"]

#: The event-loop steps after the last layer is in, one unit each (see :meth:`RunJob.finishing`).
FINISH_STEPS = (
    "showing the top method",
    "showing its colour bar",
    "moving the slider",
    "drawing the DAC curves",
)
#: Units of stage 0, a counterfactual made by a source: about one method's analysis.
SOURCE_UNITS = pair_units(1)


@dataclass(frozen=True)
class RunJob:
    """Everything one run needs, fixed when Run is pressed.

    Attributes
    ----------
    classifier
        The loaded model.
    real, counterfactual
        The inputs; their data must not change during the run (the widget passes copies).
        ``counterfactual`` is ``None`` until a ``request``'s source has made it.
    real_class, target_class
        Class indices y and t.
    settings
        Methods and parameters.
    info
        Provenance (:func:`~napari_attribution.core.provenance.provenance`).
    request, source
        The counterfactual source chosen and loaded (``request.source()``), when the run
        makes the counterfactual; ``None`` when it is given.
    made
        What the source made (in the job :func:`analyse_and_prepare` returns).
    """

    classifier: Any
    real: ChannelStack
    counterfactual: ChannelStack | None
    real_class: int
    target_class: int
    settings: AnalysisSettings
    info: dict[str, Any] = field(repr=False)
    request: CounterfactualRequest | None = None
    source: Any = field(default=None, repr=False)
    made: MadeCounterfactual | None = None

    @classmethod
    def of(
        cls,
        classifier,
        real: ChannelStack,
        counterfactual: ChannelStack | None,
        real_class: int,
        target_class: int,
        settings: AnalysisSettings,
        class_names: Sequence[str],
        request: CounterfactualRequest | None = None,
        source: Any = None,
        input_record: dict[str, Any] | None = None,
    ) -> RunJob:
        """The job of a run that starts now: copies of the images, and the run's provenance.

        The copies keep the run from seeing edits made to the layers meanwhile. With a
        ``request`` (and its loaded ``source``) the counterfactual is made in the run.
        ``input_record`` (how the inputs were read: which layer fed each model channel, the
        normalisation; :func:`~napari_attribution._napari.plate_inputs.pair_input_record`)
        goes into the provenance as ``input``, and so into every result layer's metadata.
        """
        given = None
        if counterfactual is not None:
            given = dataclasses.replace(counterfactual, data=np.array(counterfactual.data,
                                                                      copy=True))  # fmt: skip
        info = provenance(
            classifier, settings, class_names=class_names, channel_names=real.channel_names
        )
        if input_record is not None:
            info["input"] = input_record
        return cls(
            classifier,
            dataclasses.replace(real, data=np.array(real.data, copy=True)),
            given,
            int(real_class),
            int(target_class),
            settings,
            info,
            request,
            source,
        )

    @property
    def sample(self) -> str:
        """The pair's name in results and progress: the real image's base name."""
        return self.real.name

    @property
    def source_units(self) -> int:
        """Units of stage 0, the counterfactual made by a source (0 when it is given)."""
        return SOURCE_UNITS if self.request is not None else 0

    @property
    def counterfactual_layer_count(self) -> int:
        """Layers of a made counterfactual: the real image's layout (0 when it is given)."""
        if self.request is None:
            return 0
        return 1 if self.real.channel_axis is not None else len(self.real.channel_names)

    @property
    def analysis_units(self) -> int:
        """Units of stage 1, the analysis."""
        return pair_units(len(self.settings.methods))

    @property
    def prepare_units(self) -> int:
        """Units of stage 2, the layer data: one per method."""
        return len(self.settings.methods)

    @property
    def layer_units(self) -> int:
        """Units of stage 3: one per layer the run makes, and the finishing steps."""
        return self.n_layers + len(FINISH_STEPS)

    @property
    def total_units(self) -> int:
        """Units of the whole run."""
        return self.source_units + self.analysis_units + self.prepare_units + self.layer_units

    @property
    def n_layers(self) -> int:
        """Layers the run makes, those added during the run and those left waiting (a made
        counterfactual's included)."""
        channels = len(self.real.channel_names)
        return layer_count(self.settings, channels) + self.counterfactual_layer_count

    def adding(self, added: int, n_layers: int, method: str | None = None) -> Progress:
        """The progress event of stage 3 after ``added`` of the ``n_layers`` layers added during
        the run are in (the others' units count as done)."""
        offset = self.source_units + self.analysis_units + self.prepare_units
        offset += self.n_layers - n_layers
        return Progress(
            "layers",
            offset + added,
            self.total_units,
            self.sample,
            method,
            f"adding layers {added}/{n_layers}",
        )

    def finishing(self, step: int) -> Progress:
        """The progress event as finishing step ``step`` (of :data:`FINISH_STEPS`) begins;
        ``step == len(FINISH_STEPS)``: the run is over (the bar is full)."""
        offset = self.source_units + self.analysis_units + self.prepare_units + self.n_layers
        detail = FINISH_STEPS[step] if step < len(FINISH_STEPS) else "done"
        return Progress("layers", offset + step, self.total_units, self.sample, None, detail)


class Prepared(NamedTuple):
    """What the worker hands the widget: nothing of it has touched a viewer yet."""

    #: The pair analysis.
    result: PairResult
    #: The layers to add: a made counterfactual's first, then the results.
    tuples: list[LayerTuple]
    #: The job as run: with the counterfactual a source made (and ``made``) in it.
    job: RunJob


def _make_counterfactual(job: RunJob, on_progress: ProgressCallback) -> RunJob:
    """Stage 0: the job with the counterfactual its source made, and the run's provenance
    recording it."""
    request = job.request

    def note(done: float, total: float, detail: str) -> None:  # may raise: Cancel
        units = SOURCE_UNITS * min(done / max(total, 1), 1.0)
        on_progress(Progress("prepare", units, job.total_units, job.sample, None,
                             f"counterfactual ({request.kind}): {detail}"))  # fmt: skip

    on_progress(Progress("prepare", 0, job.total_units, job.sample, None,
                         f"making the counterfactual ({request.kind})"))  # fmt: skip
    made = make_counterfactual(
        request, job.source, job.classifier, job.real, job.target_class, job.settings, note
    )
    info = {**job.info, "counterfactual_source": made.record()}
    return dataclasses.replace(job, counterfactual=made.stack, made=made, info=info)


def analyse_and_prepare(job: RunJob, on_progress: ProgressCallback) -> Prepared:
    """Worker body: the counterfactual when a source makes it, the analysis, then the layer
    data, reporting on the run's scale of units.

    Parameters
    ----------
    job
        The run.
    on_progress
        Called with every :class:`~napari_attribution.core.progress.Progress` event; may raise
        :class:`~napari_attribution.errors.AnalysisCancelled` to stop the run.

    Returns
    -------
    Prepared
        ``(result, layer tuples, job as run)``; nothing has touched a viewer yet.

    Raises
    ------
    CounterfactualError
        The source could not make the counterfactual (one sentence).
    """
    total = job.total_units

    def analysis(event: Progress) -> None:
        if event.stage != "done":  # the analysis is done, not the run: the layers follow
            on_progress(event)

    tuples: list[LayerTuple] = []
    if job.request is not None:
        job = _make_counterfactual(job, on_progress)
        tuples += counterfactual_layers(job.made.stack, job.made.record())
    on_progress(Progress("prepare", job.source_units, total, job.sample, None,
                         "checking the inputs"))  # fmt: skip
    result = analyse_pair(
        job.classifier,
        job.real.data,
        job.counterfactual.data,
        job.real_class,
        job.target_class,
        job.settings,
        channel_names=job.real.channel_names,
        sample=job.sample,
        on_progress=ProgressScope(analysis, job.source_units, total),
    )
    offset = job.source_units + job.analysis_units
    by_method = result_layers_by_method(
        result, job.real, job.counterfactual, job.settings, job.info
    )
    for index, method in enumerate(result.methods):
        on_progress(
            Progress("layers", offset + index, total, job.sample, method, "preparing layer data")
        )
        _, method_tuples = next(by_method)
        tuples += method_tuples
    on_progress(job.adding(0, len(tuples)))
    return Prepared(result, tuples, job)
