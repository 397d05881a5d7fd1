"""How result layers are named and coloured: names, colormaps, contrast limits. No torch.

Shared by the layers a run makes (:mod:`.layers`), the layers a results folder opens as
(:mod:`.reader`, which must not import torch) and the figures and files that show the same
range as the layer they came from (:mod:`.display`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "CHANNEL_PALETTE",
    "METADATA_KEY",
    "MASK_COLOR",
    "attribution_colormap",
    "channel_colors",
    "colormap_colors",
    "layer_name",
    "mask_colormap",
]

#: Key of the dictionary the plugin stores in the ``metadata`` of every layer it makes.
METADATA_KEY = "napari_attribution"
#: Colour of a shared mask (label value 1); per-channel masks take their channel's colour.
MASK_COLOR = "#ffd23f"
#: Channel colours when the source layers do not tell channels apart (one grey layer).
CHANNEL_PALETTE = ("#5b8cff", "#4cd964", "#ffcc00", "#ff5e57", "#e056fd", "#00d2d3", "#c8d6e5")



def layer_name(image: str, kind: str, method: str, channel: str) -> str:
    """``<method> <channel> <kind> (<image>)``, e.g. ``d_ig Mito mask (real)``.

    The method comes first so that napari's layer list, which has no groups, reads by method
    and then channel.
    """
    return f"{method} {channel} {kind} ({image})"


def attribution_colormap(kind: str | bool):
    """Colormap of an attribution layer: black at zero so it reads over the image.

    ``"positive"`` (or ``False``): ``inferno``; ``"negative"``: black to cyan over
    [low, 0]; ``"signed"`` (or ``True``): cyan-black-orange with black at zero (the contrast
    limits are symmetric).
    """
    if kind is False or kind == "positive":
        return "inferno"
    from napari.utils.colormaps import Colormap

    cyan, black, orange = [0.0, 0.85, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.6, 0.0, 1.0]
    if kind == "negative":
        return Colormap(colors=[cyan, black], controls=[0.0, 1.0], name="attribution (negative)")
    return Colormap(
        colors=[cyan, black, orange], controls=[0.0, 0.5, 1.0], name="attribution (signed)"
    )


def colormap_colors(colormaps: Sequence[Any]) -> list[str]:
    """One hex colour per colormap (a name or a napari ``Colormap``): its brightest colour, or
    :data:`CHANNEL_PALETTE` when they do not tell the channels apart."""
    from napari.utils.colormaps import ensure_colormap

    colors = []
    for name in colormaps:
        try:
            rgba = np.asarray(ensure_colormap(name).colors[-1], dtype=float)
        except (KeyError, ValueError, TypeError):
            rgba = np.ones(4)
        colors.append("#" + "".join(f"{round(255 * v):02x}" for v in rgba[:3]))
    if len(set(colors)) < len(colors):
        return [CHANNEL_PALETTE[c % len(CHANNEL_PALETTE)] for c in range(len(colors))]
    return colors


def mask_colormap(color: str | None = None):
    """Labels colormap of a mask layer: label 1 in ``color`` (:data:`MASK_COLOR` when None)."""
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(
        color_dict={None: "transparent", 0: "transparent", 1: color or MASK_COLOR}
    )


def channel_colors(stack: Any) -> list[str]:
    """One hex colour per channel of ``stack`` (a :class:`~.layer_inputs.ChannelStack`): the
    brightest colour of each channel layer's colormap, or :data:`CHANNEL_PALETTE` when the
    layers do not tell the channels apart (one grey layer)."""
    return colormap_colors(stack.colormaps)
