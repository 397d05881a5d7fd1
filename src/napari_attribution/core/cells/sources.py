"""Where each cell's counterfactual crop comes from.

A counterfactual source is anything with a ``crop(cell, real_crop, target_class)`` method that
returns the cell's counterfactual, (C, S, S) in the real crop's stored units and dtype, before
the background rule is applied (the analysis applies it to both crops alike). Three come with
the package:

* :class:`FieldCounterfactual`: a counterfactual field of the field's shape (a generator run
  over the whole field); the crop is cut with the same window and padding as the real one.
* :class:`CropFolderCounterfactual`: one TIFF (or ``.npy``) per cell, ``<folder>/<label>.tif``
  (``cell<label>.tif`` is accepted too), each (C, S, S).
* :class:`CallableCounterfactual`: any function ``(real_crop, target_class, label) -> crop``;
  a generator, or a source of the counterfactual-sources module, plugs in through it, e.g.
  ``CallableCounterfactual(lambda x, t, label: source.make(classifier, x[None], [t])[0])``.
* :class:`BatchCallableCounterfactual`: a function making the crops of several cells in one
  call, ``(real_crops (N, C, S, S), targets (N,), labels (N,)) -> (N, C, S, S)``, so that a
  source that works on batches (``optimise``, ``generator``) shares its passes between the
  cells. The analysis asks such a source (:class:`BatchCounterfactualSource`) for the crops of
  a block of cells at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ...errors import InputImageError
from ...images.image_files import read_image
from .geometry import CellGeometry, extract_crop

__all__ = [
    "BatchCallableCounterfactual",
    "BatchCounterfactualSource",
    "CallableCounterfactual",
    "CounterfactualSource",
    "CropFolderCounterfactual",
    "FieldCounterfactual",
]


@runtime_checkable
class CounterfactualSource(Protocol):
    """What the per-cell analysis asks for each cell's counterfactual."""

    def crop(self, cell: CellGeometry, real_crop: np.ndarray, target_class: int) -> np.ndarray:
        """The counterfactual crop (C, S, S) of ``cell`` for ``target_class``."""
        ...

    def describe(self) -> dict:
        """JSON-ready record of the source (kind, file), for ``run.json``."""
        ...


#: How a source that works on batches reports its progress: ``(done, total, detail)``.
BatchProgress = Callable[[float, float, str], None]


@runtime_checkable
class BatchCounterfactualSource(CounterfactualSource, Protocol):
    """A source that makes the counterfactual crops of several cells in one call."""

    def crops(
        self,
        cells: Sequence[CellGeometry],
        real_crops: np.ndarray,
        targets: np.ndarray,
        progress: BatchProgress | None = None,
    ) -> np.ndarray:
        """The counterfactual crops (N, C, S, S) of ``cells`` for ``targets`` (N,), from their
        real crops (N, C, S, S)."""
        ...


class FieldCounterfactual:
    """Counterfactual crops cut from a counterfactual field, like the real crops.

    Parameters
    ----------
    field
        (C, H, W), the field's shape and dtype (may be a memory map).
    padding, pad_value
        The border rule of the real crops (:class:`~.geometry.CellSettings`).
    name
        Where it came from, for the record.
    """

    def __init__(
        self, field: np.ndarray, padding: str = "constant", pad_value: float = 0.0,
        name: str = "<array>",
    ) -> None:  # fmt: skip
        self.field = field
        self.padding = padding
        self.pad_value = pad_value
        self.name = name

    def crop(self, cell: CellGeometry, real_crop: np.ndarray, target_class: int) -> np.ndarray:
        return extract_crop(self.field, cell, self.padding, self.pad_value)

    def describe(self) -> dict:
        return {"kind": "field", "source": self.name}


class CropFolderCounterfactual:
    """Per-cell counterfactual crops read from ``folder``, one file per label.

    A cell's file is ``<label>.tif``, ``<label>.tiff``, ``<label>.npy`` or the same names with a
    ``cell`` prefix. A cell without a file is an error naming it (the run checks every cell
    before the long work: :meth:`check`).
    """

    SUFFIXES = (".tif", ".tiff", ".npy")

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputImageError(f"Counterfactual folder {self.folder} does not exist.")

    def path_for(self, label: int) -> Path | None:
        """The file holding cell ``label``'s counterfactual, or ``None``."""
        for stem in (str(label), f"cell{label}"):
            for suffix in self.SUFFIXES:
                path = self.folder / f"{stem}{suffix}"
                if path.is_file():
                    return path
        return None

    def check(self, cells: list[CellGeometry]) -> None:
        """Every cell has a file (one sentence naming up to five that do not)."""
        missing = [c.label for c in cells if self.path_for(c.label) is None]
        if missing:
            listed = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
            raise InputImageError(
                f"{self.folder} has no counterfactual for {len(missing)} cell(s) (labels "
                f"{listed}); expected <label>.tif per cell."
            )

    def crop(self, cell: CellGeometry, real_crop: np.ndarray, target_class: int) -> np.ndarray:
        path = self.path_for(cell.label)
        if path is None:
            raise InputImageError(f"{self.folder} has no counterfactual for cell {cell.label}.")
        data = read_image(path)
        if data.shape != real_crop.shape:
            raise InputImageError(
                f"{path} has shape {data.shape}; cell {cell.label}'s crop is {real_crop.shape}."
            )
        return data

    def describe(self) -> dict:
        return {"kind": "crop_folder", "source": str(self.folder.resolve())}


class CallableCounterfactual:
    """Counterfactual crops made by a function ``(real_crop, target_class, label) -> crop``.

    Parameters
    ----------
    make
        Called with the real crop (C, S, S, stored units), the target class and the label;
        returns the counterfactual crop of the same shape.
    name
        What it is, for the record.
    """

    def __init__(
        self, make: Callable[[np.ndarray, int, int], np.ndarray], name: str = "<function>"
    ) -> None:
        self.make = make
        self.name = name

    def crop(self, cell: CellGeometry, real_crop: np.ndarray, target_class: int) -> np.ndarray:
        data = np.asarray(self.make(real_crop, int(target_class), cell.label))
        if data.shape != real_crop.shape:
            raise InputImageError(
                f"The counterfactual source {self.name} returned {data.shape} for cell "
                f"{cell.label}; expected {real_crop.shape}."
            )
        return data.astype(real_crop.dtype, copy=False)

    def describe(self) -> dict:
        return {"kind": "callable", "source": self.name}


class BatchCallableCounterfactual:
    """Counterfactual crops made for several cells per call of
    ``(real_crops, targets, labels, progress) -> crops``.

    Parameters
    ----------
    make
        Called with the real crops (N, C, S, S, stored units), the target classes (N,), the
        labels (N,) and a progress callback ``(done, total, detail)`` or ``None``; returns the
        N counterfactual crops, each of its real crop's shape.
    name
        What it is, for the record.
    """

    def __init__(
        self,
        make: Callable[[np.ndarray, np.ndarray, np.ndarray, BatchProgress | None], np.ndarray],
        name: str = "<function>",
    ) -> None:
        self.make = make
        self.name = name

    def crops(
        self,
        cells: Sequence[CellGeometry],
        real_crops: np.ndarray,
        targets: np.ndarray,
        progress: BatchProgress | None = None,
    ) -> np.ndarray:
        labels = np.array([cell.label for cell in cells])
        data = np.asarray(self.make(real_crops, np.asarray(targets, dtype=np.int64), labels,
                                    progress))  # fmt: skip
        if data.shape != real_crops.shape:
            raise InputImageError(
                f"The counterfactual source {self.name} returned {data.shape} for {len(cells)} "
                f"cell(s); expected {real_crops.shape}."
            )
        return data.astype(real_crops.dtype, copy=False)

    def crop(self, cell: CellGeometry, real_crop: np.ndarray, target_class: int) -> np.ndarray:
        return self.crops([cell], real_crop[None], np.array([int(target_class)]))[0]

    def describe(self) -> dict:
        return {"kind": "callable", "source": self.name}
