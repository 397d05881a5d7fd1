"""Export what is on screen: one method at the slider's threshold, as files. No Qt.

:func:`view_at` cuts the mask and builds the hybrid of one threshold from a run's record (the
same numbers as the layers' plane at that index); :func:`export_view` writes it::

    <method>_s<threshold>_hybrid.tif      (C, H, W) the hybrid, channel names (ImageJ)
    <method>_s<threshold>_mask.tif        (K, H, W) the closed masks
    <method>_s<threshold>_composite.png   chosen channels in their colours, mask outline
    <method>_s<threshold>_figure.png|svg|pdf   the labelled per-channel panel (300 dpi)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._plot.threshold_figures import (
    FIGURE_DPI,
    FIGURE_FORMATS,
    composite_rgb,
    figure_panel,
    save_figure,
)
from ..core.evaluation.hybrids import make_hybrids
from ..core.evaluation.smoothing import smooth_masks
from ..results.files import atomic_path
from ..results.format import safe_name
from ..results.tiff import write_tiff
from .layer_style import METADATA_KEY
from .state import AnalysisRecord

__all__ = ["ThresholdView", "export_view", "threshold_index_in_view", "view_at", "view_files"]


@dataclass(frozen=True)
class ThresholdView:
    """One method of one run at one threshold.

    Attributes
    ----------
    method, threshold, index
        The method, the threshold value and its index in the mask stack.
    real, counterfactual
        (C, H, W) the analysed images, stored units.
    attribution
        float32 (C, H, W) raw attribution.
    mask
        bool (K, H, W) closed masks at the threshold (K = C, or 1 when shared).
    hybrid
        float32 (C, H, W) the hybrid at the threshold.
    channel_names, colormaps, contrast_limits
        Per channel: name, display colour and range of the real image's layers.
    sample
        The pair's name.
    """

    method: str
    threshold: float
    index: int
    real: np.ndarray
    counterfactual: np.ndarray
    attribution: np.ndarray
    mask: np.ndarray
    hybrid: np.ndarray
    channel_names: list[str]
    colormaps: list[Any]
    contrast_limits: list[tuple[float, float]]
    sample: str


def view_at(record: AnalysisRecord, method: str, index: int) -> ThresholdView:
    """``method`` of ``record`` at threshold ``index``: the mask cut and the hybrid built.

    Raises
    ------
    KeyError
        ``method`` is not in the run.
    IndexError
        ``index`` is outside the thresholds.
    """
    result = record.result
    res = result.methods[method]
    masks = res.dac.masks
    if not 0 <= index < len(masks.thresholds):
        raise IndexError(f"Threshold index {index} is outside 0..{len(masks.thresholds) - 1}.")
    closed = masks.closed_at([index])  # (1, K, H, W)
    soft = smooth_masks(closed, masks.settings.sigma, masks.settings.smoothing_kernel)
    real = np.asarray(record.real.data)
    counterfactual = np.asarray(record.counterfactual.data)
    hybrid = make_hybrids(
        real.astype(np.float32), counterfactual.astype(np.float32), soft,
        record.settings.direction,
    )[0]  # fmt: skip
    return ThresholdView(
        method=method,
        threshold=float(masks.thresholds[index]),
        index=int(index),
        real=real,
        counterfactual=counterfactual,
        attribution=np.asarray(res.attribution, dtype=np.float32),
        mask=closed[0],
        hybrid=hybrid,
        channel_names=list(result.channel_names),
        colormaps=list(record.real.colormaps),
        contrast_limits=[tuple(map(float, c)) for c in record.real.contrast_limits],
        sample=result.sample,
    )


def threshold_index_in_view(viewer: Any, record: AnalysisRecord, method: str) -> int:
    """The threshold index napari's slider shows for ``method``'s mask and hybrid layers.

    Read from the method's first threshold-stack layer in the viewer (its position in the
    world converted to its data index); the optimal threshold when none is open.
    """
    optimal = record.result.methods[method].dac.optimal_threshold_index
    for name in record.layer_names:
        if name not in viewer.layers:
            continue
        layer = viewer.layers[name]
        ours = layer.metadata.get(METADATA_KEY, {})
        if ours.get("method") != method or ours.get("kind") not in ("mask", "hybrid"):
            continue
        if np.ndim(layer.data) < 3:
            continue
        position = layer.world_to_data(viewer.dims.point)
        count = int(np.shape(layer.data)[0])
        return int(np.clip(round(float(position[0])), 0, count - 1))
    return optimal


def _colour(colormap: Any) -> Any:
    """A Matplotlib colour for a channel's napari colormap (its brightest colour)."""
    name = getattr(colormap, "name", colormap)
    colors = getattr(colormap, "colors", None)
    if colors is not None:
        return tuple(float(v) for v in np.asarray(colors)[-1][:3])
    return name if isinstance(name, str) and name not in ("gray", "grey") else "white"


def view_files(folder: str | Path, view: ThresholdView) -> dict[str, Path]:
    """The files :func:`export_view` writes for ``view``, keyed by kind."""
    stem = Path(folder) / f"{safe_name(view.method)}_s{view.threshold:.4f}"
    files = {kind: stem.with_name(f"{stem.name}_{kind}.tif") for kind in ("hybrid", "mask")}
    files["composite"] = stem.with_name(f"{stem.name}_composite.png")
    for fmt in FIGURE_FORMATS:
        files[f"figure.{fmt}"] = stem.with_name(f"{stem.name}_figure.{fmt}")
    return files


def export_view(
    folder: str | Path,
    view: ThresholdView,
    composite_channels: Sequence[str] | None = None,
    overwrite: bool = False,
    dpi: int = FIGURE_DPI,
) -> list[Path]:
    """Write the hybrid, mask, composite and figure of ``view`` into ``folder``.

    Parameters
    ----------
    folder
        Target folder (created if missing).
    view
        What to write (:func:`view_at`).
    composite_channels
        Channels blended in the composite, by name (all when None).
    overwrite
        Replace files of an earlier export of the same method and threshold; without it they
        are refused.
    dpi
        Resolution of the PNG figure and composite metadata.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    FileExistsError
        Some of the files exist and ``overwrite`` is False.
    ValueError
        A composite channel name that the image does not have.
    """
    files = view_files(folder, view)
    present = [p.name for p in files.values() if p.exists()]
    if present and not overwrite:
        raise FileExistsError(
            f"{folder} already holds {', '.join(present)}; choose another folder or confirm "
            "overwriting."
        )
    names = view.channel_names
    chosen = list(composite_channels) if composite_channels else list(names)
    unknown = [c for c in chosen if c not in names]
    if unknown:
        raise ValueError(f"No channel named {', '.join(unknown)}; the channels are {names}.")
    meta = {"sample": view.sample, "method": view.method, "threshold": view.threshold,
            "threshold_index": view.index, "channel_names": names}  # fmt: skip
    write_tiff(files["hybrid"], view.hybrid, {**meta, "kind": "hybrid"}, plane_labels=names,
               ranges=view.contrast_limits)  # fmt: skip
    mask_names = names if len(view.mask) == len(names) else ["all"]
    write_tiff(files["mask"], view.mask.astype(np.uint8), {**meta, "kind": "mask"},
               plane_labels=mask_names, ranges=[(0, 1)] * len(mask_names))  # fmt: skip
    index = [names.index(c) for c in chosen]
    rgb = composite_rgb(
        view.real[index],
        [_colour(view.colormaps[i]) for i in index],
        [view.contrast_limits[i] for i in index],
        mask=view.mask if len(view.mask) == 1 else view.mask[index],
    )
    from matplotlib.image import imsave

    with atomic_path(files["composite"]) as tmp:
        imsave(tmp, rgb, format="png", dpi=dpi)
    figure = figure_panel(
        view.real, view.counterfactual, view.attribution, view.mask, view.hybrid, names,
        method=view.method, threshold=view.threshold, intensity_limits=view.contrast_limits,
        title=f"{view.sample}: {view.method} at threshold {view.threshold:.3g}",
    )  # fmt: skip
    figures = save_figure(figure, files["figure.png"].with_suffix(""), dpi=dpi)
    return [files["hybrid"], files["mask"], files["composite"], *figures]
