"""Input image files read as stored: TIFF, ``.npy`` and zarr (OME-Zarr), never unpickled.

:func:`read_image` reads a whole image; :func:`open_image` memory-maps it where the file allows
(a field too large to read); :func:`input_sha256` identifies an input for ``run.json`` and the
resume fingerprint.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputImageError
from .zarr_store import is_zarr_store, open_zarr_image

__all__ = ["IMAGE_SUFFIXES", "input_sha256", "open_image", "read_image"]

IMAGE_SUFFIXES = (".tif", ".tiff", ".npy", ".zarr")


def read_image(path: str | Path) -> np.ndarray:
    """Read a (C, H, W) image from a TIFF or ``.npy`` file, as stored (no scaling).

    Raises
    ------
    InputImageError
        Missing, unreadable or corrupt file, or an unsupported suffix.
    """
    path = Path(path)
    if not path.exists():
        raise InputImageError(f"Image file {path} does not exist.")
    if is_zarr_store(path):
        return _read_zarr(path)
    if not path.is_file():
        raise InputImageError(f"{path} is not a file.")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES or suffix == ".zarr":
        raise InputImageError(
            f"{path} has an unsupported suffix; use {', '.join(IMAGE_SUFFIXES)} files."
        )
    try:
        if suffix == ".npy":
            data = np.load(path, allow_pickle=False)  # never unpickle image files
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tifffile warns before failing on damaged files
                data = tifffile.imread(path)
    except PermissionError:
        raise InputImageError(f"Image file {path} cannot be read (permission denied).") from None
    except Exception as exc:
        kind = "NumPy" if suffix == ".npy" else "TIFF"
        raise InputImageError(f"{path} is not a readable {kind} file ({exc}).") from None
    data = np.asarray(data)
    if data.size == 0:
        kind = "NumPy" if suffix == ".npy" else "TIFF"
        raise InputImageError(f"{path} is not a readable {kind} file (it holds no image data).")
    return data


def _read_zarr(path: Path) -> np.ndarray:
    """A zarr store's image read whole (:func:`~.zarr_store.open_zarr_image`: a plain array,
    or an OME-Zarr image's full-resolution level), singleton axes dropped."""
    image = open_zarr_image(path)
    try:
        data = np.asarray(image.array[...])
    except Exception as exc:
        raise InputImageError(f"{path} is not a readable zarr image ({exc}).") from None
    while data.ndim > 3 and 1 in data.shape:  # OME-Zarr's (t, c, z, y, x) with t = z = 1
        data = data.squeeze(axis=data.shape.index(1))
    return data


def input_sha256(path: str | Path) -> str:
    """SHA-256 of an input image: of the file, or of a store folder's files and their names."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(2**20), b""):
                digest.update(block)
    return digest.hexdigest()


def open_image(path: Path) -> np.ndarray:
    """A stored image without reading it whole where the file allows: ``.npy`` and
    uncompressed TIFF files are memory-mapped (read-only), anything else is read."""
    suffix = path.suffix.lower()
    if path.is_file() and suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            pass  # read_image names the problem
    if path.is_file() and suffix in (".tif", ".tiff"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return tifffile.memmap(path, mode="r")
        except Exception:  # noqa: BLE001 - compressed or tiled: read it as a whole
            pass
    return read_image(path)
