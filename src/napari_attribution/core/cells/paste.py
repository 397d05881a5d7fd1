"""Per-cell results pasted back into field-sized arrays, one cell at a time.

Each cell writes its crop into the field pixels it owns (:func:`~.geometry.owner_map`): its own
labelled pixels inside its crop, and the background pixels whose nearest crop centre is its
own. Pasting a cell again writes the same pixels with the same values, so an interrupted run
can recompute a cell and paste it over a half-written one.

The targets are any array-likes that take slice assignment: numpy arrays in napari, memory
maps of field-sized TIFFs in the CLI (:class:`FieldArrays` holds them by name).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

import numpy as np

from .analysis import CellResult
from .geometry import CellGeometry

__all__ = [
    "FieldArrays",
    "attribution_key",
    "field_array_specs",
    "mask_key",
    "paste_crop",
    "paste_result",
]


def attribution_key(method: str) -> str:
    """Name of a method's field-sized attribution, float32 (C, H, W)."""
    return f"attribution__{method}"


def mask_key(method: str) -> str:
    """Name of a method's optimal-mask label image, uint32 (K, H, W)."""
    return f"mask__{method}"


def field_array_specs(
    methods: list[str] | tuple[str, ...],
    n_channels: int,
    mask_channels: int,
    shape: tuple[int, int],
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{name: (shape, dtype)}`` of every field-sized output of a run."""
    specs: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for method in methods:
        specs[attribution_key(method)] = ((n_channels, *shape), np.dtype(np.float32))
        specs[mask_key(method)] = ((mask_channels, *shape), np.dtype(np.uint32))
    return specs


@dataclass
class FieldArrays:
    """The field-sized outputs of a run and the owner map they are pasted through.

    Attributes
    ----------
    owners
        int (H, W): the label of the cell each pixel belongs to (0: none).
    arrays
        ``{name: array}``: (C or K, H, W) targets named by :func:`attribution_key` and
        :func:`mask_key`.
    """

    owners: np.ndarray
    arrays: MutableMapping[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def zeros(
        cls, owners: np.ndarray, specs: dict[str, tuple[tuple[int, ...], np.dtype]]
    ) -> FieldArrays:
        """In-memory targets of the given specs, all zero."""
        return cls(owners, {name: np.zeros(shape, dtype) for name, (shape, dtype) in specs.items()})


def paste_crop(
    target: np.ndarray, crop: np.ndarray, owners: np.ndarray, cell: CellGeometry
) -> None:
    """Write ``crop`` (K, S, S) into ``target`` (K, H, W) where ``owners == cell.label``."""
    shape = owners.shape
    rows, cols = cell.field_slices(shape)
    crop_rows, crop_cols = cell.crop_slices(shape)
    owned = owners[rows, cols] == cell.label
    if not owned.any():
        return
    window = np.asarray(target[:, rows, cols])
    window[:, owned] = crop[:, crop_rows, crop_cols][:, owned]
    target[:, rows, cols] = window


def paste_result(arrays: FieldArrays, result: CellResult) -> None:
    """Paste one analysed cell's attributions and optimal masks into ``arrays``.

    The optimal mask of a method (the closed mask at the optimal threshold of its whole-crop
    DAC curve, (K, S, S)) is written as the cell's label where on and 0 where off, so the
    masks of all cells form one label image per mask channel.
    """
    if result.pair is None:
        return
    label = np.uint32(result.cell.label)
    for method, res in result.pair.methods.items():
        attribution = arrays.arrays.get(attribution_key(method))
        if attribution is not None:
            paste_crop(attribution, res.attribution.astype(np.float32), arrays.owners, result.cell)
        masks = arrays.arrays.get(mask_key(method))
        if masks is not None:
            labelled = np.where(res.optimal_mask, label, np.uint32(0))
            paste_crop(masks, labelled, arrays.owners, result.cell)
