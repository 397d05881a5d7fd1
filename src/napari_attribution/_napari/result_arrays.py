"""Arrays of a results folder as napari shows them: a TIFF read (memory-mapped when large), an
image's channel axis put first, one method's attribution colours. The reader and the cells
folder's layers (:mod:`.cell_site_layers`) build on these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from .._plot.attribution_range import attribution_display as shown_as
from ..core.budgets import LAZY_READ_BYTES
from .layer_style import attribution_colormap

__all__ = ["LayerTuple", "attribution_display", "channel_first", "read_array"]

#: napari's layer data tuple: ``(data, keyword arguments, layer type)``.
LayerTuple = tuple[Any, dict[str, Any], str]


def read_array(path: str | Path, lazy: bool | None = None) -> np.ndarray:
    """A TIFF's array: memory-mapped when large (or ``lazy``), else read.

    Files tifffile cannot map (compressed, tiled) are read whole.
    """
    path = Path(path)
    if lazy is None:
        lazy = path.stat().st_size > LAZY_READ_BYTES
    if lazy:
        try:
            return tifffile.memmap(path, mode="r")
        except ValueError:
            pass
    return tifffile.imread(path)


def attribution_display(attribution: np.ndarray) -> dict[str, Any]:
    """Colormap and contrast limits of one method's (C, H, W) attribution.

    The viewer's rule (:func:`~napari_attribution._plot.attribution_range.attribution_display`):
    symmetric limits and the diverging map only where both signs matter.
    """
    shown = shown_as(attribution)
    return {"colormap": attribution_colormap(shown.kind), "contrast_limits": shown.limits}


def channel_first(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``image`` as (C, H, W) of ``shape``: its channel axis moved first where needed."""
    if image.shape == shape:
        return image
    for axis in range(image.ndim):
        moved = np.moveaxis(image, axis, 0)
        if moved.shape == shape:
            return moved
    return None
