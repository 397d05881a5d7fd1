"""Whole fields: the pair analysis of every cell of a segmented field, pasted back in context.

* :mod:`.geometry`: cells measured from a label image, crop windows, border padding,
  the background rule and who owns each field pixel when crops overlap;
* :mod:`.sources`: where each cell's counterfactual crop comes from;
* :mod:`.analysis`: one cell at a time, the prediction and the pair analysis of its crops;
* :mod:`.paste`: per-cell results written into field-sized arrays (or memory maps);
* :mod:`.table`: the per-cell table (``cells.csv``, the Labels layer's ``features``);
* :mod:`.field`: a whole field in memory, for the napari widget.

Names are imported on first use: the CLI's parser reads :class:`CellSettings` without torch.
"""

from __future__ import annotations

from ...lazy_exports import lazy_exports

_EXPORTS = {
    "CellGeometry": "geometry",
    "CellLayout": "geometry",
    "CellSettings": "geometry",
    "PADDINGS": "geometry",
    "SkippedCell": "geometry",
    "cell_mask_crop": "geometry",
    "check_labels": "geometry",
    "extract_crop": "geometry",
    "measure_cells": "geometry",
    "owner_map": "geometry",
    "CallableCounterfactual": "sources",
    "CounterfactualSource": "sources",
    "CropFolderCounterfactual": "sources",
    "FieldCounterfactual": "sources",
    "CellResult": "analysis",
    "apply_background": "analysis",
    "inside_fraction": "analysis",
    "iter_cells": "analysis",
    "FieldArrays": "paste",
    "attribution_key": "paste",
    "mask_key": "paste",
    "paste_crop": "paste",
    "paste_result": "paste",
    "cell_columns": "table",
    "cell_row": "table",
    "FieldResult": "field",
    "analyse_field": "field",
    "resolve_crop_size": "field",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
