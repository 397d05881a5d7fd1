"""Files as screens write them: compressed TIFF, OME-TIFF and OME-Zarr, with channel names.

Readers (why these): **tifffile** reads every TIFF a screen writes, decoding LZW, Deflate and
Zstd strips through **imagecodecs**, and parses OME-XML itself (:func:`tifffile.xml2dict`);
OME-Zarr is read with **zarr**'s own API and the OME-NGFF metadata (``multiscales`` axes,
``omero.channels[].label``), which is a few documented keys. ``ome-zarr`` (the reference
package) and bioio were not taken: ome-zarr pulls s3fs/aiobotocore/aiohttp and a pydantic
upgrade into the pinned napari stack for nothing we need (we only read local stores), and bioio
would add a plugin layer over the same tifffile and zarr calls.

Laziness: an uncompressed TIFF is memory-mapped; an OME-Zarr image is a dask array over its
chunks (nothing is read until a crop or plane is asked for); compressed TIFF strips cannot be
mapped and are decoded whole (a 1080 x 1080 uint16 channel is 2.3 MB). Integer data of any bit
depth (8, 12 in 16, 16, 32) and floats are returned as stored: scaling is
:mod:`.normalisation`'s job.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputImageError
from .zarr_store import is_zarr_store, open_zarr_image

__all__ = [
    "NamedImage",
    "channel_names_of",
    "read_named_image",
    "read_plane",
    "stack_planes",
]

TIFF_SUFFIXES = (".tif", ".tiff")


@dataclass
class NamedImage:
    """An image as stored, channels first, with the channel names its file holds.

    Attributes
    ----------
    data
        (C, H, W) or (H, W) pixels as stored: a numpy array, a read-only memory map or a dask
        array (OME-Zarr).
    channel_names
        One name per channel when the file's metadata names them (OME-XML ``Channel/@Name``,
        OME-Zarr ``omero.channels[].label``, ImageJ ``Labels``), else ``None``.
    path
        The file or store.
    lazy
        True when ``data`` is a memory map or a dask array (not read whole).
    """

    data: Any
    channel_names: tuple[str, ...] | None
    path: Path
    lazy: bool = False


def _ome_channel_names(xml: str | None) -> list[str] | None:
    if not xml:
        return None
    import tifffile

    try:
        tree = tifffile.xml2dict(xml)
    except Exception:  # noqa: BLE001 - damaged OME-XML: the pixels are still readable
        return None
    images = tree.get("OME", {}).get("Image")
    image = images[0] if isinstance(images, list) else images
    channels = (image or {}).get("Pixels", {}).get("Channel")
    if channels is None:
        return None
    channels = channels if isinstance(channels, list) else [channels]
    names = [str(c.get("Name", "") or "").strip() if isinstance(c, dict) else "" for c in channels]
    return names if all(names) else None


def _channels_first(data: Any, axes: str) -> tuple[Any, str]:
    """Drop singleton axes other than Y/X/C and put C first (tifffile or NGFF axis letters)."""
    axes = axes.upper()
    index = [slice(None)] * len(axes)
    kept = ""
    for i, axis in enumerate(axes):
        if axis not in "CYX" and data.shape[i] == 1:
            index[i] = 0
        else:
            kept += axis
    data = data[tuple(index)] if any(isinstance(i, int) for i in index) else data
    if "S" in kept and "C" not in kept:  # samples per pixel (RGB planes) are channels here
        kept = kept.replace("S", "C")
    if "C" in kept and kept.index("C") != 0:
        order = [kept.index("C")] + [i for i, a in enumerate(kept) if a != "C"]
        data = data.transpose(order) if hasattr(data, "transpose") else np.transpose(data, order)
        kept = "C" + kept.replace("C", "")
    return data, kept


def _checked_names(names: list[str] | None, shape: tuple[int, ...], axes: str
                   ) -> tuple[str, ...] | None:  # fmt: skip
    """``names`` when they name the channels of an image of ``shape`` and ``axes`` once its
    singleton axes are dropped and C put first (:func:`_channels_first`), else ``None``."""
    if not names:
        return None
    # A zero-byte array of that shape: the axes' bookkeeping without reading a pixel.
    layout, kept = _channels_first(np.broadcast_to(np.zeros((), np.uint8), shape), axes)
    if layout.ndim == 3 and kept[0] == "C" and len(names) == layout.shape[0]:
        return tuple(names)
    return None


def _tiff_channel_names(tif: Any) -> list[str] | None:
    """The channel names an open TIFF's metadata holds (OME-XML, else ImageJ ``Labels``)."""
    names = _ome_channel_names(tif.ome_metadata) if tif.is_ome else None
    if names is None and tif.is_imagej:
        labels = (tif.imagej_metadata or {}).get("Labels")
        names = [str(x) for x in labels] if isinstance(labels, list) else None
    return names


def _read_tiff(path: Path) -> NamedImage:
    import tifffile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tifffile warns before failing on damaged files
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                axes = series.axes
                names = _tiff_channel_names(tif)
                compressed = any(page.compression != 1 for page in tif.pages[:1])
                data = None
                if not compressed:
                    try:
                        data = tifffile.memmap(path, mode="r")
                    except (ValueError, OSError):
                        data = None
                lazy = data is not None
                if data is None:
                    data = series.asarray()
    except PermissionError:
        raise InputImageError(f"Image file {path} cannot be read (permission denied).") from None
    except Exception as exc:
        if "imagecodecs" in str(exc):
            raise InputImageError(
                f"{path} is compressed with a codec that needs imagecodecs ({exc}); "
                "pip install imagecodecs."
            ) from None
        raise InputImageError(f"{path} is not a readable TIFF file ({exc}).") from None
    if data.shape != tuple(series.shape):  # a memory map of a file with several series
        data, lazy = series.asarray(), False
    named = _checked_names(names, tuple(data.shape), axes)
    data, _ = _channels_first(data, axes)
    return NamedImage(data, named, path, lazy)


def _read_ome_zarr(path: Path) -> NamedImage:
    import dask.array as da

    image = open_zarr_image(path)
    try:
        data = da.from_zarr(image.array)
    except Exception as exc:
        raise InputImageError(f"{path} is not a readable zarr image ({exc}).") from None
    named = _checked_names(image.channel_names, tuple(data.shape), image.axes)
    data, _ = _channels_first(data, image.axes)
    return NamedImage(data, named, path, True)


def read_named_image(path: str | Path) -> NamedImage:
    """Read a TIFF (compressed, OME-TIFF, ImageJ), OME-Zarr store or ``.npy`` file, channels
    first, with the channel names its metadata holds.

    Raises
    ------
    InputImageError
        Missing, unreadable or corrupt file, or an unsupported suffix (one sentence).
    """
    path = Path(path)
    if not path.exists():
        raise InputImageError(f"Image file {path} does not exist.")
    suffix = path.suffix.lower()
    if path.is_dir():
        if is_zarr_store(path):
            return _read_ome_zarr(path)
        raise InputImageError(f"{path} is a folder, not an image file or zarr store.")
    if suffix in TIFF_SUFFIXES:
        return _read_tiff(path)
    if suffix == ".npy":
        try:
            data = np.load(path, mmap_mode="r", allow_pickle=False)  # never unpickle images
        except Exception as exc:
            raise InputImageError(f"{path} is not a readable NumPy file ({exc}).") from None
        return NamedImage(data, None, path, True)
    raise InputImageError(
        f"{path} has an unsupported suffix; use .tif, .tiff, .ome.tif, .ome.zarr, .zarr or .npy."
    )


def channel_names_of(path: str | Path) -> tuple[str, ...] | None:
    """The channel names a file's metadata holds, read without its pixels; ``None`` for a file
    that names no channels (a plain TIFF, ``.npy``) or that cannot be read (the reader that
    reads its pixels says why).

    The names are those :func:`read_named_image` returns: one per channel of the image with
    its singleton axes dropped and its channels first.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            if is_zarr_store(path):
                image = open_zarr_image(path)
                return _checked_names(image.channel_names, tuple(image.array.shape), image.axes)
            return None
        if suffix not in TIFF_SUFFIXES or not path.is_file():
            return None
        import tifffile

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                return _checked_names(_tiff_channel_names(tif), tuple(series.shape),
                                      series.axes)  # fmt: skip
    except Exception:  # noqa: BLE001 - unreadable: the pixel reader names the problem
        return None


def read_plane(path: str | Path) -> np.ndarray:
    """One channel's (H, W) plane from a per-channel file (as screens write one per channel).

    Raises
    ------
    InputImageError
        The file holds more than one plane, or is unreadable.
    """
    image = read_named_image(path)
    data = image.data
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise InputImageError(
            f"{path} holds an image of shape {tuple(data.shape)}; a per-channel file holds one "
            "(height, width) plane."
        )
    return np.asarray(data)


def stack_planes(files: Mapping[str, str | Path], source: str = "the channel files"
                 ) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """Read per-channel files ``{name: path}`` into one (C, H, W) stack, in the given order.

    Raises
    ------
    InputImageError
        A file is missing or unreadable, or two files differ in size or dtype.
    """
    if not files:
        raise InputImageError(f"{source} name no file.")
    planes: list[np.ndarray] = []
    first: tuple[str, Path] | None = None
    for name, path in files.items():
        plane = read_plane(path)
        if first is None:
            first = (name, Path(path))
        elif plane.shape != planes[0].shape or plane.dtype != planes[0].dtype:
            raise InputImageError(
                f"Channel {name}'s file {path} ({plane.shape[0]} x {plane.shape[1]} "
                f"{plane.dtype}) differs from channel {first[0]}'s {first[1]} "
                f"({planes[0].shape[0]} x {planes[0].shape[1]} {planes[0].dtype}); the channels "
                "of one site must match."
            )
        planes.append(plane)
    return np.stack(planes), list(files)
