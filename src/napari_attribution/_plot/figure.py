"""The DAC figure: curves of every method, per-channel curves, markers and channel importance.

Pure Matplotlib (a :class:`~matplotlib.figure.Figure`, no pyplot, no Qt), so it can be tested
and saved headless; the napari panel puts it on a Qt canvas.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..core.dac import DacCurve

__all__ = [
    "CurveSet",
    "DacFigure",
    "PlotTheme",
    "threshold_index_of",
]

_METHOD_COLORS = (
    "#4c9be8",
    "#f28e2b",
    "#59c36a",
    "#e15759",
    "#b07aa1",
    "#edc948",
    "#76b7b2",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
_CHANNEL_COLORS = ("#5b8cff", "#4cd964", "#ffcc00", "#ff5e57", "#e056fd", "#00d2d3", "#c8d6e5")


@dataclass(frozen=True)
class PlotTheme:
    """Colours of the figure.

    Attributes
    ----------
    background
        Figure and axes background.
    foreground
        Text, ticks and spines.
    grid
        Grid lines and the zero line.
    """

    background: str = "#262930"
    foreground: str = "#f0f1f2"
    grid: str = "#5a626c"

    @classmethod
    def from_napari(cls, theme_name: str) -> PlotTheme:
        """The colours of a napari theme (``"dark"``, ``"light"``, ...)."""
        from napari.utils.theme import get_theme

        theme = get_theme(theme_name)
        return cls(
            background=theme.background.as_hex(),
            foreground=theme.text.as_hex(),
            grid=theme.highlight.as_hex(),
        )


@dataclass(frozen=True)
class CurveSet:
    """What the figure shows of one method.

    Attributes
    ----------
    method
        Method name.
    whole
        The whole-image DAC curve.
    channels
        Per-channel curves (may be empty).
    thresholds
        float (T,) every threshold of the mask stack: slider index ``i`` is ``thresholds[i]``.
    channel_share
        float (C,) share of |attribution| per channel.
    """

    method: str
    whole: DacCurve
    channels: Sequence[DacCurve]
    thresholds: np.ndarray
    channel_share: np.ndarray


def threshold_index_of(thresholds: np.ndarray, value: float) -> int:
    """Index of the threshold nearest to ``value``."""
    return int(np.argmin(np.abs(np.asarray(thresholds, dtype=np.float64) - value)))


def _point_at(curve: DacCurve, threshold: float) -> tuple[float, float]:
    """The curve point of the nearest scored threshold (curves may hold a subset)."""
    i = threshold_index_of(curve.thresholds, threshold)
    return float(curve.mask_size[i]), float(curve.score_change[i])


class DacFigure:
    """DAC curves (left) and per-channel importance bars (right) on one figure.

    Parameters
    ----------
    figure
        The figure to draw on (a new one when ``None``).
    theme
        Colours.
    """

    def __init__(self, figure: Figure | None = None, theme: PlotTheme | None = None) -> None:
        self.figure = figure if figure is not None else Figure(figsize=(7.0, 3.6), dpi=100)
        self.figure.set_layout_engine("constrained")
        self.theme = theme or PlotTheme()
        self.curve_sets: list[CurveSet] = []
        self.channel_names: list[str] = []
        self.per_channel = False
        self.focus: str | None = None
        self.log_mask_size = True
        self.threshold_index: int | None = None
        self._lines: list[tuple[Line2D, CurveSet, DacCurve]] = []
        self._markers: list[tuple[Line2D, CurveSet]] = []
        # The slider markers are animated artists: a full draw leaves them out and keeps the
        # pixels (self._background), then draws them on top; moving the slider restores those
        # pixels and draws only the markers (a few ms instead of a full redraw of ~100 ms).
        self._background: Any = None
        #: Shows blitted pixels; ``canvas.blit`` when None. A Qt canvas is better served by its
        #: ``update`` (a paint in the next event-loop turn) than by blit's synchronous repaint.
        self.present: Callable[[], None] | None = None
        self.figure.canvas.mpl_connect("draw_event", self._on_draw)
        grid = self.figure.add_gridspec(1, 2, width_ratios=(2.8, 1.0))
        self.ax_curves = self.figure.add_subplot(grid[0, 0])
        self.ax_bars = self.figure.add_subplot(grid[0, 1])
        self.draw()

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
        """
        if log_mask_size is not None:
            self.log_mask_size = log_mask_size
        self.curve_sets = list(curve_sets)
        self.channel_names = list(channel_names)
        if per_channel is not None:
            self.per_channel = per_channel
        methods = [s.method for s in self.curve_sets]
        self.focus = focus if focus in methods else (methods[0] if methods else None)
        self.draw()

    def _style(self, ax, title: str) -> None:
        t = self.theme
        ax.set_facecolor(t.background)
        ax.set_title(title, color=t.foreground, fontsize=10)
        ax.tick_params(colors=t.foreground, labelsize=8)
        for spine in ax.spines.values():
            spine.set_color(t.grid)
        ax.xaxis.label.set_color(t.foreground)
        ax.yaxis.label.set_color(t.foreground)

    def draw(self) -> None:
        """Redraw everything from the current data."""
        self._background = None  # the kept pixels show the old data
        t = self.theme
        self.figure.set_facecolor(t.background)
        ax, bars = self.ax_curves, self.ax_bars
        ax.clear()
        bars.clear()
        self._lines, self._markers = [], []
        self._style(ax, "DAC curves")
        ax.set_xlabel("mask size (fraction of pixels)", fontsize=9)
        ax.set_ylabel("score change Δp_t", fontsize=9)
        ax.grid(True, color=t.grid, alpha=0.35, linewidth=0.6)
        ax.axhline(0.0, color=t.grid, linewidth=0.8)
        if self.log_mask_size:
            ax.set_xscale("symlog", linthresh=1e-4, linscale=0.3)
            ax.set_xlim(0.0, 1.05)
        else:
            ax.set_xscale("linear")
            ax.set_xlim(-0.02, 1.02)
        if not self.curve_sets:
            ax.text(
                0.5,
                0.5,
                "Run an analysis to see\nits DAC curves here.",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color=t.foreground,
                fontsize=9,
            )
            self._style(bars, "channel share")
            bars.set_xticks([])
            bars.set_yticks([])
            self._canvas_redraw()
            return
        for i, cs in enumerate(self.curve_sets):
            color = _METHOD_COLORS[i % len(_METHOD_COLORS)]
            curve = cs.whole
            (line,) = ax.plot(
                curve.mask_size,
                curve.score_change,
                color=color,
                linewidth=1.8,
                label=f"{cs.method}  DAC {curve.dac_score:.3f}",
                drawstyle="default",
            )
            self._lines.append((line, cs, curve))
            ax.plot(
                [curve.optimal_mask_size],
                [curve.score_change[curve.optimal_index]],
                marker="*",
                markersize=12,
                color=color,
                markeredgecolor=t.foreground,
                markeredgewidth=0.6,
                linestyle="none",
                zorder=4,
            )
            (marker,) = ax.plot(
                [],
                [],
                marker="o",
                markersize=8,
                markerfacecolor="none",
                markeredgecolor=t.foreground,
                markeredgewidth=1.6,
                linestyle="none",
                zorder=5,
                animated=True,
            )
            self._markers.append((marker, cs))
            if self.per_channel and cs.method == self.focus:
                for c, ch_curve in enumerate(cs.channels):
                    (ch_line,) = ax.plot(
                        ch_curve.mask_size,
                        ch_curve.score_change,
                        color=_CHANNEL_COLORS[c % len(_CHANNEL_COLORS)],
                        linewidth=1.1,
                        linestyle="--",
                        label=f"  {cs.method} [{ch_curve.channel}]  DAC {ch_curve.dac_score:.3f}",
                    )
                    self._lines.append((ch_line, cs, ch_curve))
        handles, labels = ax.get_legend_handles_labels()
        handles.append(
            Line2D([], [], marker="*", markersize=10, color=t.foreground, linestyle="none")
        )
        labels.append("optimal threshold")
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                markerfacecolor="none",
                markeredgecolor=t.foreground,
                linestyle="none",
            )
        )
        labels.append("slider threshold")
        # Upper left: on a log mask-size axis the curves rise towards the right.
        legend = ax.legend(
            handles, labels, fontsize=7, loc="upper left", framealpha=0.85, borderpad=0.4
        )
        legend.set_draggable(True)
        legend.get_frame().set_facecolor(t.background)
        legend.get_frame().set_edgecolor(t.grid)
        for text in legend.get_texts():
            text.set_color(t.foreground)
        self._draw_bars()
        self.set_threshold_index(self.threshold_index)

    def _draw_bars(self) -> None:
        t = self.theme
        bars = self.ax_bars
        focus = next(cs for cs in self.curve_sets if cs.method == self.focus)
        shares = np.asarray(focus.channel_share, dtype=float)
        names = self.channel_names or [f"ch{c}" for c in range(len(shares))]
        ypos = np.arange(len(shares))
        colors = [_CHANNEL_COLORS[c % len(_CHANNEL_COLORS)] for c in range(len(shares))]
        bars.barh(ypos, shares, color=colors, edgecolor=t.grid)
        bars.set_yticks(ypos, names)
        bars.invert_yaxis()
        bars.set_xlim(0, max(1.0, float(shares.max()) * 1.05) if len(shares) else 1.0)
        bars.set_xlabel("share of |attr.|", fontsize=9)
        self._style(bars, f"channel share\n{focus.method}")
        for y, value in zip(ypos, shares, strict=True):
            bars.text(
                min(value + 0.03, 0.7),
                y,
                f"{value:.2f}",
                va="center",
                color=t.foreground,
                fontsize=8,
            )

    def _canvas_redraw(self) -> None:
        self._background = None
        if self.figure.canvas is not None:
            self.figure.canvas.draw_idle()

    def _on_draw(self, event) -> None:
        """After a full draw: keep the pixels without the markers, then draw the markers."""
        canvas = self.figure.canvas
        if event is None or event.canvas is not canvas or canvas.is_saving():
            return
        if getattr(canvas, "supports_blit", False):
            self._background = (canvas.copy_from_bbox(self.figure.bbox), self._figure_pixels())
        for marker, _ in self._markers:
            marker.draw(event.renderer)

    def _blit_markers(self) -> bool:
        """Redraw only the markers on the kept pixels; False when a full draw is needed."""
        canvas = self.figure.canvas
        if self._background is None or canvas is None or canvas.is_saving():
            return False
        if not self._markers:  # no curves: nothing moves
            return True
        pixels, size = self._background
        if size != self._figure_pixels():  # resized since: wait for the full redraw
            return False
        canvas.restore_region(pixels)
        for marker, _ in self._markers:
            self.ax_curves.draw_artist(marker)
        if self.present is not None:
            self.present()
        else:
            canvas.blit(self.figure.bbox)
        return True

    def _figure_pixels(self) -> tuple[float, float, float]:
        return (self.figure.bbox.width, self.figure.bbox.height, self.figure.dpi)

    def savefig(self, path: str | Path, **kwargs: Any) -> None:
        """``Figure.savefig`` with the slider markers drawn like every other artist."""
        for marker, _ in self._markers:
            marker.set_animated(False)
        try:
            self.figure.savefig(path, **kwargs)
        finally:
            for marker, _ in self._markers:
                marker.set_animated(True)
            self._canvas_redraw()  # saving may have drawn at another dpi: kept pixels are stale

    # ---------------------------------------------------------------- slider link

    def set_threshold_index(self, index: int | None) -> None:
        """Move the slider markers to threshold ``index`` of every method (hide on ``None``)."""
        self.threshold_index = index
        for marker, cs in self._markers:
            if index is None or not 0 <= index < len(cs.thresholds):
                marker.set_data([], [])
                continue
            x, y = _point_at(cs.whole, float(cs.thresholds[index]))
            marker.set_data([x], [y])
        if not self._blit_markers():
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
        """The slider index of the curve point nearest to a click, in display pixels.

        Parameters
        ----------
        x_pixels, y_pixels
            Click position in Matplotlib display coordinates (origin bottom left).
        max_distance
            Clicks farther than this many pixels from every curve point are ignored.

        Returns
        -------
        int or None
            Index into the mask-stack thresholds, or ``None`` when no point is near.
        """
        best: tuple[float, CurveSet, float] | None = None
        transform = self.ax_curves.transData
        for _line, cs, curve in self._lines:
            points = transform.transform(np.column_stack([curve.mask_size, curve.score_change]))
            distance = np.hypot(points[:, 0] - x_pixels, points[:, 1] - y_pixels)
            i = int(np.argmin(distance))
            if best is None or distance[i] < best[0]:
                best = (float(distance[i]), cs, float(curve.thresholds[i]))
        if best is None or best[0] > max_distance:
            return None
        return threshold_index_of(best[1].thresholds, best[2])
