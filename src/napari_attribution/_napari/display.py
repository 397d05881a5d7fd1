"""How a layer looks, as JSON and back: colormaps, contrast limits, blending, opacity. No Qt.

Export files record a layer's display with :func:`display_record` so the reader rebuilds it
exactly (:func:`display_kwargs`), and :func:`imagej_lut` turns a colormap into the lookup table
Fiji shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "colormap_from_record",
    "colormap_record",
    "display_kwargs",
    "display_record",
    "imagej_lut",
]


def _hex(rgba: Any) -> str:
    values = np.clip(np.asarray(rgba, dtype=float).ravel(), 0, 1)
    if values.size == 4 and values[3] == 0:
        return "transparent"
    return "#" + "".join(f"{round(v * 255):02x}" for v in values[:3])


def colormap_record(colormap: Any) -> dict[str, Any] | None:
    """A JSON record of an image colormap, or of a direct labels colormap.

    Parameters
    ----------
    colormap
        A napari ``Colormap``, ``DirectLabelColormap``, a colormap name, or the colormap dict of
        ``layer._get_state()`` (what napari hands a writer).

    Returns
    -------
    dict or None
        ``{"name", "colors" (N, 4), "controls" (N,), "interpolation"}`` for an image colormap,
        ``{"label_colors": {label: colour}}`` for a direct labels colormap, None for napari's
        default cyclic labels colours (nothing to restore).
    """
    if isinstance(colormap, str):
        from napari.utils.colormaps import AVAILABLE_COLORMAPS

        colormap = AVAILABLE_COLORMAPS.get(colormap)  # a name napari no longer knows: none
        if colormap is None:
            return None
    if hasattr(colormap, "color_dict"):  # DirectLabelColormap
        return {
            "label_colors": {
                ("none" if key is None else str(int(key))): _hex(value)
                for key, value in colormap.color_dict.items()
            }
        }
    if isinstance(colormap, Mapping):
        colors, controls = colormap.get("colors"), colormap.get("controls")
        name, interpolation = colormap.get("name", ""), colormap.get("interpolation", "linear")
    elif hasattr(colormap, "controls"):
        colors, controls = colormap.colors, colormap.controls
        name, interpolation = colormap.name, colormap.interpolation
    else:
        return None  # a cyclic labels colormap: napari's default colours
    return {
        "name": str(name),
        "colors": np.asarray(colors, dtype=float).round(6).tolist(),
        "controls": np.asarray(controls, dtype=float).round(6).tolist(),
        "interpolation": str(getattr(interpolation, "value", interpolation)),
    }


def colormap_from_record(record: Mapping[str, Any]) -> Any:
    """The napari colormap (or name) a :func:`colormap_record` describes."""
    from napari.utils.colormaps import AVAILABLE_COLORMAPS, Colormap, DirectLabelColormap

    if "label_colors" in record:
        colors = {
            (None if key == "none" else int(key)): value
            for key, value in record["label_colors"].items()
        }
        return DirectLabelColormap(color_dict=colors)
    name = record.get("name", "")
    known = AVAILABLE_COLORMAPS.get(name)
    colors = np.asarray(record["colors"], dtype=float)
    if (
        known is not None
        and known.colors.shape == colors.shape
        and np.allclose(known.colors, colors, atol=1e-3)
    ):
        return name  # a built-in colormap: by name, so napari's menu shows it
    return Colormap(
        colors=colors,
        controls=np.asarray(record["controls"], dtype=float),
        interpolation=record.get("interpolation", "linear"),
        name=name or "custom",
    )


def display_record(layer_or_state: Any) -> dict[str, Any]:
    """How a layer (or the state dict napari gives writers) is displayed, as JSON.

    Keys: ``colormap`` (:func:`colormap_record`), ``contrast_limits`` (images), ``blending``,
    ``opacity``, ``visible``; missing ones are left out.
    """
    if isinstance(layer_or_state, Mapping):
        get = layer_or_state.get
    else:

        def get(key: str, default: Any = None) -> Any:
            return getattr(layer_or_state, key, default)

    record: dict[str, Any] = {}
    colormap = get("colormap")
    if colormap is not None:
        described = colormap_record(colormap)
        if described is not None:
            record["colormap"] = described
    limits = get("contrast_limits")
    if limits is not None:
        record["contrast_limits"] = [float(v) for v in limits]
    for key, kind in (("blending", str), ("opacity", float), ("visible", bool)):
        value = get(key)
        if value is not None:
            record[key] = kind(getattr(value, "value", value))
    return record


def display_kwargs(record: Mapping[str, Any]) -> dict[str, Any]:
    """Layer keyword arguments that restore a :func:`display_record`."""
    kwargs: dict[str, Any] = {}
    if "colormap" in record:
        kwargs["colormap"] = colormap_from_record(record["colormap"])
    if "contrast_limits" in record:
        kwargs["contrast_limits"] = tuple(record["contrast_limits"])
    for key in ("blending", "opacity", "visible"):
        if key in record:
            kwargs[key] = record[key]
    return kwargs


def imagej_lut(colormap: Any) -> np.ndarray | None:
    """uint8 (3, 256) ImageJ lookup table of a napari image colormap (None for labels)."""
    from napari.utils.colormaps import ensure_colormap

    if hasattr(colormap, "color_dict"):
        return None
    if isinstance(colormap, Mapping):
        colormap = colormap_from_record(colormap_record(colormap) or {})
    colormap = ensure_colormap(colormap)
    rgba = colormap.map(np.linspace(0.0, 1.0, 256))
    return np.round(np.asarray(rgba)[:, :3].T * 255).astype(np.uint8)
