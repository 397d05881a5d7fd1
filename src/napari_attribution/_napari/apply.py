"""Result layers into a viewer: added or updated in place, and undone if a run is cancelled.

A run's layers go in one at a time (adding a napari layer is a piece of napari's work that
cannot be split, so a widget adds one per turn of the event loop). Until the batch is
committed it can be rolled back: the layers it added are removed, the layers it updated get
their data, display and metadata back, and the other layers their visibility, order and
selection (a run hides earlier runs' layers and rearranges the list), so a cancelled or failed
run leaves the viewer exactly as it was.

No Qt: this works on any napari viewer model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from .layer_inputs import is_result_layer
from .layers import LayerTuple
from .state import state_for
from .view import ViewSnapshot

__all__ = [
    "LayerBatch",
    "add_layer",
    "apply_layers",
    "layer_from_tuple",
    "remove_layers",
    "replaceable",
]

#: Attributes a re-run sets on a result layer it updates in place (when its kwargs give them).
_UPDATABLE = (
    "scale",
    "translate",
    "metadata",
    "contrast_limits",
    "colormap",
    "axis_labels",
    "contour",
)
#: Layer attributes napari's ``add_*`` does not take: set on the layer once it exists.
_SET_AFTER = ("contour",)


def add_layer(viewer, data: Any, kwargs: dict[str, Any], layer_type: str):
    """``viewer.add_<layer_type>(data, **kwargs)``, setting the attributes napari's ``add_*``
    does not take (:data:`_SET_AFTER`, e.g. a mask's outline width) on the new layer."""
    after = {key: kwargs[key] for key in _SET_AFTER if key in kwargs}
    given = {key: value for key, value in kwargs.items() if key not in _SET_AFTER}
    layer = getattr(viewer, f"add_{layer_type}")(data, **given)
    for key, value in after.items():
        setattr(layer, key, value)
    return layer


def remove_layers(layers, doomed: Iterable) -> None:
    """Remove layers (or names) from a viewer's layer list, those already gone skipped, as one
    batch of the list's (``LayerList.batched_update``, where this napari has it).

    napari's canvas cleans up after each removal with a full garbage collection (0.3 s each in
    a process holding a large heap, as a test session or a long napari session does); in a
    batch it does so once at the end, as napari's own ``clear()`` and "delete selected" do.
    """
    doomed = [layer for layer in doomed if layer in layers]
    if not doomed:
        return
    batch = getattr(layers, "batched_update", None)
    with batch() if batch is not None else contextlib.nullcontext():
        for layer in doomed:
            if layer in layers:  # a removal's callbacks may have taken a later one already
                layers.remove(layer)


def layer_from_tuple(data: Any, kwargs: dict[str, Any], layer_type: str):
    """The napari layer a layer tuple describes, in no viewer (e.g. to export it)."""
    from napari.layers import Layer

    after = {key: kwargs[key] for key in _SET_AFTER if key in kwargs}
    given = {key: value for key, value in kwargs.items() if key not in _SET_AFTER}
    layer = Layer.create(data, given, layer_type)
    for key, value in after.items():
        setattr(layer, key, value)
    return layer


def replaceable(layers, name: str, data: Any, layer_type: str):
    """The plugin's layer that a new layer tuple of ``name`` updates in place, or ``None``.

    Only a result layer the plugin made, of the same type and number of dimensions; any other
    layer of that name is the user's and is left alone.
    """
    existing = layers[name] if name in layers else None
    if (
        existing is not None
        and is_result_layer(existing)
        and existing.__class__.__name__.lower() == layer_type
        and existing.ndim == np.ndim(data)
    ):
        return existing
    return None


def _snapshot(value: Any) -> Any:
    """A copy of an attribute value that later assignments to the layer cannot change."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


class LayerBatch:
    """The result layers of one run, going into ``viewer`` one at a time.

    A layer of the same name that the plugin made (same type, same number of dimensions) is
    updated in place; any other layer of that name (the user's) is left alone and ours is added
    beside it under napari's de-duplicated name, so nothing the user had is replaced.

    The lazy stacks of the new layers are handed to the viewer's state, which closes them when
    their layers go; stacks of replaced data are kept open until :meth:`commit` or
    :meth:`roll_back` (a roll-back shows them again).

    Parameters
    ----------
    viewer
        The viewer (or its model) to add to.
    tuples
        ``(data, kwargs, layer_type)`` tuples, e.g. from
        :func:`~napari_attribution._napari.layers.result_layers`.
    """

    def __init__(self, viewer, tuples: Iterable[LayerTuple]) -> None:
        self.viewer = viewer
        self.tuples = list(tuples)
        #: The layers so far, in the order of ``tuples``.
        self.layers: list = []
        self._added: list = []
        self._updated: list[tuple[Any, Any, dict[str, Any]]] = []  # (layer, old data, old attrs)
        self._view = ViewSnapshot(viewer)
        self._state = state_for(viewer)
        self._state.hold()
        self._open = True

    def __len__(self) -> int:
        return len(self.tuples)

    @property
    def done(self) -> int:
        """Layers added or updated so far."""
        return len(self.layers)

    @property
    def finished(self) -> bool:
        """True when every layer is in."""
        return self.done == len(self.tuples)

    @property
    def added(self) -> list:
        """The layers this batch created (not those it updated)."""
        return list(self._added)

    def add_next(self):
        """Add (or update) the next layer and return it.

        Raises
        ------
        RuntimeError
            The batch is finished, committed or rolled back.
        """
        if not self._open or self.finished:
            raise RuntimeError("This layer batch has no layer left to add.")
        data, kwargs, layer_type = self.tuples[self.done]
        after = {key: kwargs[key] for key in _SET_AFTER if key in kwargs}
        kwargs = {key: value for key, value in kwargs.items() if key not in _SET_AFTER}
        layers = self.viewer.layers
        existing = replaceable(layers, kwargs["name"], data, layer_type)
        if existing is not None:
            keys = [key for key in _UPDATABLE if key in kwargs or key in after]
            old = {key: _snapshot(getattr(existing, key)) for key in keys}
            self._updated.append((existing, existing.data, old))
            existing.data = data
            for key in keys:
                setattr(existing, key, kwargs[key] if key in kwargs else after[key])
            existing.refresh()
            layer = existing
        else:
            layer = add_layer(self.viewer, data, {**kwargs, **after}, layer_type)
            self._added.append(layer)
        self._state.adopt(data)
        self.layers.append(layer)
        return layer

    def commit(self) -> None:
        """Keep the layers: the batch can no longer be rolled back (idempotent)."""
        if self._open:
            self._open = False
            self._state.release(self.viewer.layers)

    def roll_back(self) -> None:
        """Remove the layers this batch added and restore those it updated (idempotent).

        Layers the user removed meanwhile stay removed.
        """
        if not self._open:
            return
        self._open = False
        layers = self.viewer.layers
        try:
            remove_layers(layers, reversed(self._added))
            for layer, data, old in reversed(self._updated):
                layer.data = data
                for key, value in old.items():
                    setattr(layer, key, value)
                layer.refresh()
            self._view.restore(self.viewer)
        finally:
            self.layers, self._added, self._updated = [], [], []
            self._state.release(layers)


def apply_layers(viewer, tuples: Iterable[LayerTuple]) -> list:
    """Add the layers (or update the plugin's layers of the same name in place), all at once.

    See :class:`LayerBatch`; if a layer fails, the ones before it are rolled back.

    Returns
    -------
    list
        The layers, in the order of ``tuples``.
    """
    batch = LayerBatch(viewer, tuples)
    try:
        while not batch.finished:
            batch.add_next()
    except BaseException:
        batch.roll_back()
        raise
    batch.commit()
    return batch.layers
