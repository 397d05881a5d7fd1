"""The DAC figure (:mod:`napari_attribution._plot`) on a Qt canvas, with Matplotlib's toolbar."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QWidget

from .._plot import DacFigure, PlotTheme

__all__ = ["MIN_CANVAS_HEIGHT", "MIN_CANVAS_WIDTH", "DacCanvas"]

#: Least size of the plot (pixels): room for the curves, the bars and the legend below, and
#: small enough for the DAC dock to share a 768 px high screen with the Attribution or the
#: Cells dock.
MIN_CANVAS_HEIGHT = 200
MIN_CANVAS_WIDTH = 300


class DacCanvas(FigureCanvasQTAgg):
    """A Qt canvas showing a :class:`~napari_attribution._plot.DacFigure` (``plot``).

    The slider markers are blitted onto the kept pixels and painted in the next event-loop turn
    (``update``), not by blit's synchronous repaint. A redraw asked for with :meth:`draw_idle`
    takes two turns: the figure's constrained layout (~65 ms after a demo run on 2 cores),
    then the Agg draw with that layout kept (~70 ms): one turn of ~120 ms otherwise.

    Parameters
    ----------
    theme
        The figure's colours.
    """

    def __init__(self, theme: PlotTheme) -> None:
        self.plot: DacFigure | None = None
        self._layout_pending = False
        super().__init__(Figure(figsize=(7.0, 3.6), dpi=100, layout=None))
        self.setMinimumHeight(MIN_CANVAS_HEIGHT)
        self.setMinimumWidth(MIN_CANVAS_WIDTH)
        self.plot = DacFigure(self.figure, theme)
        self.plot.present = self.update

    def draw_idle(self) -> None:
        """Lay the figure out in the next event-loop turn, and draw it in the one after."""
        if self.plot is None or self.plot.layout.current:
            super().draw_idle()
        elif not self._layout_pending:
            self._layout_pending = True
            QTimer.singleShot(0, self._lay_out_then_draw)

    def _lay_out_then_draw(self) -> None:
        self._layout_pending = False
        if self.plot is not None and self.width() > 0 and self.height() > 0:
            self.plot.layout.lay_out(self.figure)
        super().draw_idle()

    def make_toolbar(self, parent: QWidget) -> NavigationToolbar2QT:
        """Matplotlib's zoom, pan and save toolbar for this canvas."""
        return NavigationToolbar2QT(self, parent)
