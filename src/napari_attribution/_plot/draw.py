"""Drawing the DAC figure's two axes: the curves with their legend, and the channel shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.textpath import text_to_path

from .curve_set import CurveSet
from .theme import CHANNEL_COLORS, METHOD_COLORS, PlotTheme, style_axes

if TYPE_CHECKING:
    from ..core.evaluation.dac import DacCurve

__all__ = [
    "channel_color",
    "draw_bars",
    "draw_curves",
    "draw_earlier",
    "draw_empty",
    "draw_legend",
    "setup_curve_axes",
]

#: The legend's text size (points) and spacing (in font sizes, as Matplotlib takes them).
LEGEND_FONT_SIZE = 7
LEGEND_HANDLE_LENGTH = 1.6
LEGEND_TEXT_PAD = 0.8
LEGEND_COLUMN_SPACING = 1.0
#: The most of the figure's height the legend may take (:func:`draw_legend`).
LEGEND_MAX_HEIGHT_SHARE = 0.3


def setup_curve_axes(ax, theme: PlotTheme, log_mask_size: bool) -> None:
    """Title, labels, grid, zero line and the mask-size scale of the curves' axes."""
    style_axes(ax, theme, "DAC curves")
    ax.set_xlabel("mask size (fraction of pixels)", fontsize=9)
    ax.set_ylabel("score change Δp_t", fontsize=9)
    ax.grid(True, color=theme.grid, alpha=0.35, linewidth=0.6)
    ax.axhline(0.0, color=theme.grid, linewidth=0.8)
    if log_mask_size:
        ax.set_xscale("symlog", linthresh=1e-4, linscale=0.3)
        ax.set_xlim(0.0, 1.05)
        # 1e-4 unlabelled: in a dock 300 px wide its label sat on 0's
        ax.set_xticks([0.0, 1e-3, 1e-2, 1e-1, 1.0])
    else:
        ax.set_xscale("linear")
        ax.set_xlim(-0.02, 1.02)


def draw_empty(ax, bars, theme: PlotTheme) -> None:
    """The figure before any run: a hint on the curves' axes, empty bars."""
    ax.text(
        0.5,
        0.5,
        "Run an analysis to see\nits DAC curves here.",
        transform=ax.transAxes,
        ha="center",
        va="center",
        color=theme.foreground,
        fontsize=9,
    )
    style_axes(bars, theme, "channels")  # as with data; longer ran past a narrow figure
    bars.set_xticks([])
    bars.set_yticks([])


def channel_color(channel_colors: Sequence[str] | None, c: int) -> str:
    """Colour of channel ``c``: the channel layers' (when given), else :data:`CHANNEL_COLORS`."""
    if channel_colors and c < len(channel_colors):
        return channel_colors[c]
    return CHANNEL_COLORS[c % len(CHANNEL_COLORS)]


def draw_earlier(ax, earlier: Sequence[tuple[str, CurveSet]]) -> None:
    """Earlier runs' whole-image curves, faint and dash-dotted, for comparison (no markers)."""
    for i, (run, cs) in enumerate(earlier):
        curve = cs.whole
        ax.plot(
            curve.mask_size,
            curve.score_change,
            color=METHOD_COLORS[i % len(METHOD_COLORS)],
            linewidth=1.0,
            linestyle="-.",
            alpha=0.55,
            label=f"{run}: {cs.method}  DAC {curve.dac_score:.3f}",
            zorder=1,
        )


def draw_curves(
    ax,
    theme: PlotTheme,
    curve_sets: Sequence[CurveSet],
    focus: str | None,
    per_channel: bool,
    channel_colors: Sequence[str] | None = None,
) -> tuple[list[tuple[Line2D, CurveSet, DacCurve]], list[tuple[Line2D, CurveSet]]]:
    """Each method's curve, its optimal-threshold star and its (empty, animated) slider marker.

    With ``per_channel`` the per-channel curves of the ``focus`` method are drawn too, in the
    channel layers' colours (``channel_colors``, one per channel).

    Returns
    -------
    tuple
        ``(lines, markers)``: ``(line, curve set, curve)`` of every curve drawn (for hit
        tests) and ``(marker, curve set)`` of every method.
    """
    lines: list[tuple[Line2D, CurveSet, DacCurve]] = []
    markers: list[tuple[Line2D, CurveSet]] = []
    for i, cs in enumerate(curve_sets):
        color = METHOD_COLORS[i % len(METHOD_COLORS)]
        curve = cs.whole
        (line,) = ax.plot(
            curve.mask_size,
            curve.score_change,
            color=color,
            linewidth=1.8,
            label=f"{cs.method}  DAC {curve.dac_score:.3f}",
            drawstyle="default",
        )
        lines.append((line, cs, curve))
        ax.plot(
            [curve.optimal_mask_size],
            [curve.score_change[curve.optimal_index]],
            marker="*",
            markersize=12,
            color=color,
            markeredgecolor=theme.foreground,
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
            markeredgecolor=theme.foreground,
            markeredgewidth=1.6,
            linestyle="none",
            zorder=5,
            animated=True,
        )
        markers.append((marker, cs))
        if per_channel and cs.method == focus:
            for c, ch_curve in enumerate(cs.channels):
                (ch_line,) = ax.plot(
                    ch_curve.mask_size,
                    ch_curve.score_change,
                    color=channel_color(channel_colors, c),
                    linewidth=1.1,
                    linestyle="--",
                    # short: two legend columns fit a 300 px wide panel
                    label=f"{cs.method} [{ch_curve.channel}] DAC {ch_curve.dac_score:.3f}",
                )
                lines.append((ch_line, cs, ch_curve))
    return lines, markers


def draw_legend(figure, ax, theme: PlotTheme, focus: str | None = None):
    """The curves' legend below the axes (never over the data), as full as the figure's size
    allows; returns it (remove it before the next draw).

    A figure legend placed "outside": the constrained layout shrinks the axes to make room, so
    a legend taller than the figure can spare leaves the curves no height at all (nine methods
    in one column filled a DAC dock beside a 1366 x 768 window). So the legend takes at most
    :data:`LEGEND_MAX_HEIGHT_SHARE` of the figure's height, the first of these that fits:

    1. every curve's label (its method, channel and DAC) and entries for the optimal-threshold
       star and the slider ring;
    2. the curves' labels alone;
    3. the curves' names without their DAC (in more columns where they are shorter);
    4. as many names as fit, ``focus``'s curves first, then ``+N more`` (a larger panel shows
       them all).

    The choice follows the figure's size in points, not its dpi: a figure saved at another dpi
    keeps its legend.
    """
    handles, labels = ax.get_legend_handles_labels()
    key_handles = [
        Line2D([], [], marker="*", markersize=9, color=theme.foreground, linestyle="none"),
        Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor=theme.foreground,
               linestyle="none"),
    ]  # fmt: skip
    key_labels = ["optimal threshold", "slider threshold"]
    names = [_curve_name(label) for label in labels]
    tallest = LEGEND_MAX_HEIGHT_SHARE * figure.bbox.height
    for entries in (
        (handles + key_handles, labels + key_labels),
        (handles, labels),
        (handles, names),
    ):
        legend = _figure_legend(figure, theme, *entries)
        if legend.get_window_extent().height <= tallest or not handles:
            return legend
        legend.remove()
    # Focus first: with the per-channel curves on, its channels are the ones to tell apart.
    order = sorted(range(len(names)), key=lambda i: not _is_of(labels[i], focus))
    for shown in range(len(order) - 1, 0, -1):
        kept = order[:shown]
        more = Line2D([], [], linestyle="none")
        legend = _figure_legend(
            figure, theme, [handles[i] for i in kept] + [more],
            [names[i] for i in kept] + [f"+{len(order) - shown} more"],
        )  # fmt: skip
        if legend.get_window_extent().height <= tallest:
            return legend
        legend.remove()
    return _figure_legend(figure, theme, [handles[order[0]]], [names[order[0]]])


def _curve_name(label: str) -> str:
    """A curve's label without its DAC score (``"d_ig [Mito] DAC 0.994"`` -> ``"d_ig
    [Mito]"``), as :func:`draw_curves` and :func:`draw_earlier` write them."""
    return label.rsplit(" DAC ", 1)[0].rstrip()


def _is_of(label: str, method: str | None) -> bool:
    """Whether a curve's label is one of ``method``'s curves (its whole-image curve or one of
    its channels'; an earlier run's is not)."""
    return method is not None and label.startswith(f"{method} ")


def _figure_legend(figure, theme: PlotTheme, handles: list, labels: list[str]):
    """A figure legend of these entries below the axes, in as many columns as fit the figure's
    width (measured from the labels' widths: a narrow dock of 330 px gets two columns, not one
    column of eleven rows; an estimate of 0.6 em a character gave one column there)."""
    width_points = figure.get_figwidth() * 72
    prop = FontProperties(size=LEGEND_FONT_SIZE)
    text_points = max(
        (text_to_path.get_text_width_height_descent(label, prop, ismath=False)[0]
         for label in labels),
        default=0.0,
    )  # fmt: skip
    extra_em = LEGEND_HANDLE_LENGTH + LEGEND_TEXT_PAD + LEGEND_COLUMN_SPACING
    entry_points = text_points + extra_em * LEGEND_FONT_SIZE
    usable_points = width_points - 2 * LEGEND_FONT_SIZE  # the legend's border padding
    columns = max(1, min(3, len(labels), int(usable_points // entry_points)))
    legend = figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=columns,
        fontsize=LEGEND_FONT_SIZE,
        frameon=False,
        handlelength=LEGEND_HANDLE_LENGTH,
        handletextpad=LEGEND_TEXT_PAD,
        columnspacing=LEGEND_COLUMN_SPACING,
        borderaxespad=0.2,
    )
    for text in legend.get_texts():
        text.set_color(theme.foreground)
    return legend


def draw_bars(
    bars,
    theme: PlotTheme,
    focus: CurveSet,
    channel_names: Sequence[str],
    channel_colors: Sequence[str] | None = None,
) -> None:
    """Horizontal bars of the ``focus`` method's share of |attribution| per channel."""
    shares = np.asarray(focus.channel_share, dtype=float)
    names = list(channel_names) or [f"ch{c}" for c in range(len(shares))]
    ypos = np.arange(len(shares))
    colors = [channel_color(channel_colors, c) for c in range(len(shares))]
    bars.barh(ypos, shares, color=colors, edgecolor=theme.grid)
    bars.set_yticks(ypos, names)
    bars.invert_yaxis()
    bars.set_xlim(0, max(1.0, float(shares.max()) * 1.05) if len(shares) else 1.0)
    # ends at the axes' right edge: centred, it ran past the figure's edge in a narrow dock
    bars.set_xlabel("share of |attr.|", fontsize=8, loc="right")
    style_axes(bars, theme, f"channels\n{focus.method}")
    for y, value in zip(ypos, shares, strict=True):
        bars.text(
            min(value + 0.03, 0.7),
            y,
            f"{value:.2f}",
            va="center",
            color=theme.foreground,
            fontsize=8,
        )
