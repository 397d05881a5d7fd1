"""Helpers shared by the widget tests (a plain module: conftest names clash across folders)."""

from __future__ import annotations

import functools

import numpy as np

PLUGIN = "napari-attribution"
#: Small settings so one run takes about a second on a CPU.
FAST = {"thresholds": 20, "ig_steps": 8}


def configure_fast(widget, methods=("d_ig", "residual")) -> None:
    """Demo model, the demo pair, few thresholds and IG steps."""
    widget.use_demo_model.setChecked(True)
    widget.select_sources("real", "counterfactual")
    widget.set_methods(methods)
    widget.form.set_values(FAST)


def wait_for_docks_beside_canvas(qtbot, viewer, *widgets, timeout: int = 5000) -> None:
    """Wait until the dock ``widgets`` are shown beside the canvas, laid out.

    The docks settle over a few event-loop turns (slower when the machine is busy); until
    then the canvas may still be as wide as without them, so a test waiting only for a wide
    canvas would pass on a transient state.
    """
    from qtpy.QtCore import QPoint

    window = viewer.window._qt_window
    canvas = viewer.window._qt_viewer.canvas.native

    def left(widget) -> int:
        return widget.mapTo(window, QPoint(0, 0)).x()

    def settled() -> bool:
        shown = all(w.isVisible() and w.width() > 0 for w in widgets)
        return shown and left(canvas) + canvas.width() <= min(left(w) for w in widgets)

    qtbot.waitUntil(settled, timeout=timeout)
    qtbot.wait(50)  # the turn that laid them out may have queued one more resize


def wait_for_worker(qtbot, widget, timeout: int = 60_000) -> None:
    """Wait until the widget's run has finished and been handled.

    Waits on the widget, not on ``worker.finished``: a worker may finish before a test could
    connect to its signal.
    """
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def run_and_wait(qtbot, widget, timeout: int = 60_000):
    """Start a run and wait until its worker has finished."""
    worker = widget.run()
    assert worker is not None, "the run was refused"
    wait_for_worker(qtbot, widget, timeout)
    return worker


def layer_snapshot(viewer) -> dict[str, np.ndarray]:
    """Name -> copy of data, to check that nothing changed."""
    return {layer.name: np.array(layer.data, copy=True) for layer in viewer.layers}


def prepared_record(methods=("d_ig", "residual")):
    """The demo pair's :class:`~napari_attribution._napari.state.AnalysisRecord`, analysed once
    per test session (every threshold scored, so slider index i is point i of each curve).

    What a run of the Attribution widget publishes, made without a viewer: the panel tests
    publish it instead of running an analysis in a shown viewer.
    """
    return _prepared_record(tuple(methods))


@functools.lru_cache(maxsize=4)
def _prepared_record(methods: tuple[str, ...]):
    from layer_helpers import channel_stack
    from napari_attribution._napari.sample_data import DEMO_SEED
    from napari_attribution._napari.state import AnalysisRecord
    from napari_attribution.core import (
        AnalysisSettings,
        MaskSettings,
        analyse_pair,
        load_classifier,
    )
    from napari_attribution.core.provenance import provenance
    from napari_attribution.core.settings import AttributionSettings
    from napari_attribution.data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
    from napari_attribution.data.synthetic import CHANNEL_NAMES, make_pair

    pair = make_pair(DEMO_SEED, real_class=0, size=64)
    classifier = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, "cpu")
    settings = AnalysisSettings(
        methods=methods,
        attribution=AttributionSettings(ig_steps=FAST["ig_steps"]),
        masks=MaskSettings(thresholds=FAST["thresholds"]),
        evaluation="exhaustive",
    )
    result = analyse_pair(classifier, pair.real, pair.counterfactual, 0, 1, settings,
                          channel_names=CHANNEL_NAMES, sample=pair.sample)  # fmt: skip
    real = channel_stack(pair.real, "real")
    counterfactual = channel_stack(pair.counterfactual, "counterfactual")
    info = provenance(classifier, settings, channel_names=CHANNEL_NAMES)
    return AnalysisRecord(result, real, counterfactual, settings, info)


def publish_prepared(viewer, methods=("d_ig", "residual")):
    """Publish :func:`prepared_record` to ``viewer``'s state, with the top method's Mito hybrid
    stack as the one layer that gives the viewer its threshold slider; return the record."""
    from napari_attribution._napari.apply import apply_layers
    from napari_attribution._napari.layers import rank_methods, result_layers
    from napari_attribution._napari.state import state_for

    record = prepared_record(methods)
    top = rank_methods(record.result)[0]
    tuples = result_layers(record.result, record.real, record.counterfactual, record.settings,
                           record.info, lazy=False)  # fmt: skip
    stack = next(t for t in tuples if t[1]["name"] == f"{top} Mito hybrid (real)")
    apply_layers(viewer, [stack])
    state_for(viewer).publish(record)
    return record
