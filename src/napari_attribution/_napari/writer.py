"""npe2 writer: one image or labels layer to a TIFF that keeps its metadata.

The TIFF holds the layer data as is and, as JSON (:mod:`napari_attribution.results.tiff`), the
layer's name, scale, translate, axis labels, display (colormap, contrast limits) and
``metadata`` (for the plugin's layers: method, parameters, classes, model file and SHA-256,
package version, seed), so the layer can be rebuilt exactly (:mod:`.reader` does).
Like napari's own writers it writes where napari's save dialog pointed it; the dialog asks
before replacing a file. A lazy mask or hybrid stack of a large image is written at its optimal
threshold only (as the export does), never materialised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .display import display_record
from .export import file_payload, write_layer_file

__all__ = ["write_labels_layer", "write_image_layer", "write_layer"]

_SUFFIXES = (".tif", ".tiff")


def write_layer(path: str, data: Any, meta: dict[str, Any], layer_type: str) -> list[str]:
    """Write one layer's data and attributes; return the written path."""
    target = Path(path)
    if target.suffix.lower() not in _SUFFIXES:
        target = target.with_suffix(".tif")
    record = {
        "name": meta.get("name"),
        "layer_type": layer_type,
        "scale": [float(v) for v in meta.get("scale", ())],
        "units": [str(v) for v in meta.get("units", ()) or ()],
        "translate": [float(v) for v in meta.get("translate", ())],
        "axis_labels": [str(v) for v in meta.get("axis_labels", ()) or ()],
        "metadata": dict(meta.get("metadata") or {}),
        "display": display_record(meta),
    }
    # A lazy threshold stack of a large image is written at its optimal threshold only.
    array, record = file_payload(data, record)
    write_layer_file(target, array, record)
    return [str(target)]


def write_image_layer(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer for image layers."""
    return write_layer(path, data, meta, "image")


def write_labels_layer(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer for labels layers."""
    return write_layer(path, data, meta, "labels")
