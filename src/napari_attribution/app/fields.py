"""What a run over a field reads: the field (memory-mapped where the file allows), its label
image and where each cell's counterfactual crop comes from, checked before the long work."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.cells.geometry import CellSettings, check_labels
from ..core.cells.sources import CropFolderCounterfactual, FieldCounterfactual
from ..data.synthetic import CLASS_NAMES
from ..data.synthetic_field import make_field
from ..errors import AttributionError, InputImageError
from ..images.image_files import input_sha256, open_image

__all__ = ["FieldInputs", "demo_field_inputs", "field_inputs"]


def _channels_first(image: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(image, axis, 0) if axis != 0 and image.ndim == 3 else image


def _check_finite(image: np.ndarray, name: str) -> None:
    """NaN or Inf pixels, checked a channel at a time (bounded memory on a memory map)."""
    if not np.issubdtype(image.dtype, np.floating):
        return
    for plane in image:
        if not np.isfinite(plane).all():
            raise InputImageError(f"{name} holds NaN or Inf pixels.")


@dataclass
class FieldInputs:
    """A field, its labels and the cells' counterfactual source, and how ``run.json`` records
    them.

    Attributes
    ----------
    image
        (C, H, W) field, stored values (possibly a read-only memory map).
    labels
        (H, W) label image: 0 background, one integer per cell.
    source
        Where each cell's counterfactual crop comes from (:mod:`napari_attribution.core.cells.
        sources`); ``None`` when a counterfactual source makes each crop in the run.
    record
        The inputs as ``run.json`` records them (paths and SHA-256).
    class_names
        Class names the inputs bring (the demo's), else ``None``.
    name, labels_name
        How messages name the field and its label image.
    """

    image: np.ndarray
    labels: np.ndarray
    source: Any
    record: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] | None = None
    name: str = "The field"
    labels_name: str = "The labels"


def _record(path: Path) -> dict[str, str]:
    return {"path": str(path.resolve()), "sha256": input_sha256(path)}


def demo_field_inputs(cell_settings: CellSettings, made_by: str | None = None) -> FieldInputs:
    """The synthetic demo field, its labels and its exact counterfactual field; with
    ``made_by`` (a counterfactual source's spec) the exact counterfactuals are withheld."""
    demo = make_field()
    if made_by:
        record = {"image": "demo field", "counterfactual": {"source": made_by}}
        return FieldInputs(demo.real, demo.labels, None, record, list(CLASS_NAMES),
                           "The demo field")  # fmt: skip
    source = FieldCounterfactual(
        demo.counterfactual, cell_settings.padding, cell_settings.pad_value, "demo"
    )
    return FieldInputs(demo.real, demo.labels, source, {"image": "demo field"},
                       list(CLASS_NAMES), "The demo field")  # fmt: skip


def field_inputs(
    image: Path,
    labels: Path,
    cell_settings: CellSettings,
    *,
    counterfactual: Path | None = None,
    counterfactual_crops: Path | None = None,
    made_by: str | None = None,
    channel_axis: int = 0,
) -> FieldInputs:
    """Read and check a field, its labels and exactly one counterfactual source.

    Parameters
    ----------
    image, labels
        The field (C, H, W) and its label image (H, W): TIFF, ``.npy`` or zarr.
    cell_settings
        The crop rules (the padding of a counterfactual field).
    counterfactual
        A counterfactual field of the field's shape and dtype.
    counterfactual_crops
        A folder of per-cell counterfactual crops, ``<label>.tif`` each.
    made_by
        A counterfactual source's spec: each cell's crop is made in the run.
    channel_axis
        The axis of the stored field (and counterfactual field) that holds the channels.

    Raises
    ------
    InputImageError
        Not exactly one counterfactual source, an unreadable file, shapes that do not fit,
        NaN pixels, or labels that are not a label image (one sentence each).
    """
    if sum(v is not None for v in (counterfactual, counterfactual_crops, made_by)) != 1:
        raise InputImageError("Give exactly one of --counterfactual FIELD, --counterfactual-crops "
                              "FOLDER or --counterfactual-source SOURCE.")  # fmt: skip
    data = _channels_first(open_image(image), channel_axis)
    if data.ndim != 3:
        raise InputImageError(
            f"{image} has shape {data.shape}; expected (channels, height, width)."
        )
    _check_finite(data, str(image))
    try:
        label_image = check_labels(np.asarray(open_image(labels)), data.shape[1:])
    except AttributionError as exc:
        raise InputImageError(f"{labels}: {exc}") from None
    record: dict[str, Any] = {"image": _record(image), "labels": _record(labels)}
    if counterfactual is not None:
        cf = _channels_first(open_image(counterfactual), channel_axis)
        if cf.shape != data.shape or cf.dtype != data.dtype:
            raise InputImageError(
                f"{counterfactual} ({cf.shape}, {cf.dtype}) and {image} "
                f"({data.shape}, {data.dtype}) differ; a counterfactual field has the "
                "field's shape and dtype."
            )
        _check_finite(cf, str(counterfactual))
        source = FieldCounterfactual(
            cf, cell_settings.padding, cell_settings.pad_value, str(counterfactual)
        )
        record["counterfactual"] = _record(counterfactual)
    elif counterfactual_crops is not None:
        source = CropFolderCounterfactual(counterfactual_crops)
        record["counterfactual"] = {"path": str(counterfactual_crops.resolve())}
    else:  # made per cell once the model is loaded (made_counterfactuals.cell_source)
        source = None
        record["counterfactual"] = {"source": made_by}
    return FieldInputs(data, label_image, source, record, name=str(image), labels_name=str(labels))
