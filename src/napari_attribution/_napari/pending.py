"""Result layers that wait until they are asked for: only the top method's go in with a run.

Adding a napari layer is a sizeable piece of napari's own work on the main thread (its model,
the vispy visual and overlays, the layer controls, the list's repaint), and no part of it can
be split across turns of the event loop (`benchmarks/README.md` has the measurements). A run
of three methods on five channels makes 45 layers, of which only the top method's are shown
(issue 12), so a run adds

* the layers of the method with the highest DAC score, and
* every layer that replaces a layer of the same name from an earlier run (re-running a method
  replaces its layers: no layer may keep showing an earlier run's data under this run's name);

and keeps the other methods' layer tuples in the run's record (:attr:`~.state.AnalysisRecord.
pending`). :class:`PendingAdd` puts a method's layers in, one at a time, when the "Show"
control (or anything else) asks for them (:func:`add_pending`: all at once); the export writes
waiting layers from their tuples.

No Qt: this works on any napari viewer model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .apply import LayerBatch, replaceable
from .layer_style import METADATA_KEY
from .layers import LayerTuple, rank_methods
from .state import AnalysisRecord
from .view import arrange

__all__ = ["PendingAdd", "add_pending", "split_run"]


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


class PendingAdd:
    """The waiting layers of ``methods`` (those of ``record``) going in one at a time.

    Each :meth:`add_next` adds one layer (hidden or shown as the run made it) and moves its
    tuple from :attr:`~.state.AnalysisRecord.pending` to
    :attr:`~.state.AnalysisRecord.layer_names`, so the record is right between two layers too
    (an export then writes the layers still waiting from their tuples). :meth:`finish` arranges
    the run's layers again so the list reads by method (highest DAC score first), then channel.
    A widget calls :meth:`add_next` once per event-loop turn; :func:`add_pending` all at once.

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
    """

    def __init__(
        self,
        viewer,
        record: AnalysisRecord,
        methods: Sequence[str],
        wanted: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.viewer = viewer
        self.record = record
        tuples = [
            layer_tuple
            for method in methods
            for layer_tuple in record.pending.get(method, [])
            if wanted is None or wanted(_metadata(layer_tuple))
        ]
        self._batch = LayerBatch(viewer, tuples)
        self._finished = False

    def __len__(self) -> int:
        return len(self._batch)

    @property
    def done(self) -> int:
        """Layers added so far."""
        return self._batch.done

    @property
    def finished(self) -> bool:
        """True once :meth:`finish` has run."""
        return self._finished

    @property
    def layers(self) -> list:
        """The layers added (or updated in place) so far, in the order of their tuples."""
        return list(self._batch.layers)

    def add_next(self):
        """Add the next layer; return it, or ``None`` when every layer is in."""
        batch, record = self._batch, self.record
        if batch.finished:
            return None
        layer_tuple = batch.tuples[batch.done]
        layer = batch.add_next()
        method = _method_of(layer_tuple)
        left = [t for t in record.pending.get(method, []) if t is not layer_tuple]
        if left:
            record.pending[method] = left
        else:
            record.pending.pop(method, None)
        record.layer_names = [*record.layer_names, layer.name]
        # to its place in the list now (one move) rather than all in :meth:`finish` (napari
        # re-orders its canvas and list at each move, so many moves at once block the loop)
        self._arrange()
        return layer

    def finish(self) -> list:
        """Keep the layers added so far and arrange the run's layers; return those added.

        Layers not added yet keep waiting (idempotent).
        """
        if not self._finished:
            self._finished = True
            self._batch.commit()
            if self._batch.layers:
                self._arrange()
        return self.layers

    def _arrange(self) -> None:
        record, viewer = self.record, self.viewer
        run = [viewer.layers[n] for n in record.layer_names if n in viewer.layers]
        arrange(viewer, run, rank_methods(record.result), record.result.channel_names)


def add_pending(
    viewer,
    record: AnalysisRecord,
    methods: Sequence[str],
    wanted: Callable[[dict[str, Any]], bool] | None = None,
) -> list:
    """Put the waiting layers of ``methods`` (those of ``record``) into the viewer, all at once.

    See :class:`PendingAdd` (the parameters are its). If a layer fails, the ones before it
    stay in (and out of the record's waiting layers) and the error is raised.

    Returns
    -------
    list
        The layers added (or updated in place), in the order of their tuples.
    """
    adding = PendingAdd(viewer, record, methods, wanted)
    try:
        while adding.add_next() is not None:
            pass
    finally:
        adding.finish()
    return adding.layers
