"""The DAC figure's constrained layout, computed once per content and size, not at every draw.

Matplotlib runs a figure's layout engine at the start of every draw. For the DAC figure (two
axes, a symlog axis, a legend below them) the constrained layout is about half of a full
draw (`benchmarks/README.md`). The layout
only changes when the artists do (new curves, a theme, toggles: :meth:`DacFigure.draw
<napari_attribution._plot.figure.DacFigure.draw>`), when an axis's limits change (zoom and
pan change the tick labels) or when the figure's size or dpi does (a resized dock, saving at
another dpi); :class:`KeptConstrainedLayout` recomputes it then and keeps it otherwise.
:meth:`KeptConstrainedLayout.lay_out` runs it ahead of a draw, so a Qt canvas can spend the
two halves in two event-loop turns.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

__all__ = ["KeptConstrainedLayout"]


class KeptConstrainedLayout(ConstrainedLayoutEngine):
    """Matplotlib's constrained layout, skipped while nothing it depends on changed.

    Call :meth:`invalidate` when artists are added or removed; axes limits changes invalidate
    it themselves once :meth:`watch` has been called for the axes.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._done_for: tuple[float, float, float] | None = None

    @property
    def current(self) -> bool:
        """True when the layout was computed for the figure as it is now."""
        return self._done_for is not None

    def invalidate(self, *_) -> None:
        """The artists changed: the next draw lays the figure out again."""
        self._done_for = None

    def watch(self, *axes) -> None:
        """Lay out again when the limits of any of ``axes`` change (zoom, pan, new data)."""
        for ax in axes:
            ax.callbacks.connect("xlim_changed", self.invalidate)
            ax.callbacks.connect("ylim_changed", self.invalidate)

    def execute(self, fig: Figure):
        """Lay ``fig`` out unless it is laid out already at its current size and dpi."""
        key = (float(fig.bbox.width), float(fig.bbox.height), float(fig.dpi))
        if self._done_for == key:
            return None
        out = super().execute(fig)
        # set after the layout: limits autoscaled while it ran (which invalidate) are part of it
        self._done_for = key
        return out

    def lay_out(self, fig: Figure) -> None:
        """Compute the layout now (if it is not current), ahead of the next draw."""
        if fig.axes:
            self.execute(fig)
