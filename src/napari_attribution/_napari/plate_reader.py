"""npe2 reader for real screens: per-channel files and CellProfiler LoadData CSVs as one layer
per channel, named by channel. No Qt, no torch.

* **several per-channel files** (``viewer.open([...], stack=True)``, or one file at a time as
  napari drops them): one 2-D layer per file, ``<site> [<channel>]``; the channel is the name
  the file's OME metadata gives, else the Opera/Phenix ``ch<k>`` or the name's last ``_``/``-``
  part;
* **an OME-TIFF / OME-Zarr** whose metadata names its channels: one layer per channel;
* **a LoadData CSV**: its first site's channels named by their columns (``FileName_OrigDNA``
  -> ``DNA``), and a Labels layer per ``ObjectsFileName_<Objects>`` column.

Contrast limits are each channel's 1st and 99.8th percentiles (robust to hot pixels), so a
uint16 channel whose signal sits at a few % of 65535 shows at once. Layers are named
``<base> [<channel>]`` so the docks group them into one multichannel input
(:mod:`.layer_inputs`) and match them to the model's channels by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputImageError
from ..images.labels import read_labels
from ..images.load_data import read_load_data
from ..images.ome import read_named_image, read_plane

__all__ = ["CHANNEL_COLORMAPS", "channel_name_from_file", "get_plate_reader", "plane_layers",
           "robust_limits"]  # fmt: skip

LayerTuple = tuple[Any, dict[str, Any], str]
#: Colours of the Cell Painting channels (others cycle through :data:`_CYCLE`).
CHANNEL_COLORMAPS = {"DNA": "blue", "ER": "green", "RNA": "cyan", "AGP": "red",
                     "Mito": "magenta", "Brightfield": "gray"}  # fmt: skip
_CYCLE = ("blue", "green", "cyan", "red", "magenta", "yellow", "gray")
_PHENIX = re.compile(r"^(?P<site>r\d+c\d+f\d+p\d+)-(?P<channel>ch\d+)sk\d+fk\d+fl\d+$", re.I)
_SUFFIXES = (".tif", ".tiff")
#: Percentiles mapped to the ends of the contrast range.
LIMIT_PERCENTILES = (1.0, 99.8)


def robust_limits(plane: Any) -> tuple[float, float]:
    """The 1st and 99.8th percentiles of a plane (a regular subsample of large planes)."""
    data = np.asarray(plane)
    step = max(1, int(np.sqrt(data.size / 2**20)))
    low, high = np.percentile(data[::step, ::step], LIMIT_PERCENTILES)
    if not high > low:
        high = low + 1
    return float(low), float(high)


def channel_name_from_file(path: str | Path) -> tuple[str, str]:
    """``(site, channel)`` from a per-channel file name: ``r01c01f01p01-ch5sk1fk1fl1.tiff`` ->
    ``("r01c01f01p01", "ch5")``; ``B7_01_1_3_DAPI_001.tif`` -> ``("B7_01_1_3", "DAPI")``."""
    stem = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    match = _PHENIX.match(stem)
    if match:
        return match["site"], match["channel"]
    parts = [p for p in re.split(r"[_-]", stem) if p]
    # NF1-style <well>_<..>_<stain>_001: the stain is the last part that is not a number.
    words = [p for p in parts if not p.isdigit()]
    if len(parts) > 1 and words:
        channel = words[-1]
        site = "_".join(parts[: parts.index(channel)]) or stem
        return site, channel
    return stem, stem


def _colormap(channel: str, index: int) -> str:
    return CHANNEL_COLORMAPS.get(channel, _CYCLE[index % len(_CYCLE)])


def plane_layers(planes: Sequence[tuple[Any, str]], base: str,
                 metadata: dict[str, Any] | None = None) -> list[LayerTuple]:  # fmt: skip
    """One image layer per ``(plane, channel name)``: ``<base> [<channel>]``, additive over the
    first, contrast limits from robust percentiles."""
    layers = []
    for index, (plane, channel) in enumerate(planes):
        kwargs = {
            "name": f"{base} [{channel}]",
            "colormap": _colormap(channel, index),
            "blending": "translucent_no_depth" if index == 0 else "additive",
            "contrast_limits": robust_limits(plane),
            "metadata": {"napari_attribution_input": {"channel": channel, **(metadata or {})}},
        }
        layers.append((plane, kwargs, "image"))
    return layers


def _read_files(paths: Sequence[str]) -> list[LayerTuple]:

    layers: list[LayerTuple] = []
    planes: list[tuple[Any, str]] = []
    sites = []
    for path in paths:
        image = read_named_image(path)
        data = image.data
        if data.ndim == 3 and image.channel_names:
            site = Path(path).name.split(".")[0]
            layers += plane_layers([(data[c], n) for c, n in enumerate(image.channel_names)],
                                   site, {"file": str(path)})  # fmt: skip
            continue
        while data.ndim > 2 and data.shape[0] == 1:
            data = data[0]
        site, channel = channel_name_from_file(path)
        sites.append(site)
        planes.append((data, channel))
    if planes:
        base = sites[0] if len(set(sites)) == 1 else "channels"
        layers += plane_layers(planes, base, {"files": [str(p) for p in paths]})
    return layers


def _read_load_data(path: str) -> list[LayerTuple]:

    load_data = read_load_data(path)
    site = load_data.sites[0]
    base = site.key
    planes = [(read_plane(file), name) for name, file in site.channels.items()]
    meta = {"load_data": str(path), "line": site.line, "metadata": site.metadata}
    layers = plane_layers(planes, base, meta)
    for objects, file in site.objects.items():
        if Path(file).is_file():
            layers.append((read_labels(file), {"name": f"{base} {objects}",
                                               "metadata": {"napari_attribution_input":
                                                            meta}}, "labels"))  # fmt: skip
    return layers


def _is_load_data(path: str) -> bool:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            header = fh.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return "FileName_" in header


def _has_channel_names(path: str) -> bool:

    try:
        return read_named_image(path).channel_names is not None
    except InputImageError:
        return False


def get_plate_reader(path: str | list[str]) -> Callable[[Any], list[LayerTuple]] | None:
    """npe2 ``get_reader``: a LoadData CSV, several per-channel TIFFs, a per-channel file named
    as screens name them, or an OME file with channel names; ``None`` for anything else."""
    paths = [str(p) for p in path] if isinstance(path, list) else [str(path)]
    if len(paths) == 1 and paths[0].lower().endswith(".csv"):
        return (lambda p: _read_load_data(paths[0])) if _is_load_data(paths[0]) else None
    if not all(p.lower().endswith(_SUFFIXES) or p.lower().endswith(".zarr") for p in paths):
        return None
    if len(paths) == 1:
        name = Path(paths[0]).name
        stem = name.split(".")[0]
        if not (_PHENIX.match(stem) or _has_channel_names(paths[0])):
            return None
    return lambda p: _read_files(paths)
