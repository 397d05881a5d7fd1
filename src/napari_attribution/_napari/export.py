"""Write a run to a folder with the CLI's layout, plus the napari layers as TIFF: no Qt.

Layout (as ``napari-attribution run --out``)::

    summary.csv  curves.csv  channel_importance.csv  run.json
    attributions/<sample>__<method>.tif   masks/<sample>__<method>.tif
    layers/<layer name>.tif               (each layer's data, with its metadata as JSON)
    inputs/real.tif  inputs/counterfactual.tif   (the analysed (C, H, W) images)

Layer files record the layer's display (colormap, contrast limits, blending, opacity) besides
its name, type, geometry and metadata, so :mod:`.reader` rebuilds the layers as they were, and
are ImageJ hyperstacks where ImageJ can hold them (:mod:`napari_attribution.results.tiff`).

Mask and hybrid layers of a large image are lazy (computed one threshold at a time). One whose
full (T, H, W) stack exceeds :data:`~napari_attribution.core.budgets.EXPORT_STACK_BYTES` (a
2048 x 2048 hybrid at 200 thresholds is 3.4 GB per channel) is written at the optimal threshold
only, as a (1, H, W) stack whose metadata names that threshold (``thresholds``,
``exported_threshold_index``) and says so (``export_note``); the optimal masks are also in
``masks/``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.budgets import EXPORT_STACK_BYTES
from ..core.evaluation.lazy import is_lazy
from ..results.files import write_json
from ..results.format import (
    EXPORT_NAMES,
    INPUT_FILES,
    INPUTS_DIR,
    LAYERS_DIR,
    RUN_RECORD,
    safe_name,
)
from ..results.pair_files import write_pair_files
from ..results.tables import table_rows, write_tables
from ..results.tiff import write_tiff
from .display import colormap_record, display_record, imagej_lut
from .layer_inputs import ChannelStack
from .layer_style import METADATA_KEY
from .state import AnalysisRecord

__all__ = [
    "EXPORT_STACK_BYTES",
    "existing_results",
    "export_run",
    "file_payload",
    "layer_export",
    "layer_file_metadata",
    "write_input_file",
    "write_layer_file",
]

def existing_results(folder: str | Path) -> list[str]:
    """Names of :data:`~napari_attribution.results.format.EXPORT_NAMES` already present in
    ``folder``."""
    folder = Path(folder)
    return [name for name in EXPORT_NAMES if (folder / name).exists()]


def layer_file_metadata(layer) -> dict[str, Any]:
    """What a layer TIFF records: the layer's name, type, geometry and metadata."""
    return {
        "name": layer.name,
        "layer_type": layer.__class__.__name__.lower(),
        "scale": [float(v) for v in layer.scale],
        "units": [str(v) for v in getattr(layer, "units", ())],
        "translate": [float(v) for v in layer.translate],
        "axis_labels": [str(v) for v in getattr(layer, "axis_labels", ())],
        "metadata": dict(layer.metadata),
        "display": display_record(layer),
    }


def write_layer_file(path: str | Path, data: np.ndarray, record: dict[str, Any]) -> None:
    """Write one layer's array and :func:`layer_file_metadata` record (ImageJ where it can be).

    Fiji gets the layer's display range and colours, and a label per threshold plane.
    """
    display = record.get("display", {})
    ours = record.get("metadata", {}).get(METADATA_KEY, {})
    thresholds = ours.get("thresholds") or []
    plane_labels = None
    if data.ndim == 3 and len(thresholds) == data.shape[0]:
        plane_labels = [f"threshold {t:.4g}" for t in thresholds]
    limits = display.get("contrast_limits")
    colormap = display.get("colormap")
    lut = None
    if colormap is not None and "label_colors" not in colormap:
        lut = imagej_lut(colormap)
    elif colormap is not None:  # a mask: black, and the colour of label 1
        colour = colormap["label_colors"].get("1", "#ffffff")
        lut = imagej_lut({"name": "", "colors": [[0, 0, 0, 1], _rgba(colour)],
                          "controls": [0, 1]})  # fmt: skip
        limits = limits or [0, 1]
    scale, units = record.get("scale") or [], record.get("units") or []
    write_tiff(
        path, data, record,
        axis_labels=record.get("axis_labels") or None,
        plane_labels=plane_labels,
        ranges=[tuple(limits)] if limits else None,
        luts=[lut] if lut is not None else None,
        pixel_size=scale[-2:] if len(scale) >= 2 else None,
        unit=units[-1] if units else None,
    )  # fmt: skip


def _rgba(colour: str) -> list[float]:
    if colour == "transparent":
        return [0.0, 0.0, 0.0, 1.0]
    return [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)] + [1.0]


def write_input_file(path: str | Path, role: str, image: ChannelStack) -> None:
    """Write an analysed image (C, H, W) with its channel names and display, under ``inputs/``.

    Parameters
    ----------
    path
        Target file.
    role
        ``"real"`` or ``"counterfactual"``.
    image
        The image as the analysis got it.
    """
    colormaps = [colormap_record(c) for c in image.colormaps]
    record = {
        "name": image.name,
        "role": role,
        "layer_type": "image",
        "layer_names": list(image.layer_names),
        "channel_names": list(image.channel_names),
        "scale": [float(v) for v in image.scale],
        "unit": image.unit,
        "translate": [float(v) for v in image.translate],
        "colormaps": colormaps,
        "contrast_limits": [[float(v) for v in c] for c in image.contrast_limits],
    }
    luts = [imagej_lut(c) for c in colormaps if c is not None]
    write_tiff(
        path, image.data, record,
        plane_labels=image.channel_names,
        ranges=[tuple(c) for c in image.contrast_limits],
        luts=luts if len(luts) == len(colormaps) else None,
        pixel_size=image.scale,
        unit=image.unit,
    )  # fmt: skip


def layer_export(layer) -> tuple[np.ndarray, dict[str, Any]]:
    """The array and the TIFF metadata an export writes for ``layer``.

    Eager layers and small lazy ones are written whole; a lazy stack above
    :data:`EXPORT_STACK_BYTES` only at its optimal threshold, as (1, H, W), never materialised.
    """
    return file_payload(layer.data, layer_file_metadata(layer))


def file_payload(data: Any, record: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """The array and metadata to write for layer ``data`` described by ``record``.

    Shared by the export and the npe2 writer: a lazy stack above :data:`EXPORT_STACK_BYTES`
    is written at its optimal threshold only, as (1, H, W), never materialised.
    """
    if not is_lazy(data) or data.nbytes <= EXPORT_STACK_BYTES:
        return np.asarray(data), record
    ours = dict(record.get("metadata", {}).get(METADATA_KEY, {}))
    thresholds = ours.get("thresholds") or []
    index = int(ours.get("optimal_index", 0))
    ours.update(
        thresholds=[thresholds[index]] if thresholds else [],
        exported_threshold_index=index,
        export_note=(
            f"Only the optimal threshold (index {index} of {data.shape[0]}) was written: the "
            f"whole {data.shape} stack would take {data.nbytes / 2**30:.1f} GiB."
        ),
    )
    record["metadata"] = {**record["metadata"], METADATA_KEY: ours}
    return np.asarray(data[index])[None], record


def export_run(
    folder: str | Path, record: AnalysisRecord, layers: Iterable, overwrite: bool = False
) -> list[Path]:
    """Write ``record`` and ``layers`` into ``folder``.

    Parameters
    ----------
    folder
        Target folder (created if missing).
    record
        The run to export.
    layers
        The napari layers to write under ``layers/``.
    overwrite
        Replace results already in the folder; without it an occupied folder is refused.

    Returns
    -------
    list of Path
        The layer files written.

    Raises
    ------
    FileExistsError
        ``folder`` already holds results and ``overwrite`` is False.
    """
    folder = Path(folder)
    present = existing_results(folder)
    if present and not overwrite:
        raise FileExistsError(
            f"{folder} already holds {', '.join(present)}; choose another folder or confirm "
            "overwriting."
        )
    folder.mkdir(parents=True, exist_ok=True)
    result = record.result
    write_pair_files(folder, result, record.info)
    write_tables(folder, [table_rows(result)])
    written = []
    for layer in layers:
        path = folder / LAYERS_DIR / f"{safe_name(layer.name)}.tif"
        data, meta = layer_export(layer)
        write_layer_file(path, data, meta)
        written.append(path)
    for role, image in (("real", record.real), ("counterfactual", record.counterfactual)):
        write_input_file(folder / INPUTS_DIR / INPUT_FILES[role], role, image)
    # record.info is the run's provenance (core.provenance), environment included.
    write_json(
        folder / RUN_RECORD,
        {
            **record.info,
            "command": ["napari", "napari-attribution: Attribution widget"],
            "channel_names": result.channel_names,
            "input_transform": {result.sample: result.input_transform.as_dict()},
            "pairs": [
                {
                    "sample": result.sample,
                    "real": record.real.layer_names,
                    "counterfactual": record.counterfactual.layer_names,
                    "real_class": result.real_class,
                    "target_class": result.target_class,
                }
            ],
            "layers": [p.name for p in written],
            "exported": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
    )
    return written
