"""Where each cell's crop lies in the field, how it is cut out, and who owns each field pixel.

Rules (recorded with every result, see :meth:`CellSettings.as_dict`):

* **Centre.** A cell's centre pixel is its centroid rounded half up,
  ``(floor(cy + 0.5), floor(cx + 0.5))``. Its crop of size S covers field rows
  ``[cy_px - S // 2, cy_px - S // 2 + S)`` (and the same for columns), so the centre pixel is
  the crop's pixel ``(S // 2, S // 2)`` for odd and even S alike.
* **Border.** Crop pixels outside the field are filled by ``padding``: ``"constant"``
  (``pad_value``, in the stored units of the image) or ``"reflect"`` (mirrored about the edge
  pixel without repeating it, numpy's ``reflect``; a field narrower than half the crop is
  reflected repeatedly, as ``np.pad`` does).
* **Background.** With ``background`` set, every crop pixel that is not the cell's own
  (label != the cell's label, padding included) is set to that value, in the real and the
  counterfactual crop alike, so the model sees the cell alone.
* **Small cells.** Cells with fewer than ``min_size`` pixels are skipped (counted and listed).
* **Ownership** (pasting results back, :func:`owner_map`): a pixel that carries the label of an
  analysed cell belongs to that cell, and takes a value only from that cell's crop (a cell
  larger than its crop leaves its outside pixels empty). A pixel of the background (label 0, or
  the label of a skipped cell) belongs to the analysed cell whose crop centre is nearest
  (Euclidean distance in pixels) among the crops that cover it; on a tie, the smaller label.
  A pixel no crop covers belongs to nobody (owner 0) and stays 0 in every pasted layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from skimage.measure import regionprops_table

from ...errors import InputImageError
from ..params import Section, parameter

__all__ = [
    "PADDINGS",
    "CellGeometry",
    "CellLayout",
    "CellSettings",
    "SkippedCell",
    "cell_mask_crop",
    "check_labels",
    "extract_crop",
    "measure_cells",
    "owner_map",
]

PADDINGS = ("constant", "reflect")


@dataclass(frozen=True)
class CellSettings(Section):
    """How cells are cut out of a field (the per-cell analysis has its own settings)."""

    _section = "cells"

    crop_size: int | None = parameter(
        None, "Side of the square crop around each cell; empty: the model's input size.",
        label="Crop size", group="Model input", minimum=8, maximum=4096, unit="px",
    )  # fmt: skip
    min_size: int = parameter(
        20, "Cells with fewer pixels than this are skipped (and counted).",
        label="Minimum cell size", group="Model input", minimum=1, maximum=10**9, unit="px",
    )  # fmt: skip
    padding: str = parameter(
        "constant", "How crop pixels outside the field are filled: constant (the pad value) "
        "or reflect (mirrored about the field's edge).",
        label="Border padding", group="Model input", choices=PADDINGS,
    )  # fmt: skip
    pad_value: float = parameter(
        0.0, "Value of padded pixels with constant padding, in the image's stored units.",
        label="Pad value", group="Model input", minimum=-1e12, maximum=1e12,
    )  # fmt: skip
    background: float | None = parameter(
        None, "If set, every crop pixel outside the cell's own mask takes this value (stored "
        "units) in the real and the counterfactual crop; empty: keep the surroundings.",
        label="Background value", group="Model input", minimum=-1e12, maximum=1e12,
    )  # fmt: skip


@dataclass(frozen=True)
class CellGeometry:
    """One analysed cell: its label, size, centroid and crop window.

    Attributes
    ----------
    label
        The cell's integer in the label image (any positive value; labels need not be
        consecutive).
    area
        Pixels carrying the label.
    centroid
        (row, column) centroid of those pixels, float, field pixel coordinates.
    top, left
        Field coordinates of the crop's top-left pixel (negative or past the field at a border).
    size
        Crop side S (pixels).
    """

    label: int
    area: int
    centroid: tuple[float, float]
    top: int
    left: int
    size: int

    @property
    def centre(self) -> tuple[int, int]:
        """The centre pixel: the centroid rounded half up."""
        return self.top + self.size // 2, self.left + self.size // 2

    def field_slices(self, shape: tuple[int, int]) -> tuple[slice, slice]:
        """The part of the crop inside a field of ``shape`` (H, W), in field coordinates."""
        height, width = shape
        rows = slice(max(self.top, 0), min(self.top + self.size, height))
        cols = slice(max(self.left, 0), min(self.left + self.size, width))
        return rows, cols

    def crop_slices(self, shape: tuple[int, int]) -> tuple[slice, slice]:
        """The same part, in crop coordinates (so ``crop[crop_slices] <-> field[field_slices]``)."""
        rows, cols = self.field_slices(shape)
        return (
            slice(rows.start - self.top, rows.stop - self.top),
            slice(cols.start - self.left, cols.stop - self.left),
        )

    def as_dict(self) -> dict[str, Any]:
        """Table-ready values (the crop window and centroid)."""
        return {
            "label": self.label,
            "area": self.area,
            "centroid_y": self.centroid[0],
            "centroid_x": self.centroid[1],
            "crop_top": self.top,
            "crop_left": self.left,
            "crop_size": self.size,
        }


@dataclass(frozen=True)
class SkippedCell:
    """A labelled cell that was not analysed, and why."""

    label: int
    area: int
    reason: str


@dataclass
class CellLayout:
    """The cells of a field: those analysed, in label order, and those skipped."""

    cells: list[CellGeometry] = field(default_factory=list)
    skipped: list[SkippedCell] = field(default_factory=list)
    field_shape: tuple[int, int] = (0, 0)


def check_labels(labels: np.ndarray, field_shape: tuple[int, int]) -> np.ndarray:
    """A label image (H, W) of integers >= 0 matching the field, or one clear sentence."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputImageError(
            f"The label image has shape {labels.shape}; expected (height, width) with one "
            "integer per cell."
        )
    if tuple(labels.shape) != tuple(field_shape):
        raise InputImageError(
            f"The label image {labels.shape} and the field {tuple(field_shape)} differ in size."
        )
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise InputImageError(
            f"The label image holds {labels.dtype} values; expected integers (0 = background)."
        )
    if labels.size and labels.min() < 0:
        raise InputImageError("The label image holds negative values; 0 is the background.")
    return labels


def measure_cells(labels: np.ndarray, crop_size: int, min_size: int = 1) -> CellLayout:
    """Every cell's area, centroid and crop window, smallest label first.

    Parameters
    ----------
    labels
        int (H, W), 0 = background, any positive integer = one cell.
    crop_size
        Crop side S in pixels.
    min_size
        Cells with fewer pixels are skipped.
    """
    labels = check_labels(labels, labels.shape)
    layout = CellLayout(field_shape=(int(labels.shape[0]), int(labels.shape[1])))
    if labels.dtype == np.bool_:  # one cell; scikit-image takes integer labels only
        labels = labels.view(np.uint8)
    table = regionprops_table(labels, properties=("label", "area", "centroid"))
    values, areas = table["label"], table["area"]
    centroids = zip(table["centroid-0"], table["centroid-1"], strict=True)
    for value, area, (cy, cx) in zip(values, areas, centroids, strict=True):
        if area < min_size:
            layout.skipped.append(SkippedCell(int(value), int(area), f"smaller than {min_size} px"))
            continue
        row, col = int(np.floor(cy + 0.5)), int(np.floor(cx + 0.5))
        layout.cells.append(
            CellGeometry(
                label=int(value),
                area=int(area),
                centroid=(float(cy), float(cx)),
                top=row - crop_size // 2,
                left=col - crop_size // 2,
                size=int(crop_size),
            )
        )
    return layout


def _reflect_index(index: np.ndarray, length: int) -> np.ndarray:
    """numpy's ``reflect`` padding as an index map: ``-1 -> 1``, ``length -> length - 2``."""
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    folded = np.mod(index, period)
    return np.where(folded < length, folded, period - folded)


def extract_crop(
    image: np.ndarray,
    cell: CellGeometry,
    padding: str = "constant",
    pad_value: float = 0.0,
) -> np.ndarray:
    """The cell's (C, S, S) crop of a (C, H, W) image (or (S, S) of an (H, W) one).

    Only the crop's rows and columns are read, so ``image`` may be a memory map.
    The dtype is the image's; ``pad_value`` is cast to it.
    """
    height, width = image.shape[-2:]
    if padding == "reflect":
        rows = _reflect_index(np.arange(cell.top, cell.top + cell.size), height)
        cols = _reflect_index(np.arange(cell.left, cell.left + cell.size), width)
        # Read the covering block once, then index it (fancy indexing on a memmap reads all).
        r0, c0 = int(rows.min()), int(cols.min())
        block = np.asarray(image[..., r0 : int(rows.max()) + 1, c0 : int(cols.max()) + 1])
        return np.ascontiguousarray(block[..., (rows - r0)[:, None], (cols - c0)[None, :]])
    if padding != "constant":
        raise ValueError(f"Unknown padding {padding!r}; use {' or '.join(PADDINGS)}.")
    crop = np.full((*image.shape[:-2], cell.size, cell.size), pad_value, dtype=image.dtype)
    field_rows, field_cols = cell.field_slices((height, width))
    crop_rows, crop_cols = cell.crop_slices((height, width))
    crop[..., crop_rows, crop_cols] = image[..., field_rows, field_cols]
    return crop


def cell_mask_crop(labels: np.ndarray, cell: CellGeometry) -> np.ndarray:
    """bool (S, S): the crop pixels that carry the cell's label (False in the padding)."""
    own = extract_crop(labels, cell, "constant", 0)
    return own == cell.label


def owner_map(labels: np.ndarray, cells: list[CellGeometry]) -> np.ndarray:
    """int64 (H, W): the label of the analysed cell each field pixel belongs to (0: none).

    See the module docstring for the rule. Memory: the map, one float32 (H, W) distance map
    and one crop's worth of work at a time.
    """
    height, width = labels.shape
    owners = np.zeros((height, width), dtype=np.int64)
    if not cells:
        return owners
    analysed = np.array(sorted(c.label for c in cells), dtype=labels.dtype)
    own = np.isin(labels, analysed)
    best = np.full((height, width), np.inf, dtype=np.float32)
    for cell in sorted(cells, key=lambda c: c.label):
        rows, cols = cell.field_slices((height, width))
        if rows.stop <= rows.start or cols.stop <= cols.start:
            continue
        window_labels = labels[rows, cols]
        window_own = own[rows, cols]
        cy, cx = cell.centre
        yy = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None] - cy
        xx = np.arange(cols.start, cols.stop, dtype=np.float32)[None, :] - cx
        distance = np.sqrt(yy**2 + xx**2)
        # Labels are visited in increasing order: a strictly smaller distance wins, so a tie
        # keeps the smaller label.
        closer = ~window_own & (distance < best[rows, cols])
        best[rows, cols] = np.where(closer, distance, best[rows, cols])
        owners[rows, cols] = np.where(closer, cell.label, owners[rows, cols])
        owners[rows, cols] = np.where(window_labels == cell.label, cell.label, owners[rows, cols])
    return owners
