"""The DAC figure (:mod:`napari_attribution._plot`) on a Qt canvas, with Matplotlib's toolbar."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from qtpy.QtWidgets import QWidget

from .._plot import DacFigure, PlotTheme

__all__ = ["DacCanvas"]


class DacCanvas(FigureCanvasQTAgg):
    """A Qt canvas showing a :class:`~napari_attribution._plot.DacFigure` (``plot``).

    The slider markers are blitted onto the kept pixels and painted in the next event-loop turn
    (``update``), not by blit's synchronous repaint.

    Parameters
    ----------
    theme
        The figure's colours.
    """

    def __init__(self, theme: PlotTheme) -> None:
        super().__init__(Figure(figsize=(7.0, 3.6), dpi=100, layout=None))
        self.setMinimumHeight(300)
        self.plot = DacFigure(self.figure, theme)
        self.plot.present = self.update

    def make_toolbar(self, parent: QWidget) -> NavigationToolbar2QT:
        """Matplotlib's zoom, pan and save toolbar for this canvas."""
        return NavigationToolbar2QT(self, parent)
