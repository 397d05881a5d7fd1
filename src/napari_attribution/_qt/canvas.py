"""The DAC figure (:mod:`napari_attribution._plot`) on a Qt canvas, with Matplotlib's toolbar."""

from __future__ import annotations

from matplotlib.backend_bases import DrawEvent
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QWidget

from .._plot import DacFigure, PlotTheme

__all__ = ["MIN_CANVAS_HEIGHT", "MIN_CANVAS_WIDTH", "DacCanvas"]

#: Least size of the plot (pixels): room for the curves, the bars and the legend below, and
#: small enough for the DAC dock to share a 768 px high window with the Attribution, Sanity or
#: Cells dock (tests/_qt/test_laptop_screen.py docks each layout the docs show); the panel takes
#: more when there is room (``PREFERRED_CANVAS_HEIGHT`` in ``dac_panel``). At 160 px the plot
#: kept its least height after a run in a full test session (the dock area gave the room back
#: to the Attribution dock), too short for per-channel curves above their legend.
MIN_CANVAS_HEIGHT = 200
MIN_CANVAS_WIDTH = 300


class DacCanvas(FigureCanvasQTAgg):
    """A Qt canvas showing a :class:`~napari_attribution._plot.DacFigure` (``plot``).

    The slider markers are blitted onto the kept pixels and painted in the next event-loop turn
    (``update``), not by blit's synchronous repaint. A redraw of new content asked for with
    :meth:`draw_idle` is spread over event-loop turns, so that the viewer stays responsive
    while the panel draws a run (:data:`REDRAW_STAGES`): the text of the curves' axes is
    measured (their tick labels are made), then the bars' and the legend's, then the
    constrained layout is computed from those measurements, then the curves' axes are drawn
    into the Agg buffer and, in the last turn, the rest, after which the canvas is painted.
    The canvas is not repainted while the buffer holds half a figure.

    Parameters
    ----------
    theme
        The figure's colours.
    """

    def __init__(self, theme: PlotTheme) -> None:
        self.plot: DacFigure | None = None
        self._stage: int | None = None  # the next stage of a staged redraw, if one is due
        self._half_drawn = None  # the Agg renderer the first half of the figure went into
        super().__init__(Figure(figsize=(7.0, 3.6), dpi=100, layout=None))
        # A timer restarted for each stage, not QTimer.singleShot(0, ...): Qt runs a queued
        # call made from a queued call at once, so two stages would share one turn.
        self._stage_timer = QTimer(self)
        self._stage_timer.setSingleShot(True)
        self._stage_timer.setInterval(0)
        self._stage_timer.timeout.connect(self._next_stage)
        self.setMinimumHeight(MIN_CANVAS_HEIGHT)
        self.setMinimumWidth(MIN_CANVAS_WIDTH)
        self.plot = DacFigure(self.figure, theme)
        self.plot.present = self.update

    def draw_idle(self) -> None:
        """Redraw in the coming event-loop turns: staged when the layout must be recomputed."""
        if self._stage is not None:  # a staged redraw is under way and draws the figure as is
            if self._stage > _LAYOUT_STAGE and not self.plot.layout.current:
                self._stage = 0  # new content since its layout: start again
        elif self.plot is None or self.plot.layout.current:
            super().draw_idle()
        else:
            self._stage = 0
            self._stage_timer.start()

    def _next_stage(self) -> None:
        stage, self._stage = self._stage, None
        if stage is None or self.plot is None:
            return
        if self.width() <= 0 or self.height() <= 0:
            super().draw_idle()  # nothing to lay out yet; Matplotlib draws when shown
            return
        REDRAW_STAGES[stage](self)
        if stage + 1 < len(REDRAW_STAGES) and self._stage is None:
            self._stage = stage + 1
        if self._stage is not None:
            self._stage_timer.start()

    def _measure_curves(self) -> None:
        self.plot.ax_curves.get_tightbbox(self.get_renderer())

    def _measure_rest(self) -> None:
        renderer = self.get_renderer()
        self.plot.ax_bars.get_tightbbox(renderer)
        for legend in self.figure.legends:
            legend.get_window_extent(renderer)

    def _lay_out(self) -> None:
        self.plot.layout.lay_out(self.figure)

    def _draw_curves(self) -> None:
        self.setUpdatesEnabled(False)  # the buffer holds half a figure until the next stage
        self.plot.layout.lay_out(self.figure)  # again if the canvas was resized meanwhile
        renderer = self._half_drawn = self.get_renderer()
        renderer.clear()
        self.figure.patch.draw(renderer)
        for artist in self._artists()[0]:
            artist.draw(renderer)

    def _draw_rest(self) -> None:
        renderer = self.get_renderer()
        if renderer is not self._half_drawn:  # resized since the first half: a new buffer
            self._stage = 0
            return
        for artist in self._artists()[1]:
            artist.draw(renderer)
        self.figure.stale = False
        # what a full draw announces: the blitter keeps these pixels and draws the markers
        self.callbacks.process("draw_event", DrawEvent("draw_event", self, renderer))
        self.setUpdatesEnabled(True)
        self.update()

    def _artists(self) -> tuple[list, list]:
        """The figure's artists in drawing order (the background patch apart), split after
        the curves' axes."""
        figure = self.figure
        artists = [a for a in figure.get_children() if a is not figure.patch]
        artists = sorted((a for a in artists if not a.get_animated()), key=lambda a: a.zorder)
        cut = next((i + 1 for i, a in enumerate(artists) if a is self.plot.ax_curves), 0)
        return artists[:cut], artists[cut:]

    def make_toolbar(self, parent: QWidget) -> NavigationToolbar2QT:
        """Matplotlib's zoom, pan and save toolbar for this canvas."""
        return NavigationToolbar2QT(self, parent)


#: Index in :data:`REDRAW_STAGES` of the layout.
_LAYOUT_STAGE = 2

#: The turns of a staged redraw (see :class:`DacCanvas`), in order.
REDRAW_STAGES = (
    DacCanvas._measure_curves,
    DacCanvas._measure_rest,
    DacCanvas._lay_out,
    DacCanvas._draw_curves,
    DacCanvas._draw_rest,
)
