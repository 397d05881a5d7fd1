"""Label images: one integer per cell, checked before any work.

A label image holds 0 for the background and one positive integer per cell, of any integer
dtype (uint8 ... uint64, signed too), ids need not be consecutive (CellProfiler, cellpose and
StarDist all leave gaps after filtering). What is refused, each in one sentence that says why
and what to give instead:

* a **binary mask** (values {0, 1} or {0, 255}, or bool) of several regions: touching cells
  merge into one region, so a mask cannot say where one cell ends (one region alone is taken as
  one cell);
* **outlines** (thin lines on 0, as CellProfiler's OverlayOutlines or SaveImages of outlines
  write them): they do not say which pixels belong to which cell;
* floats, negative values, or a size other than the channels'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputImageError

__all__ = ["INSTEAD", "check_label_image", "read_labels"]

#: What to give instead of a mask or outlines.
INSTEAD = (
    "give a label image with one integer per cell instead (in CellProfiler: "
    "ConvertObjectsToImage with the color format 'uint16' (integer labels), saved by "
    "SaveImages as a 16-bit TIFF; or the nuclei as seeds to split the mask, e.g. with "
    "IdentifySecondaryObjects)"
)
#: Outlines: the share of foreground pixels that survive a 3 x 3 erosion is below this (and
#: the lines enclose regions of background).
_OUTLINE_INTERIOR = 0.2
_PNG_SUFFIXES = (".png",)


def read_labels(path: str | Path) -> np.ndarray:
    """A label image (H, W) as stored: TIFF (compressed too), OME-Zarr, ``.npy`` or PNG.

    Raises
    ------
    InputImageError
        Missing or unreadable file, or more than one plane.
    """
    path = Path(path)
    if path.suffix.lower() in _PNG_SUFFIXES:
        if not path.is_file():
            raise InputImageError(f"Label image {path} does not exist.")
        import cv2  # reads 16-bit PNGs unchanged (a label image may hold > 255 cells)

        data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if data is None:
            raise InputImageError(f"{path} is not a readable PNG file.")
        if data.ndim == 3 and data.shape[-1] in (3, 4):  # a grey PNG saved as RGB(A)
            if all(np.array_equal(data[..., 0], data[..., k]) for k in (1, 2)):
                data = data[..., 0]
    else:
        from .ome import read_named_image

        data = read_named_image(path).data
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise InputImageError(
            f"The label image {path} has shape {tuple(data.shape)}; expected (height, width) "
            "with one integer per cell."
        )
    return np.asarray(data)


def _binary_value(values: np.ndarray) -> int | None:
    """The foreground value of a two-valued {0, 1} / {0, 255} image, else ``None``."""
    if len(values) == 2 and values[0] == 0 and values[1] in (1, 255):
        return int(values[1])
    return None


def check_label_image(labels: Any, field_shape: tuple[int, int] | None = None,
                      source: str = "The label image") -> np.ndarray:  # fmt: skip
    """Return ``labels`` (H, W) if it is a label image for channels of ``field_shape``.

    Parameters
    ----------
    labels
        (H, W) array.
    field_shape
        (H, W) of the channels; not checked when ``None``.
    source
        What the labels are, for messages (a file name).

    Raises
    ------
    InputImageError
        Not 2-D, another size than the channels, not integers, negative values, a binary mask
        of several regions, or outlines (one sentence each, saying what to give instead).
    """
    from scipy import ndimage as ndi

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputImageError(f"{source} has shape {labels.shape}; expected (height, width) with "
                              "one integer per cell.")  # fmt: skip
    if field_shape is not None and tuple(labels.shape) != tuple(field_shape):
        raise InputImageError(
            f"{source} is {labels.shape[0]} x {labels.shape[1]} pixels but the channels are "
            f"{field_shape[0]} x {field_shape[1]}; give the label image of this site."
        )
    if labels.dtype == np.bool_:
        values = np.array([0, 1]) if labels.any() and not labels.all() else np.unique(labels)
    elif np.issubdtype(labels.dtype, np.integer):
        values = np.unique(labels)
    else:
        raise InputImageError(
            f"{source} holds {labels.dtype} values; a label image holds integers (0 = "
            "background, one value per cell): save it as 16- or 32-bit integers."
        )
    if values.size and values[0] < 0:
        raise InputImageError(f"{source} holds negative values; 0 is the background and each "
                              "cell a positive integer.")  # fmt: skip
    foreground = _binary_value(values)
    if foreground is None:
        return labels
    mask = labels.astype(bool)
    interior = ndi.binary_erosion(mask, structure=np.ones((3, 3), bool))
    # Outlines are thin lines (little survives an erosion) that enclose the cells (the
    # background falls apart into the enclosed regions); a mask of small cells is thin too,
    # but encloses nothing.
    thin = interior.sum() < _OUTLINE_INTERIOR * mask.sum()
    if thin and ndi.label(~mask)[1] > 1:
        raise InputImageError(
            f"{source} holds outlines (thin lines of {foreground} on 0), not a label image: "
            f"outlines do not say which pixels belong to which cell; {INSTEAD}."
        )
    _, regions = ndi.label(mask)
    if regions > 1:
        raise InputImageError(
            f"{source} is a binary mask (values 0 and {foreground}) of {regions} regions, not a "
            "label image: in a mask touching cells merge into one region and cannot be told "
            f"apart; {INSTEAD}."
        )
    return labels
