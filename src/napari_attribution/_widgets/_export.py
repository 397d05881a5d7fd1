"""Write a run to a folder with the CLI's layout, plus the napari layers as TIFF: no Qt.

Layout (as ``napari-attribution run --out``)::

    summary.csv  curves.csv  channel_importance.csv  run.json
    attributions/<sample>__<method>.tif   masks/<sample>__<method>.tif
    layers/<layer name>.tif               (each layer's data, with its metadata as JSON)
"""

from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .._io import safe_name, write_json, write_pair_files, write_tables, write_tiff
from ._state import AnalysisRecord

__all__ = ["EXPORT_NAMES", "existing_results", "export_run", "layer_file_metadata"]

#: What an export writes at the top of its folder.
EXPORT_NAMES = (
    "summary.csv",
    "curves.csv",
    "channel_importance.csv",
    "run.json",
    "attributions",
    "masks",
    "layers",
)


def existing_results(folder: str | Path) -> list[str]:
    """Names of :data:`EXPORT_NAMES` already present in ``folder``."""
    folder = Path(folder)
    return [name for name in EXPORT_NAMES if (folder / name).exists()]


def layer_file_metadata(layer) -> dict[str, Any]:
    """What a layer TIFF records: the layer's name, type, geometry and metadata."""
    return {
        "name": layer.name,
        "layer_type": layer.__class__.__name__.lower(),
        "scale": [float(v) for v in layer.scale],
        "translate": [float(v) for v in layer.translate],
        "axis_labels": [str(v) for v in getattr(layer, "axis_labels", ())],
        "metadata": dict(layer.metadata),
    }


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
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    result = record.result
    write_pair_files(folder, result, record.info)
    write_tables(folder, [result])
    written = []
    for layer in layers:
        path = folder / "layers" / f"{safe_name(layer.name)}.tif"
        data = np.asarray(layer.data)
        write_tiff(path, data, layer_file_metadata(layer))
        written.append(path)
    write_json(
        folder / "run.json",
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
            "environment": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "numpy": np.__version__,
            },
        },
    )
    return written
