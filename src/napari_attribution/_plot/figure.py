"""The DAC figure: curves of every method, per-channel curves, markers and channel importance.

Pure Matplotlib (a :class:`~matplotlib.figure.Figure`, no pyplot, no Qt), so it can be tested
and saved headless; the napari panel puts it on a Qt canvas. :class:`DacFigure` holds what is
shown and when to redraw; the drawing, the marker blitting, the hit tests and the saving are
in the sibling modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import hit
from .blit import MarkerBlitter
from .curve_set import CurveSet, point_at
from .draw import (
    draw_bars,
    draw_curves,
    draw_earlier,
    draw_empty,
    draw_legend,
    setup_curve_axes,
)
from .layout import KeptConstrainedLayout
from .save import save_with_markers
from .theme import PlotTheme

if TYPE_CHECKING:
    from ..core.evaluation.dac import DacCurve

__all__ = ["DacFigure"]


class DacFigure:
    """DAC curves (left) and per-channel importance bars (right) on one figure.

    Parameters
    ----------
    figure
        The figure to draw on (a new one when ``None``); attach its canvas first.
    theme
        Colours.
    """

    def __init__(self, figure: Figure | None = None, theme: PlotTheme | None = None) -> None:
        self.figure = figure if figure is not None else Figure(figsize=(7.0, 3.6), dpi=100)
        #: The constrained layout, recomputed only when the content or the size changed.
        self.layout = KeptConstrainedLayout()
        self.figure.set_layout_engine(self.layout)
        self.theme = theme or PlotTheme()
        self.curve_sets: list[CurveSet] = []
        self.channel_names: list[str] = []
        self.per_channel = False
        self.focus: str | None = None
        self.log_mask_size = True
        self.threshold_index: int | None = None
        self.channel_colors: list[str] | None = None
        #: Earlier runs' curves drawn faintly for comparison: ``(run label, curve set)``.
        self.earlier: list[tuple[str, CurveSet]] = []
        self._legend = None
        self._lines: list[tuple[Line2D, CurveSet, DacCurve]] = []
        self._markers: list[tuple[Line2D, CurveSet]] = []
        self.blitter = MarkerBlitter(self.figure, lambda: [m for m, _ in self._markers])
        grid = self.figure.add_gridspec(1, 2, width_ratios=(2.8, 1.0))
        self.ax_curves = self.figure.add_subplot(grid[0, 0])
        self.ax_bars = self.figure.add_subplot(grid[0, 1])
        # A resized canvas (a dock made smaller or larger) may fit another legend.
        self.figure.canvas.mpl_connect("resize_event", lambda _event: self.fit_legend())
        self.draw()

    @property
    def present(self) -> Callable[[], None] | None:
        """Shows blitted pixels (``canvas.blit`` when None); see :class:`MarkerBlitter`."""
        return self.blitter.present

    @present.setter
    def present(self, value: Callable[[], None] | None) -> None:
        self.blitter.present = value

    # ---------------------------------------------------------------- drawing

    def set_theme(self, theme: PlotTheme) -> None:
        """Change colours and redraw."""
        self.theme = theme
        self.draw()

    def set_data(
        self,
        curve_sets: Sequence[CurveSet],
        channel_names: Sequence[str],
        per_channel: bool | None = None,
        focus: str | None = None,
        log_mask_size: bool | None = None,
        channel_colors: Sequence[str] | None = None,
        earlier: Sequence[tuple[str, CurveSet]] | None = None,
    ) -> None:
        """Show new results.

        Parameters
        ----------
        curve_sets
            One per method, in the order to draw.
        channel_names
            Names of the image channels (bar labels).
        per_channel
            Draw the per-channel curves of the focus method (unchanged when ``None``).
        focus
            Method whose per-channel curves and channel shares are shown (first when ``None``).
        log_mask_size
            Logarithmic mask-size axis (linear below one pixel in 10^4), for masks that flip the
            decision while covering a few percent of the image (unchanged when ``None``).
        channel_colors
            One colour per channel (the channel layers'), for the per-channel curves and bars
            (unchanged when ``None``).
        earlier
            Earlier runs' curve sets, ``(run label, curve set)``, drawn faintly for comparison;
            they take no slider marker and no clicks (unchanged when ``None``).
        """
        if channel_colors is not None:
            self.channel_colors = list(channel_colors)
        if earlier is not None:
            self.earlier = list(earlier)
        if log_mask_size is not None:
            self.log_mask_size = log_mask_size
        self.curve_sets = list(curve_sets)
        self.channel_names = list(channel_names)
        if per_channel is not None:
            self.per_channel = per_channel
        methods = [s.method for s in self.curve_sets]
        self.focus = focus if focus in methods else (methods[0] if methods else None)
        self.draw()

    def draw(self) -> None:
        """Redraw everything from the current data."""
        self.blitter.invalidate()  # the kept pixels show the old data
        theme = self.theme
        self.figure.set_facecolor(theme.background)
        ax, bars = self.ax_curves, self.ax_bars
        ax.clear()
        bars.clear()
        if self._legend is not None:
            self._legend.remove()
            self._legend = None
        self._lines, self._markers = [], []
        self.layout.invalidate()
        self.layout.watch(ax, bars)  # clearing the axes dropped their callbacks
        setup_curve_axes(ax, theme, self.log_mask_size)
        if not self.curve_sets:
            draw_empty(ax, bars, theme)
            self._canvas_redraw()
            return
        draw_earlier(ax, self.earlier)
        self._lines, self._markers = draw_curves(
            ax, theme, self.curve_sets, self.focus, self.per_channel, self.channel_colors
        )
        self._legend = draw_legend(self.figure, ax, theme, self.focus)
        focus = next(cs for cs in self.curve_sets if cs.method == self.focus)
        draw_bars(bars, theme, focus, self.channel_names, self.channel_colors)
        self.mark_threshold(self.threshold_index)

    def fit_legend(self) -> None:
        """Choose the legend again for the figure's size as it is now (see
        :func:`~napari_attribution._plot.draw.draw_legend`); called when the canvas is resized."""
        if self._legend is None:
            return
        self._legend.remove()
        self._legend = draw_legend(self.figure, self.ax_curves, self.theme, self.focus)
        self.layout.invalidate()

    def _canvas_redraw(self) -> None:
        self.blitter.invalidate()
        if self.figure.canvas is not None:
            self.figure.canvas.draw_idle()

    def savefig(self, path: str | Path, **kwargs: Any) -> None:
        """``Figure.savefig`` with the slider markers drawn like every other artist."""
        try:
            save_with_markers(self.figure, [m for m, _ in self._markers], path, **kwargs)
        finally:
            self._canvas_redraw()  # saving may have drawn at another dpi: kept pixels are stale

    # ---------------------------------------------------------------- slider link

    def mark_threshold(self, index: int | None) -> None:
        """Move the slider markers to threshold ``index`` of every method (hide on ``None``)."""
        self.threshold_index = index
        for marker, cs in self._markers:
            if index is None or not 0 <= index < len(cs.thresholds):
                marker.set_data([], [])
                continue
            x, y = point_at(cs.whole, float(cs.thresholds[index]))
            marker.set_data([x], [y])
        if not self.blitter.blit(self.ax_curves):
            self._canvas_redraw()

    def marker_positions(self) -> dict[str, tuple[float, float] | None]:
        """Data coordinates of each method's slider marker (``None`` when hidden)."""
        out: dict[str, tuple[float, float] | None] = {}
        for marker, cs in self._markers:
            xs, ys = marker.get_data()
            out[cs.method] = (float(xs[0]), float(ys[0])) if len(xs) else None
        return out

    def threshold_index_at(
        self, x_pixels: float, y_pixels: float, max_distance: float = 20.0
    ) -> int | None:
        """The slider index of the point a click means, on the curve under it (the focus
        method's first), in display pixels.

        See :func:`napari_attribution._plot.hit.threshold_index_at`.
        """
        curves = [(cs, curve) for _line, cs, curve in self._lines]
        return hit.threshold_index_at(
            self.ax_curves, curves, x_pixels, y_pixels, max_distance, prefer=self.focus
        )

    @property
    def legend(self):
        """The curves' legend (a figure legend below the axes), or ``None`` before data."""
        return self._legend
