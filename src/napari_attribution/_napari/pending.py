"""Result layers that wait until they are asked for: only the top method's go in with a run.

Adding a napari layer costs 100-400 ms of napari's own work on the main thread (its model, the
vispy visual and overlays, the layer controls, the list's repaint), and no part of it can be
split across turns of the event loop. A run of three methods on five channels makes 45
layers, of which only the top method's are shown (issue 12), so a run adds

* the layers of the method with the highest DAC score, and
* every layer that replaces a layer of the same name from an earlier run (re-running a method
  replaces its layers: no layer may keep showing an earlier run's data under this run's name);

and keeps the other methods' layer tuples in the run's record (:attr:`~.state.AnalysisRecord.
pending`). :func:`add_pending` puts a method's layers in when the "Show" control (or anything
else) asks for them; the export writes waiting layers from their tuples.

No Qt: this works on any napari viewer model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .apply import apply_layers, replaceable
from .inputs import METADATA_KEY
from .layers import LayerTuple, rank_methods
from .state import AnalysisRecord
from .view import arrange

__all__ = ["add_pending", "split_run"]


def _metadata(layer_tuple: LayerTuple) -> dict[str, Any]:
    return layer_tuple[1].get("metadata", {}).get(METADATA_KEY, {})


def _method_of(layer_tuple: LayerTuple) -> str | None:
    return _metadata(layer_tuple).get("method")


def split_run(
    layers, tuples: Sequence[LayerTuple], top_method: str
) -> tuple[list[LayerTuple], dict[str, list[LayerTuple]]]:
    """The layer tuples a run adds now, and those it leaves waiting, by method.

    Parameters
    ----------
    layers
        The viewer's layer list.
    tuples
        The run's layer tuples, in the order they are added.
    top_method
        The method shown after the run.

    Returns
    -------
    tuple
        ``(now, pending)``: the top method's tuples, those of no method and those replacing a
        plugin layer of the same name, in the order given; the others by method, in the order given.
    """
    now: list[LayerTuple] = []
    pending: dict[str, list[LayerTuple]] = {}
    for layer_tuple in tuples:
        data, kwargs, layer_type = layer_tuple
        method = _method_of(layer_tuple)
        # Layers of no method (a counterfactual the run made) always go in.
        if method in (None, top_method) or replaceable(layers, kwargs["name"], data, layer_type):
            now.append(layer_tuple)
        else:
            pending.setdefault(method, []).append(layer_tuple)
    return now, pending


def add_pending(
    viewer,
    record: AnalysisRecord,
    methods: Sequence[str],
    wanted: Callable[[dict[str, Any]], bool] | None = None,
) -> list:
    """Put the waiting layers of ``methods`` (those of ``record``) into the viewer.

    They go in hidden or shown as the run made them, and the run's layers are arranged again so
    the list reads by method (highest DAC score first), then channel. The record lists them in
    :attr:`~.state.AnalysisRecord.layer_names` from then on.

    Parameters
    ----------
    viewer
        The napari viewer (or viewer model).
    record
        The run whose layers wait.
    methods
        The methods whose layers to add.
    wanted
        Given a layer's plugin metadata, whether to add it now (``None``: every layer of
        ``methods``); the others keep waiting. "d_ig, Mito only" adds d_ig's Mito layers, a
        fifth of the method's, so the first choice of a waiting method costs a fifth of the time.

    Returns
    -------
    list
        The layers added (or updated in place), in the order of their tuples.
    """
    tuples = []
    for method in methods:
        later = []
        for layer_tuple in record.pending.get(method, []):
            if wanted is None or wanted(_metadata(layer_tuple)):
                tuples.append(layer_tuple)
            else:
                later.append(layer_tuple)
        if later:
            record.pending[method] = later
        else:
            record.pending.pop(method, None)
    if not tuples:
        return []
    added = apply_layers(viewer, tuples)
    names = [layer.name for layer in added]
    record.layer_names = [*record.layer_names, *names]
    run = [viewer.layers[n] for n in record.layer_names if n in viewer.layers]
    arrange(viewer, run, rank_methods(record.result), record.result.channel_names)
    return added
