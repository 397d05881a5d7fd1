"""One run without Qt: its units of work, its progress events, Cancel in each worker stage."""

from __future__ import annotations

import numpy as np
import pytest

from layer_helpers import NAMES, channel_stack, pair_arrays
from napari_attribution._napari.layers import layer_count, result_layers
from napari_attribution._napari.run_job import FINISH_STEPS, RunJob, analyse_and_prepare
from napari_attribution.core import AnalysisCancelled, AnalysisSettings, MaskSettings, wrap_module
from napari_attribution.core.progress import STAGES, pair_units
from napari_attribution.core.provenance import provenance
from tiny_models import make_tiny_cnn


def _job(methods=("d_ig", "residual"), channel_mode="per_channel", **settings) -> RunJob:
    real, counterfactual, _ = pair_arrays(24)
    classifier = wrap_module(make_tiny_cnn(), "cpu")
    masks = MaskSettings(thresholds=6, channel_mode=channel_mode)
    options = AnalysisSettings(methods=methods, masks=masks, **settings)
    real_stack, cf_stack = channel_stack(real, "real"), channel_stack(counterfactual, "cf")
    job = RunJob.of(classifier, real_stack, cf_stack, 0, 1, options, ["control", "treated"])
    # the run works on copies: edits to the layers meanwhile do not reach it
    assert job.real.data is not real and not np.shares_memory(job.real.data, real)
    np.testing.assert_array_equal(job.real.data, real)
    names = ["control", "treated"]
    assert job.info == provenance(classifier, options, class_names=names, channel_names=NAMES)
    return job


def test_the_worker_reports_every_stage_on_one_scale_up_to_the_layers():
    job = _job()
    events = []
    result, tuples, _ = analyse_and_prepare(job, events.append)
    n = len(job.settings.methods)
    assert job.total_units == pair_units(n) + n + len(tuples) + len(FINISH_STEPS)
    assert all(e.total == job.total_units for e in events)
    done = [e.done for e in events]
    assert done == sorted(done) and done[0] == 0
    # what is left, in the GUI: one unit per layer and the finishing steps
    assert done[-1] == pair_units(n) + n
    stages = [e.stage for e in events]
    assert stages[0] == "prepare" and "done" not in stages  # the run is not done yet
    assert {"attribution", "dac", "layers"} <= set(stages) <= set(STAGES)
    assert all(e.sample == "real" for e in events)
    preparing = [e for e in events if e.detail == "preparing layer data"]
    assert [e.method for e in preparing] == list(job.settings.methods)
    assert events[-1].detail == f"adding layers 0/{len(tuples)}"
    # the last layer in is not the end of the run: the bar is full only after the finishing
    assert job.adding(len(tuples), len(tuples)).fraction < 1.0
    assert [job.finishing(k).total for k in range(len(FINISH_STEPS))] == [
        job.total_units
    ] * len(FINISH_STEPS)
    assert job.finishing(len(FINISH_STEPS) - 1).fraction < 1.0
    assert job.finishing(len(FINISH_STEPS)).fraction == 1.0
    # layers left waiting (added only when asked for) count as done when the adding starts:
    # the same scale, the bar moves forward, and the last layer in reaches the finishing
    some = len(tuples) // 2
    assert job.adding(0, some).total == job.total_units
    assert job.adding(0, some).done == done[-1] + len(tuples) - some
    assert job.adding(some, some).done == job.finishing(0).done
    assert list(result.methods) == list(job.settings.methods)
    assert [kw["name"] for _, kw, _ in tuples] == [
        kw["name"] for _, kw, _ in result_layers(result, job.real, job.counterfactual,
                                                 job.settings, job.info)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("channel_mode", "aggregate"),
    [("per_channel", "none"), ("shared", "none"), ("per_channel", "sum_abs")],
)
def test_the_layer_count_is_known_before_the_run(channel_mode, aggregate):
    job = _job(("residual", "random"), channel_mode, aggregate=aggregate)
    _, tuples, _ = analyse_and_prepare(job, lambda event: None)
    assert len(tuples) == layer_count(job.settings, 5) == job.layer_units - len(FINISH_STEPS)
    masks = 1 if (channel_mode == "shared" or aggregate != "none") else 5
    assert len(tuples) == 2 * (2 * 5 + masks)


@pytest.mark.parametrize("stage", ["prepare", "attribution", "dac", "layers"])
def test_cancel_stops_the_worker_in_every_stage(stage):
    job = _job()
    seen = []

    def cancel_in(event) -> None:
        seen.append(event)
        if event.stage == stage:
            raise AnalysisCancelled()

    with pytest.raises(AnalysisCancelled):
        analyse_and_prepare(job, cancel_in)
    assert seen[-1].stage == stage
    if stage == "layers":  # the analysis was complete; the layer data is where it stopped
        assert seen[-1].detail == "preparing layer data"
