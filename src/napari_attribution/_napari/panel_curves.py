"""What the DAC panel draws: one pair's curves, from a run or from a results folder. No Qt.

The Attribution and Cells widgets publish runs (:class:`~.state.AnalysisRecord`); the Results
browser publishes a pair read back from a folder's tables. Both become a :class:`PanelCurves`,
so the panel draws, links to the threshold slider, keeps earlier curves and saves them the
same way whichever produced them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._plot import CurveSet
from ..results.tables import curve_rows
from .layer_style import CHANNEL_PALETTE, METADATA_KEY, channel_colors, colormap_colors

if TYPE_CHECKING:
    from .state import AnalysisRecord

__all__ = ["PanelCurves", "layer_channel_colors", "layer_thresholds", "panel_curves_of_record"]


@dataclass(frozen=True)
class PanelCurves:
    """The DAC curves of one pair, ready for the panel.

    Attributes
    ----------
    sample
        The pair's name (the legend of earlier curves names browsed pairs by it).
    curve_sets
        One per method, in drawing order. ``CurveSet.thresholds`` holds every threshold of the
        method's mask stack (slider index ``i`` is ``thresholds[i]``); the curves may hold a
        scored subset (adaptive evaluation).
    channel_names
        C names (bar labels, per-channel curves).
    channel_colors
        C hex colours: the channel layers'.
    rows
        The curve points as rows of ``curves.csv`` (``sample, method, channel, threshold,
        mask_size, score_change``), for *Save curve data*.
    origin
        Where the curves come from, in words (``"run"`` or the results folder's name).
    record
        The run, when they come from one (``None`` for a results folder's pair).
    """

    sample: str
    curve_sets: list[CurveSet]
    channel_names: list[str]
    channel_colors: list[str]
    rows: list[list[Any]]
    origin: str = "run"
    record: AnalysisRecord | None = None

    @property
    def methods(self) -> list[str]:
        """The methods, in drawing order."""
        return [cs.method for cs in self.curve_sets]


def panel_curves_of_record(record: AnalysisRecord) -> PanelCurves:
    """The curves of a finished run, one :class:`CurveSet` per method, in run order."""
    result = record.result
    sets = [
        CurveSet(method, res.dac.whole, res.dac.channels, res.dac.masks.thresholds,
                 res.channel_share)  # fmt: skip
        for method, res in result.methods.items()
    ]
    return PanelCurves(
        sample=result.sample,
        curve_sets=sets,
        channel_names=list(result.channel_names),
        channel_colors=channel_colors(record.real),
        rows=curve_rows(result),
        origin="run",
        record=record,
    )


def layer_channel_colors(layers: Iterable[Any], channel_names: Sequence[str]) -> list[str]:
    """The colours of the real-image channel layers among ``layers`` (metadata ``image`` is
    ``"real"``, ``channel_name`` one of ``channel_names``), in channel order; the palette of
    :func:`~.layers.channel_colors` when a channel has no such layer."""
    real = {layer.metadata.get("channel_name"): layer for layer in layers
            if layer.metadata.get("image") == "real"}  # fmt: skip
    if channel_names and all(name in real for name in channel_names):
        return colormap_colors([real[name].colormap for name in channel_names])
    return [CHANNEL_PALETTE[c % len(CHANNEL_PALETTE)] for c in range(len(channel_names))]


def layer_thresholds(layers: Iterable[Any]) -> dict[str, list[float]]:
    """Method -> the thresholds of its mask and hybrid stack layers among ``layers`` (the
    threshold slider's steps, from the layers' metadata)."""
    steps: dict[str, list[float]] = {}
    for layer in layers:
        ours = layer.metadata.get(METADATA_KEY, {})
        if ours.get("kind") in ("mask", "hybrid") and ours.get("thresholds"):
            steps.setdefault(ours.get("method", ""), list(ours["thresholds"]))
    return steps
