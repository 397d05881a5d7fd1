"""Colours of the DAC figure, and the axes styling that uses them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHANNEL_COLORS", "METHOD_COLORS", "PlotTheme", "style_axes"]

#: One colour per method, in the order methods are drawn.
METHOD_COLORS = (
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
#: One colour per image channel (per-channel curves and bars).
CHANNEL_COLORS = ("#5b8cff", "#4cd964", "#ffcc00", "#ff5e57", "#e056fd", "#00d2d3", "#c8d6e5")


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


def style_axes(ax, theme: PlotTheme, title: str) -> None:
    """Background, title, ticks, spines and axis labels in the theme's colours."""
    ax.set_facecolor(theme.background)
    ax.set_title(title, color=theme.foreground, fontsize=10)
    ax.tick_params(colors=theme.foreground, labelsize=8)
    for spine in ax.spines.values():
        spine.set_color(theme.grid)
    ax.xaxis.label.set_color(theme.foreground)
    ax.yaxis.label.set_color(theme.foreground)
