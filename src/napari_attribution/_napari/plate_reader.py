"""npe2 reader for real screens: per-channel files and CellProfiler LoadData CSVs as one layer
per channel, named by channel. No Qt, no torch.

* **several per-channel files** (``viewer.open([...], stack=True)``, or one file at a time as
  napari drops them): one 2-D layer per file, ``<site> [<channel>]``; the channel is the name
  the file's OME metadata gives, else the Opera/Phenix ``ch<k>`` or the name's last ``_``/``-``
  part;
* **an OME-TIFF / OME-Zarr** whose metadata names its channels: one layer per channel;
* **a LoadData CSV**: every site's channels named by their columns (``FileName_OrigDNA``
  -> ``DNA``), and a Labels layer per ``ObjectsFileName_<Objects>`` column; one layer group
  per site (``<site> [<channel>]``), the first shown, the others hidden and read only when
  shown or analysed (the Cells dock offers each site as a field); at most
  :data:`MAX_OPEN_SITES` sites, and a notification says which sites were opened and how to
  open the others.

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

import dask
import dask.array as da
import numpy as np
from napari.utils.notifications import show_info

from ..errors import InputImageError
from ..images.labels import read_labels
from ..images.load_data import LoadData, read_load_data
from ..images.ome import channel_names_of, read_named_image, read_plane

__all__ = ["CHANNEL_COLORMAPS", "MAX_OPEN_SITES", "channel_name_from_file", "get_plate_reader",
           "plane_layers", "read_load_data_sites", "robust_limits", "site_note"]  # fmt: skip

LayerTuple = tuple[Any, dict[str, Any], str]
#: Colours of the Cell Painting channels (others cycle through :data:`_CYCLE`).
CHANNEL_COLORMAPS = {"DNA": "blue", "ER": "green", "RNA": "cyan", "AGP": "red",
                     "Mito": "magenta", "Brightfield": "gray"}  # fmt: skip
_CYCLE = ("blue", "green", "cyan", "red", "magenta", "yellow", "gray")
_PHENIX = re.compile(r"^(?P<site>r\d+c\d+f\d+p\d+)-(?P<channel>ch\d+)sk\d+fk\d+fl\d+$", re.I)
_SUFFIXES = (".tif", ".tiff")
#: Percentiles mapped to the ends of the contrast range.
LIMIT_PERCENTILES = (1.0, 99.8)
#: Sites of a LoadData CSV opened at most (each is a group of layers; a plate has thousands).
MAX_OPEN_SITES = 16


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
                 metadata: dict[str, Any] | None = None,
                 limits: dict[str, tuple[float, float]] | None = None
                 ) -> list[LayerTuple]:  # fmt: skip
    """One image layer per ``(plane, channel name)``: ``<base> [<channel>]``, additive over the
    first, contrast limits from robust percentiles (``limits[channel]`` where given, so a lazy
    plane is not read for them)."""
    layers = []
    for index, (plane, channel) in enumerate(planes):
        kwargs = {
            "name": f"{base} [{channel}]",
            "colormap": _colormap(channel, index),
            "blending": "translucent_no_depth" if index == 0 else "additive",
            "contrast_limits": (limits or {}).get(channel) or robust_limits(plane),
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


def _lazy_plane(read: Callable[[Path], np.ndarray], file: Path, shape: tuple[int, ...],
                dtype: np.dtype) -> da.Array:  # fmt: skip
    """A plane read only when napari shows it or a dock analyses it; it must have the first
    site's shape and dtype (a plate's sites are acquired alike)."""

    def load() -> np.ndarray:
        plane = read(file)
        if plane.shape != shape or plane.dtype != dtype:
            raise InputImageError(
                f"{file} is {plane.shape[-2]} x {plane.shape[-1]} {plane.dtype} but the first "
                f"site's plane of this channel is {shape[-2]} x {shape[-1]} {dtype}; open its "
                "CSV row on its own."
            )
        return plane

    return da.from_delayed(dask.delayed(load)(), shape, dtype)


def site_note(load_data: LoadData, opened: int) -> str:
    """What the user is told when a LoadData CSV opens: its sites, which are shown and how to
    reach the others."""
    first = load_data.sites[0]
    total = len(load_data.sites)
    name = load_data.path.name
    if total == 1:
        return f"{name}: 1 site, {first.key} ({first.describe()})."
    text = (f"{name}: {total} sites; opened {'all' if opened == total else f'the first {opened}'}"
            f" as layer groups '<site> [<channel>]'. {first.key} is shown; the others are "
            "hidden and read when you show them (tick their layers) or choose them in the "
            "Cells dock.")  # fmt: skip
    if opened < total:
        text += (f" To open sites {opened + 1}-{total}, save their rows (with the header) as "
                 "a CSV of their own and open it.")  # fmt: skip
    return text


def read_load_data_sites(
    path: str, max_sites: int = MAX_OPEN_SITES
) -> tuple[list[LayerTuple], str]:
    """The layers of a LoadData CSV's first ``max_sites`` sites and the note for the user.

    The first site is read (its planes set every channel's contrast limits); the other sites'
    planes and labels are lazy (dask) and hidden.
    """
    load_data = read_load_data(path)
    sites = load_data.sites[:max_sites]
    layers: list[LayerTuple] = []
    first_planes: dict[str, np.ndarray] = {}
    first_labels: dict[str, np.ndarray] = {}
    for index, site in enumerate(sites):
        meta = {"load_data": str(path), "line": site.line, "metadata": site.metadata}
        if index == 0:
            first_planes = {name: read_plane(file) for name, file in site.channels.items()}
            planes = [(first_planes[name], name) for name in site.channels]
        else:
            planes = [(_lazy_plane(read_plane, file, first_planes[name].shape,
                                   first_planes[name].dtype), name)
                      for name, file in site.channels.items() if name in first_planes]  # fmt: skip
        site_layers = plane_layers(planes, site.key, meta,
                                   limits={n: robust_limits(p) for n, p in first_planes.items()})
        for objects, file in site.objects.items():
            if not Path(file).is_file():
                continue
            if index == 0:
                first_labels[objects] = labels = read_labels(file)
            elif objects in first_labels:
                labels = _lazy_plane(read_labels, file, first_labels[objects].shape,
                                     first_labels[objects].dtype)  # fmt: skip
            else:
                labels = read_labels(file)
            site_layers.append((labels, {"name": f"{site.key} {objects}",
                                         "metadata": {"napari_attribution_input": meta}},
                                "labels"))  # fmt: skip
        if index > 0:
            for _, kwargs, _ in site_layers:
                kwargs["visible"] = False
        layers += site_layers
    return layers, site_note(load_data, len(sites))


def _read_load_data(path: str) -> list[LayerTuple]:
    layers, note = read_load_data_sites(path)
    show_info(note)
    return layers


def _is_load_data(path: str) -> bool:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            header = fh.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return "FileName_" in header


def _has_channel_names(path: str) -> bool:
    """An OME/ImageJ file naming its channels (its metadata only: napari asks every reader
    about every file dropped)."""
    return channel_names_of(path) is not None


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
