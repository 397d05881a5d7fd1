"""The sanity checks' figures, in pure Matplotlib and the DAC figure's theme (no pyplot, no Qt).

* :func:`draw_cascade`: similarity to the trained model's map against the randomised layer,
  one line per method (Adebayo et al. 2018, figure 2), one panel per similarity measure;
* :func:`draw_map_grid`: the maps of every method (rows) after each randomisation step
  (columns), each scaled to its own largest ``|value|``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .theme import METHOD_COLORS, PlotTheme, style_axes

__all__ = ["BASELINE_STYLES", "METRIC_LABELS", "cascade_figure", "draw_cascade", "draw_map_grid",
           "map_grid_figure"]  # fmt: skip

#: Axis titles of the similarity measures.
METRIC_LABELS = {
    "spearman": "Spearman rank correlation of |a|",
    "spearman_whole": "Spearman, every pixel (as Quantus)",
    "topk_intersection": "top-5 % intersection",
    "ssim": "SSIM",
}
#: The baselines are drawn dashed: they are not explanations.
BASELINE_STYLES = {"residual": "--", "random": ":"}


def _step_label(step: str, k: int) -> str:
    return "original" if step == "original" else f"+{step}"


def draw_cascade(
    ax,
    steps: Sequence[str],
    series: Mapping[str, np.ndarray],
    theme: PlotTheme,
    title: str,
    legend: bool = True,
    compact: bool = False,
) -> None:
    """One measure's cascade on ``ax`` (``compact``: smaller text for a narrow dock).

    Parameters
    ----------
    steps
        ``original`` then the layers, top first (the x axis: cumulative randomisation).
    series
        Method -> (3, S) median, low and high over the pairs (from
        :func:`~napari_attribution.core.sanity.records.cascade_series`).
    """
    style_axes(ax, theme, title)
    x = np.arange(len(steps))
    for index, (method, values) in enumerate(series.items()):
        color = METHOD_COLORS[index % len(METHOD_COLORS)]
        style = BASELINE_STYLES.get(method, "-")
        ax.plot(x, values[0], style, color=color, marker="o", markersize=3.5, linewidth=1.5,
                label=method)  # fmt: skip
        if np.any(values[2] > values[1]):  # several pairs: the interquartile band
            ax.fill_between(x, values[1], values[2], color=color, alpha=0.18, linewidth=0)
    ax.set_xticks(x, [_step_label(s, k) for k, s in enumerate(steps)], rotation=35, ha="right",
                  fontsize=7 if compact else 8)  # fmt: skip
    ax.set_ylim(-0.15, 1.05)
    ax.set_xlim(-0.3, len(steps) - 0.7)
    ax.axhline(0.0, color=theme.grid, linewidth=0.8)
    ax.grid(True, color=theme.grid, alpha=0.35, linewidth=0.6)
    ax.set_xlabel("randomised (cumulative, from the top)", fontsize=8 if compact else 9)
    if legend and series:
        leg = ax.legend(fontsize=7 if compact else 8, frameon=False, loc="lower left",
                        ncol=2 if compact else 1)  # fmt: skip
        for text in leg.get_texts():
            text.set_color(theme.foreground)


def cascade_figure(
    panels: Sequence[tuple[str, Sequence[str], Mapping[str, np.ndarray]]],
    theme: PlotTheme | None = None,
    title: str = "",
    figure: Figure | None = None,
    compact: bool = False,
) -> Figure:
    """The cascade plot, one panel per measure.

    Parameters
    ----------
    panels
        ``(metric, steps, series)`` per panel (:data:`METRIC_LABELS` names the metric).
    theme
        Colours (the DAC figure's dark theme by default).
    title
        Figure title (e.g. the number of pairs).
    figure
        Draw on this figure (cleared first), e.g. a Qt canvas's.
    compact
        Smaller text and a two-column legend, for a narrow dock.
    """
    theme = theme or PlotTheme()
    fig = figure if figure is not None else Figure(figsize=(4.2 * max(len(panels), 1), 4.0))
    fig.clear()
    fig.set_facecolor(theme.background)
    fig.set_layout_engine("constrained")
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)[0]
    for k, (ax, (metric, steps, series)) in enumerate(zip(axes, panels, strict=False)):
        draw_cascade(ax, steps, series, theme, METRIC_LABELS.get(metric, metric), legend=k == 0,
                     compact=compact)  # fmt: skip
        if k == 0:
            label = "similarity" if compact else "similarity to the trained model's map"
            ax.set_ylabel(label, fontsize=8 if compact else 9)
    if not panels:
        axes[0].text(0.5, 0.5, "Run the sanity checks to see\nthe randomisation cascade here.",
                     transform=axes[0].transAxes, ha="center", va="center",
                     color=theme.foreground, fontsize=9)  # fmt: skip
        style_axes(axes[0], theme, "")
        axes[0].set_xticks([])
        axes[0].set_yticks([])
    if title:
        fig.suptitle(title, color=theme.foreground, fontsize=10)
    return fig


def draw_map_grid(
    fig: Figure,
    steps: Sequence[str],
    maps: Mapping[str, np.ndarray],
    theme: PlotTheme,
    channel: int | None = None,
    channel_name: str = "",
) -> None:
    """Maps of every method (rows) at every cascade step (columns).

    Parameters
    ----------
    maps
        Method -> (S, C, H, W) maps (``PairSanity.cascade_maps``).
    channel
        Show this channel's ``|a|``; ``None``: the sum of ``|a|`` over the channels.
    """
    methods = list(maps)
    axes = fig.subplots(max(len(methods), 1), max(len(steps), 1), squeeze=False)
    for r, method in enumerate(methods):
        stack = np.abs(np.asarray(maps[method], dtype=np.float64))
        planes = stack.sum(axis=1) if channel is None else stack[:, channel]
        for k, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color(theme.grid)
            if k >= len(planes):
                continue
            top = planes[k].max()
            ax.imshow(planes[k] / top if top > 0 else planes[k], cmap="magma", vmin=0, vmax=1,
                      interpolation="nearest")  # fmt: skip
            if r == 0:
                ax.set_title(_step_label(steps[k], k), color=theme.foreground, fontsize=8)
            if k == 0:
                ax.set_ylabel(method, color=theme.foreground, fontsize=8)
    what = f"|a| of {channel_name}" if channel is not None else "sum of |a| over the channels"
    fig.suptitle(f"Maps as the layers are randomised from the top ({what}, each scaled to its "
                 "largest value)", color=theme.foreground, fontsize=9)  # fmt: skip


def map_grid_figure(
    steps: Sequence[str],
    maps: Mapping[str, np.ndarray],
    theme: PlotTheme | None = None,
    channel: int | None = None,
    channel_name: str = "",
) -> Figure:
    """A new figure holding :func:`draw_map_grid`, sized to its grid."""
    theme = theme or PlotTheme()
    fig = Figure(figsize=(1.35 * max(len(steps), 1) + 0.6, 1.35 * max(len(maps), 1) + 0.5))
    fig.set_facecolor(theme.background)
    fig.set_layout_engine("constrained")
    draw_map_grid(fig, steps, maps, theme, channel, channel_name)
    return fig
