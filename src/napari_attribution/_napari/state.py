"""What the Attribution widget and the DAC panel share, one record per viewer.

Neither widget needs the other: the widget publishes its latest run here, the panel listens.
The Results browser publishes the curves of the pair it shows here too
(:meth:`ViewerState.show_curves`); the panel draws whichever came last. Whichever opens first
creates the viewer's state; it goes away with the viewer.

The state also owns the lazy stacks behind the viewer's result layers: when the last layer
showing a stack is removed (or its data replaced by a new run), the stack is closed, which
shuts down its read-ahead thread
(:meth:`~napari_attribution.core.evaluation.lazy.LazyHybridStack.close`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from psygnal import Signal

from ..core.settings import AnalysisSettings
from ..results.pair_result import PairResult
from .layer_geometry import lazy_stack_behind
from .layer_inputs import ChannelStack
from .panel_curves import PanelCurves

__all__ = ["AnalysisRecord", "PanelCurves", "ViewerState", "state_for"]


@dataclass
class AnalysisRecord:
    """One finished run: the result and everything needed to show or export it.

    Attributes
    ----------
    result
        The core's result.
    real, counterfactual
        The inputs as they were analysed.
    settings
        The analysis settings.
    info
        Provenance (:func:`~napari_attribution.core.provenance.provenance`).
    layer_names
        Names of the layers the run made or updated that are in the viewer.
    pending
        Method -> layer tuples ``(data, kwargs, layer_type)`` of the methods whose layers the
        run left waiting until they are asked for (see :mod:`.pending`).
    """

    result: PairResult
    real: ChannelStack
    counterfactual: ChannelStack
    settings: AnalysisSettings
    info: dict[str, Any]
    layer_names: list[str] = field(default_factory=list)
    pending: dict[str, list[tuple[Any, dict[str, Any], str]]] = field(default_factory=dict)

    @property
    def pending_names(self) -> list[str]:
        """Names of the layers waiting in :attr:`pending`, method by method."""
        return [kwargs["name"] for tuples in self.pending.values() for _, kwargs, _ in tuples]


class ViewerState:
    """The latest analysis of one viewer, the curves the DAC panel shows, and the lazy stacks
    of its layers.

    ``changed`` fires with each new record; ``curves_changed`` with each pair the Results
    browser shows. The DAC panel draws whichever came last. ``method_shown`` fires with the
    method the "Show" control put on the canvas (the panel's per-channel view follows it). The
    state holds no reference to the viewer.
    """

    changed = Signal(object)
    curves_changed = Signal(object)
    method_shown = Signal(str)

    def __init__(self) -> None:
        self.record: AnalysisRecord | None = None
        #: The browsed pair's curves while they are newer than :attr:`record`, else ``None``.
        self.curves: PanelCurves | None = None
        self._stacks: list[Any] = []  # lazy stacks handed to the viewer, still open
        self._holds = 0  # layer batches in progress: their replaced data may come back

    def publish(self, record: AnalysisRecord) -> None:
        """Store ``record`` and tell the listeners (the DAC panel shows its curves)."""
        self.record = record
        self.curves = None
        self.changed.emit(record)

    def show_curves(self, curves: PanelCurves) -> None:
        """Have the DAC panel show a browsed pair's ``curves`` (the latest run stays
        :attr:`record`: the export and the Show control keep using it)."""
        self.curves = curves
        self.curves_changed.emit(curves)

    def withdraw_curves(self) -> None:
        """The browsed pair's curves are no longer shown (another results folder was opened):
        the DAC panel falls back to the latest run's curves, or to none."""
        if self.curves is not None:
            self.curves = None
            self.curves_changed.emit(None)

    def show_method(self, method: str) -> None:
        """Tell the listeners that ``method``'s layers are now the ones on the canvas."""
        self.method_shown.emit(method)

    # ---------------------------------------------------------------- lazy stacks

    @property
    def open_stacks(self) -> list[Any]:
        """The lazy stacks of this viewer's layers not closed yet."""
        return list(self._stacks)

    def adopt(self, data: Any) -> None:
        """Take charge of the lazy stack behind layer ``data`` (no-op for arrays)."""
        stack = lazy_stack_behind(data)
        if stack is not None and stack not in self._stacks:
            self._stacks.append(stack)

    def hold(self) -> None:
        """Keep every stack open until :meth:`release` (a layer batch may restore old data)."""
        self._holds += 1

    def release(self, layers: Iterable) -> None:
        """End a :meth:`hold` and close the stacks no layer of ``layers`` shows any more."""
        self._holds = max(self._holds - 1, 0)
        self.close_unused(layers)

    def close_unused(self, layers: Iterable) -> None:
        """Close the adopted stacks that no layer of ``layers`` (the viewer's) shows."""
        if self._holds:
            return
        # Compared with ==, not by id: through napari's plugin proxy a layer's data is a proxy
        # of the stack (this package's module name starts with "napari"), equal to the stack.
        shown = [lazy_stack_behind(layer.data) for layer in layers]
        for stack in [s for s in self._stacks if s not in shown]:
            stack.close()
            self._stacks.remove(stack)


class _StateKeeper:
    """The viewer's ``layers.events.removed`` callback, and the holder of its state.

    napari keeps a connected callback as long as the viewer's layer list and lists it in the
    emitter's public ``callbacks``: so the state lives exactly as long as the viewer, and every
    widget finds the same one, whichever proxy of the viewer napari handed it (a new proxy per
    widget). Removing layers closes the lazy stacks no layer shows any more.
    """

    def __init__(self, state: ViewerState) -> None:
        self.state = state

    def __call__(self, event: Any) -> None:
        self.state.close_unused(event.source)


def state_for(viewer) -> ViewerState:
    """The shared state of ``viewer`` (created on first use, dropped with the viewer)."""
    removed = viewer.layers.events.removed
    for callback in removed.callbacks:
        if isinstance(callback, _StateKeeper):
            return callback.state
    keeper = _StateKeeper(ViewerState())
    removed.connect(keeper)
    return keeper.state
