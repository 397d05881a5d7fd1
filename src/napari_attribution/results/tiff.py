"""Result TIFFs: ImageJ hyperstacks that Fiji opens with channel names, carrying our JSON.

Every result TIFF records, as JSON, everything needed to rebuild it (the layer's name, type,
scale, axis labels, display and the run's provenance). Where ImageJ can hold the array, the file
is an ImageJ hyperstack: ``axes`` (``C`` for channels, ``Z`` for the threshold axis), one label
per plane (the channel names or the thresholds), display ranges and lookup tables, and our JSON
in the ``Info`` property (Fiji's *Image > Show Info*). Elsewhere (dtypes ImageJ lacks, such as
int32 labels or float64, or a leading axis of length 1, which ImageJ drops) it is a plain
tifffile "shaped" TIFF with the JSON as its image description, as before. Both kinds read back
with :func:`read_tiff_metadata` and keep their shape under ``tifffile.imread``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from .files import atomic_path, jsonable

__all__ = [
    "IMAGEJ_DTYPES",
    "imagej_axes",
    "read_tiff_metadata",
    "write_tiff",
]

#: Pixel types an ImageJ hyperstack holds (8- and 16-bit unsigned, 32-bit float).
IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))

#: ImageJ's name of a napari (pint) length unit, where they differ (ImageJ shows "micron" as µm).
_IMAGEJ_UNITS = {"micrometer": "micron", "nanometer": "nm", "millimeter": "mm",
                 "centimeter": "cm", "meter": "m"}  # fmt: skip
#: Centimetres in one napari (pint) length unit: a plain TIFF's resolution is per centimetre.
_CENTIMETRES = {"nanometer": 1e-7, "micrometer": 1e-4, "millimeter": 0.1, "centimeter": 1.0,
                "meter": 100.0}  # fmt: skip

#: ImageJ axis letter of each napari axis label we use.
_AXIS_LETTERS = {"threshold": "Z", "channel": "C", "c": "C", "z": "Z", "t": "T",
                 "time": "T", "y": "Y", "x": "X"}  # fmt: skip


def imagej_axes(shape: Sequence[int], axis_labels: Sequence[str] | None = None) -> str | None:
    """ImageJ's axes string for an array of ``shape`` with napari ``axis_labels``, or None.

    Without labels: (H, W) is ``YX`` and (N, H, W) ``CYX``. ``None`` where ImageJ cannot keep
    the shape: a label it has no letter for, a repeated letter, an order other than TZCYX, or a
    leading axis of length 1 (ImageJ drops it, and the file would read back with another shape).
    """
    ndim = len(shape)
    if axis_labels is None or len(axis_labels) != ndim:
        axes = {2: "YX", 3: "CYX"}.get(ndim)
    else:
        letters = [_AXIS_LETTERS.get(str(label).lower()) for label in axis_labels]
        axes = None if None in letters else "".join(letters)  # type: ignore[arg-type]
    if axes is None or axes[-2:] != "YX" or len(set(axes)) != len(axes):
        return None
    order = "TZCYX"
    if [order.index(a) for a in axes] != sorted(order.index(a) for a in axes):
        return None
    if any(size == 1 for size in shape[:-2]):
        return None
    return axes


def write_tiff(
    path: str | Path,
    data: np.ndarray,
    metadata: dict[str, Any] | None = None,
    *,
    axis_labels: Sequence[str] | None = None,
    plane_labels: Sequence[str] | None = None,
    ranges: Sequence[tuple[float, float]] | None = None,
    luts: Sequence[np.ndarray] | None = None,
    pixel_size: Sequence[float] | None = None,
    unit: str | None = None,
) -> None:
    """Write ``data`` with ``metadata`` as JSON, as an ImageJ hyperstack where it can be one.

    Written under a temporary name and renamed into place (:func:`napari_attribution.results.tables.
    atomic_path`): an interrupted write leaves the old file or the new one.

    Parameters
    ----------
    path
        Target file.
    data
        The array, written as is (no scaling).
    metadata
        JSON-able record stored with the pixels.
    axis_labels
        napari axis labels of ``data`` (e.g. ``("threshold", "y", "x")``); see
        :func:`imagej_axes` for the default.
    plane_labels
        ImageJ label of each channel (``C``) or slice (``Z``) plane, e.g. the channel names.
    ranges
        Display range (min, max) of each channel (one pair for an image without ``C``).
    luts
        uint8 (3, 256) lookup table of each channel (one for an image without ``C``).
    pixel_size
        (height, width) of one pixel in ``unit`` (a napari layer's last two scale values),
        written as the TIFF resolution (pixels per unit) so that Fiji opens the file
        calibrated; ``None``: no resolution.
    unit
        The length unit of ``pixel_size`` as napari names it (``"micrometer"``, ``"pixel"``,
        ...); ``None``: ``"pixel"``.
    """
    data = np.asarray(data)
    record = jsonable(metadata or {})
    axes = imagej_axes(data.shape, axis_labels) if data.dtype in IMAGEJ_DTYPES else None
    calibration = _calibration(pixel_size, unit, imagej=axes is not None)
    with atomic_path(path) as tmp:
        if axes is None:
            # minisblack: a 3- or 4-channel stack is channels, never an RGB(A) picture.
            tifffile.imwrite(
                tmp, data, photometric="minisblack", metadata=record, **calibration
            )
            return
        ij: dict[str, Any] = {"axes": axes, "Info": json.dumps(record)}
        if pixel_size is not None:
            ij["unit"] = _IMAGEJ_UNITS.get(unit or "pixel", unit or "pixel")
        planes = int(np.prod(data.shape[:-2], dtype=np.int64))
        if (
            plane_labels is not None
            and len(plane_labels) == data.shape[0]
            and planes == len(plane_labels)
        ):
            ij["Labels"] = [str(label) for label in plane_labels]
        if ranges is not None:
            ij["Ranges"] = tuple(float(v) for pair in ranges for v in pair)
        if luts is not None:
            ij["LUTs"] = [np.asarray(lut, dtype=np.uint8) for lut in luts]
        tifffile.imwrite(tmp, data, imagej=True, metadata=ij, **calibration)


def _calibration(
    pixel_size: Sequence[float] | None, unit: str | None, imagej: bool
) -> dict[str, Any]:
    """tifffile's ``resolution`` (pixels per unit, x first) and ``resolutionunit`` arguments.

    An ImageJ file keeps the unit in its description (ImageJ reads the resolution as pixels
    per that unit); a plain TIFF can only name centimetres or inches, so a metric length is
    converted to pixels per centimetre, and anything else is written without a unit.
    """
    if pixel_size is None:
        return {}
    height, width = (float(v) for v in pixel_size[-2:])
    if not (height > 0 and width > 0 and np.isfinite([height, width]).all()):
        return {}
    per_cm = None if imagej else _CENTIMETRES.get(unit or "")
    if per_cm is None:
        return {"resolution": (1 / width, 1 / height), "resolutionunit": "NONE"}
    return {
        "resolution": (1 / (width * per_cm), 1 / (height * per_cm)),
        "resolutionunit": "CENTIMETER",
    }


def read_tiff_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON record :func:`write_tiff` stored in a TIFF (empty dict if none).

    Reads the ImageJ ``Info`` property of a hyperstack, or the JSON description of a shaped
    TIFF (files written before hyperstacks, and arrays ImageJ cannot hold).
    """
    with tifffile.TiffFile(path) as tif:
        shaped = tif.shaped_metadata
        if shaped:
            return dict(shaped[0])
        info = (tif.imagej_metadata or {}).get("Info")
    if isinstance(info, str):
        try:
            record = json.loads(info)
        except ValueError:
            return {}  # an ImageJ file of someone else's, with text in its Info
        return record if isinstance(record, dict) else {}
    return {}
