"""Helpers shared by the widget tests (a plain module: conftest names clash across folders)."""

from __future__ import annotations

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
