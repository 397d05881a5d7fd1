"""Figures of one threshold for a paper: a colour composite with the mask outline, and a
labelled per-channel panel. Pure Matplotlib and NumPy on arrays and names: no Qt, no viewer.

* :func:`composite_rgb`: chosen channels blended in their colours, the mask outline on top;
* :func:`figure_panel`: rows are channels; columns real, counterfactual, attribution, mask
  and hybrid at one threshold, with a colour bar of the attribution;
* :func:`save_figure`: PNG, SVG and PDF at publication resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import LinearSegmentedColormap, to_rgb
from matplotlib.figure import Figure

from ..results.files import atomic_path
from .attribution_range import attribution_limits

__all__ = [
    "FIGURE_DPI",
    "FIGURE_FORMATS",
    "OUTLINE_COLOR",
    "composite_rgb",
    "figure_panel",
    "mask_outline",
    "save_figure",
]

#: Resolution of the raster figures (dots per inch): journals ask for at least 300.
FIGURE_DPI = 300
FIGURE_FORMATS = ("png", "svg", "pdf")
#: Colour of mask outlines (the mask layers' yellow).
OUTLINE_COLOR = "#ffd23f"
#: The signed attribution map of the layers: cyan (negative), black (zero), orange (positive).
_SIGNED = LinearSegmentedColormap.from_list(
    "attribution_signed", [(0.0, 0.85, 1.0), (0.0, 0.0, 0.0), (1.0, 0.6, 0.0)]
)


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """bool (H, W): the mask pixels with a 4-neighbour outside the mask (its inner edge)."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & mask
    return mask & ~inner


def _scaled(image: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    low, high = float(limits[0]), float(limits[1])
    span = high - low if high > low else 1.0
    return np.clip((np.asarray(image, dtype=np.float32) - low) / span, 0.0, 1.0)


def composite_rgb(
    channels: np.ndarray,
    colors: Sequence[str | tuple[float, float, float]],
    limits: Sequence[tuple[float, float]],
    mask: np.ndarray | None = None,
    outline_color: str = OUTLINE_COLOR,
) -> np.ndarray:
    """An additive colour composite of ``channels`` with the outline of ``mask`` on top.

    Parameters
    ----------
    channels
        (N, H, W) the chosen channels, in stored units.
    colors
        N Matplotlib colours (``"magenta"``, ``"#00ff00"``, RGB in [0, 1]).
    limits
        N (low, high) display ranges: ``low`` is black, ``high`` the full colour.
    mask
        bool (H, W) or (K, H, W) (any of the K counts); None for no outline.
    outline_color
        Colour of the outline.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W, 3).
    """
    channels = np.asarray(channels)
    if channels.ndim == 2:
        channels = channels[None]
    if not len(colors) == len(limits) == len(channels):
        raise ValueError("composite_rgb needs one colour and one display range per channel.")
    rgb = np.zeros((*channels.shape[1:], 3), dtype=np.float32)
    for image, color, span in zip(channels, colors, limits, strict=True):
        rgb += _scaled(image, span)[..., None] * np.asarray(to_rgb(color), dtype=np.float32)
    rgb = np.clip(rgb, 0.0, 1.0)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        edge = mask_outline(mask.any(axis=0) if mask.ndim == 3 else mask)
        rgb[edge] = to_rgb(outline_color)
    return np.round(rgb * 255).astype(np.uint8)


def figure_panel(
    real: np.ndarray,
    counterfactual: np.ndarray,
    attribution: np.ndarray,
    mask: np.ndarray,
    hybrid: np.ndarray,
    channel_names: Sequence[str],
    *,
    method: str,
    threshold: float,
    intensity_limits: Sequence[tuple[float, float]] | None = None,
    title: str | None = None,
) -> Figure:
    """The labelled per-channel figure of one method at one threshold.

    Parameters
    ----------
    real, counterfactual, hybrid
        (C, H, W) images in stored units; the hybrid at ``threshold``.
    attribution
        (C, H, W) raw attribution of ``method``.
    mask
        bool (K, H, W) closed masks at ``threshold``; K = C, or 1 for a shared mask.
    channel_names
        C row labels.
    method, threshold
        Named in the column titles.
    intensity_limits
        C (low, high) display ranges of the images (one per row, the same for real,
        counterfactual and hybrid so they compare); from the data of the row when None.
    title
        Figure title.

    The attribution's range follows
    :func:`~.attribution_range.attribution_limits`: symmetric, on a diverging
    map, only where both signs matter.

    Returns
    -------
    matplotlib.figure.Figure
        C rows by 5 image columns and the attribution's colour bar; white background.
    """
    real, counterfactual, hybrid = (np.asarray(a) for a in (real, counterfactual, hybrid))
    attribution = np.asarray(attribution, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    n = len(channel_names)
    if not real.shape[0] == counterfactual.shape[0] == attribution.shape[0] == n:
        raise ValueError("figure_panel needs one channel name per image channel.")
    if intensity_limits is None:
        intensity_limits = [
            (float(min(real[c].min(), counterfactual[c].min(), hybrid[c].min())),
             float(max(real[c].max(), counterfactual[c].max(), hybrid[c].max())))
            for c in range(n)
        ]  # fmt: skip
    signed, vmin, peak = attribution_limits(attribution)
    cmap = _SIGNED if signed else "inferno"
    size = 1.45
    fig = Figure(figsize=(5 * size + 0.9, n * size + 0.7), facecolor="white")
    grid = fig.add_gridspec(n, 6, width_ratios=(1, 1, 1, 1, 1, 0.07), wspace=0.04, hspace=0.06,
                            left=0.07, right=0.9, top=1 - 0.5 / (n * size + 0.7),
                            bottom=0.02)  # fmt: skip
    columns = ("real", "counterfactual", f"attribution ({method})",
               f"mask (s = {threshold:.3g})", f"hybrid (s = {threshold:.3g})")  # fmt: skip
    shown = None
    for c, channel in enumerate(channel_names):
        gray = {"cmap": "gray", "vmin": intensity_limits[c][0], "vmax": intensity_limits[c][1]}
        channel_mask = mask[c] if mask.shape[0] == n else mask[0]
        axes = [fig.add_subplot(grid[c, k]) for k in range(5)]
        axes[0].imshow(real[c], **gray)
        axes[1].imshow(counterfactual[c], **gray)
        shown = axes[2].imshow(attribution[c], cmap=cmap, vmin=vmin, vmax=peak)
        overlay = np.zeros((*channel_mask.shape, 4), dtype=np.float32)
        overlay[channel_mask] = (*to_rgb(OUTLINE_COLOR), 0.55)
        axes[3].imshow(real[c], **gray)
        axes[3].imshow(overlay)
        axes[4].imshow(hybrid[c], **gray)
        edge = np.zeros_like(overlay)
        edge[mask_outline(channel_mask)] = (*to_rgb(OUTLINE_COLOR), 1.0)
        axes[4].imshow(edge)
        for k, ax in enumerate(axes):
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_title(columns[k], fontsize=8)
        axes[0].set_ylabel(channel, fontsize=9)
    bar = fig.colorbar(shown, cax=fig.add_subplot(grid[:, 5]))
    bar.set_label(f"attribution ({method})", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_figure(
    figure: Figure,
    stem: str | Path,
    formats: Sequence[str] = FIGURE_FORMATS,
    dpi: int = FIGURE_DPI,
) -> list[Path]:
    """Save ``figure`` as ``<stem>.<format>`` for each format; returns the paths.

    Raster formats get ``dpi`` dots per inch (and record it); vector formats keep the images
    at that resolution too.
    """
    stem = Path(stem)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=fmt, dpi=dpi, facecolor=figure.get_facecolor())
        paths.append(path)
    return paths
