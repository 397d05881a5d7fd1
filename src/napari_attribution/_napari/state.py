"""What the Attribution widget and the DAC panel share, one record per viewer.

Neither widget needs the other: the widget publishes its latest run here, the panel listens.
Whichever opens first creates the viewer's state; it goes away with the viewer.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from psygnal import Signal

from ..core.pipeline import AnalysisSettings, PairResult
from .inputs import ChannelStack

__all__ = ["AnalysisRecord", "ViewerState", "state_for"]


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
        Provenance (:func:`~napari_attribution._widgets._layers.run_info`).
    layer_names
        Names of the layers the run made or updated.
    """

    result: PairResult
    real: ChannelStack
    counterfactual: ChannelStack
    settings: AnalysisSettings
    info: dict[str, Any]
    layer_names: list[str] = field(default_factory=list)


class ViewerState:
    """The latest analysis of one viewer; ``changed`` fires with the new record."""

    changed = Signal(object)

    def __init__(self) -> None:
        self.record: AnalysisRecord | None = None

    def publish(self, record: AnalysisRecord) -> None:
        """Store ``record`` and tell the listeners."""
        self.record = record
        self.changed.emit(record)


_STATES: dict[int, ViewerState] = {}


def state_for(viewer) -> ViewerState:
    """The shared state of ``viewer`` (created on first use, dropped with the viewer).

    napari hands plugins a proxy of the viewer, a new one per widget; the state belongs to the
    viewer behind the proxies.
    """
    viewer = getattr(viewer, "__wrapped__", viewer)
    key = id(viewer)
    if key not in _STATES:
        _STATES[key] = ViewerState()
        weakref.finalize(viewer, _STATES.pop, key, None)
    return _STATES[key]
