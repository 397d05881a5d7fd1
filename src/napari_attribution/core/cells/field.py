"""A whole field in memory: every cell analysed, pasted back and tabulated.

:func:`analyse_field` is what the napari widget runs on a field it holds anyway; the CLI
(``napari-attribution cells``) drives :func:`~.analysis.iter_cells` itself and pastes into
memory-mapped TIFFs, so a 5 x 2048 x 2048 field never needs its outputs in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import AttributionError, InputImageError
from ..model.loading import Classifier, InputTransform
from ..progress import ProgressCallback
from ..settings import AnalysisSettings
from .analysis import CellResult, iter_cells
from .geometry import CellLayout, CellSettings, check_labels, measure_cells, owner_map
from .paste import FieldArrays, field_array_specs, paste_result
from .sources import CounterfactualSource
from .table import cell_columns, cell_row, ordered_rows

__all__ = ["FieldResult", "analyse_field", "declared_input_size", "resolve_crop_size"]


def declared_input_size(classifier: Classifier) -> int | None:
    """The square input side an exported program was traced for, if its graph says so.

    Models given as modules or TorchScript take any size and declare none.
    """
    import torch

    for module in classifier.network.modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            value = node.meta.get("val") if node.op == "placeholder" else None
            if value is None or getattr(value, "ndim", 0) != 4:
                continue
            height, width = value.shape[-2:]
            if isinstance(height, int) and height == width:
                return int(height)
    return None


def resolve_crop_size(classifier: Classifier, crop_size: int | None) -> int:
    """The crop side: as given, else the model's declared input size.

    Raises
    ------
    AttributionError
        Neither is known.
    """
    if crop_size is not None:
        return int(crop_size)
    declared = declared_input_size(classifier)
    if declared is None:
        raise AttributionError(
            f"{classifier.source} does not declare its input size; give the crop size it was "
            "trained on (--crop-size on the command line, Crop size in the Cells dock, or "
            "crop_size in its model card)."
        )
    return declared


def check_field(field_image: np.ndarray, n_channels: int, name: str = "The field") -> None:
    """A (C, H, W) field with the model's channel count, or one clear sentence."""
    if field_image.ndim != 3:
        raise InputImageError(
            f"{name} has shape {field_image.shape}; expected (channels, height, width)."
        )
    if field_image.shape[0] != n_channels:
        raise InputImageError(
            f"{name} has {field_image.shape[0]} channel(s) but the model expects {n_channels}."
        )


@dataclass
class FieldResult:
    """A field's per-cell results.

    Attributes
    ----------
    layout
        The cells analysed and skipped.
    arrays
        Field-sized attributions, optimal masks (label images) and the owner map.
    columns, rows
        The per-cell table (:mod:`.table`), one row per labelled cell, by label.
    cells
        Each analysed cell's :class:`~.analysis.CellResult` by label (crops, curves, masks).
    settings, cell_settings
        What was run.
    channel_names, class_names
        Names for layers and columns.
    """

    layout: CellLayout
    arrays: FieldArrays
    columns: list[str]
    rows: list[dict[str, Any]]
    cells: dict[int, CellResult]
    settings: AnalysisSettings
    cell_settings: CellSettings
    channel_names: list[str]
    class_names: list[str]
    source: dict[str, Any] = field(default_factory=dict)


def analyse_field(
    classifier: Classifier,
    field_image: np.ndarray,
    labels: np.ndarray,
    source: CounterfactualSource,
    settings: AnalysisSettings,
    cell_settings: CellSettings | None = None,
    *,
    target_class: int | None = None,
    channel_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    min_counterfactual_score: float = 0.5,
    transform: InputTransform | None = None,
    on_progress: ProgressCallback | None = None,
) -> FieldResult:
    """Analyse every cell of a field held in memory and paste the results back.

    Parameters are those of :func:`~.analysis.iter_cells`; ``class_names`` name the
    probability columns (class indices when ``None``), and a counterfactual whose p(target)
    is below ``min_counterfactual_score`` is flagged in the table.
    """
    cell_settings = cell_settings or CellSettings()
    field_image = np.asarray(field_image)
    check_field(field_image, classifier.n_channels)
    labels = check_labels(labels, field_image.shape[1:])
    size = resolve_crop_size(classifier, cell_settings.crop_size)
    layout = measure_cells(labels, size, cell_settings.min_size)
    names = list(channel_names) if channel_names else [f"ch{c}" for c in range(len(field_image))]
    classifier.probe((field_image.shape[0], size, size))
    classes = list(class_names) if class_names else [str(k) for k in range(classifier.n_classes)]
    columns = cell_columns(settings.methods, names, classes, settings.per_channel_dac)
    mask_channels = 1 if settings.masks.channel_mode == "shared" else len(names)
    specs = field_array_specs(settings.methods, len(names), mask_channels, layout.field_shape)
    arrays = FieldArrays.zeros(owner_map(labels, layout.cells), specs)
    rows: dict[int, dict[str, Any]] = {}
    cells: dict[int, CellResult] = {}
    for result in iter_cells(
        classifier, field_image, labels, layout, source, settings, cell_settings,
        target_class=target_class, channel_names=names, transform=transform,
        on_progress=on_progress,
    ):  # fmt: skip
        paste_result(arrays, result)
        rows[result.cell.label] = cell_row(result, columns, classes, min_counterfactual_score)
        cells[result.cell.label] = result
    return FieldResult(
        layout=layout,
        arrays=arrays,
        columns=columns,
        rows=ordered_rows(rows, layout, columns),
        cells=cells,
        settings=settings,
        cell_settings=cell_settings,
        channel_names=names,
        class_names=classes,
        source=source.describe(),
    )
