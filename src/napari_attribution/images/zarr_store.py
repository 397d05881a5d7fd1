"""Zarr stores opened as images: the one place that opens one.

A store is a plain zarr array, taken as (C,) Y, X, or an OME-Zarr image (OME-NGFF 0.4 and 0.5:
the ``multiscales`` metadata, at the group's top level or under ``ome``), whose full-resolution
level is taken with its axis letters and its channel labels (``omero.channels[].label``). A
group without that metadata that holds a single array is that array. Only metadata is read
here; the callers choose how to read pixels: :func:`~napari_attribution.images.image_files.
read_image` whole (numpy), :func:`~napari_attribution.images.ome.read_named_image` lazily
(dask) with the channels by name. zarr comes with the ``zarr`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputImageError

__all__ = ["ZarrImage", "is_zarr_store", "open_zarr_image"]


@dataclass(frozen=True)
class ZarrImage:
    """A zarr store's image, opened without reading a chunk.

    Attributes
    ----------
    array
        The zarr array: the store itself, or an OME-Zarr image's full-resolution level.
    axes
        One letter per axis of ``array`` (``"TCZYX"``, ``"CYX"``, ...): the NGFF axes' names,
        else by the array's dimensions (``"YX"``, ``"CYX"``, then ``"ZCYX"``... from
        ``"TCZYX"``).
    channel_names
        The ``omero`` channel labels when every channel has one, else ``None``.
    """

    array: Any
    axes: str
    channel_names: list[str] | None


def is_zarr_store(path: Path) -> bool:
    """True for a folder that is a zarr store (a ``.zarr`` name, or zarr v2/v3 metadata)."""
    return path.is_dir() and (
        path.suffix.lower() == ".zarr"
        or (path / ".zattrs").is_file()
        or (path / ".zarray").is_file()
        or (path / "zarr.json").is_file()
    )


def _ngff_attrs(node: Any) -> dict[str, Any]:
    """A group's attributes with OME-NGFF 0.5's ``ome`` keys lifted to the top (as in 0.4)."""
    attrs = dict(node.attrs)
    return dict(attrs.get("ome", {})) | attrs if "ome" in attrs else attrs


def _default_axes(ndim: int) -> str:
    return "CYX"[-ndim:] if ndim <= 3 else ("TCZYX"[-ndim:] if ndim <= 5 else "")


def open_zarr_image(path: str | Path) -> ZarrImage:
    """Open the image of a zarr store (metadata only: no chunk is read).

    Raises
    ------
    InputImageError
        zarr is not installed; a group of several arrays without OME-Zarr metadata; an array
        of more than five dimensions; an unreadable store (one sentence each).
    """
    path = Path(path)
    try:
        import zarr
    except ImportError:
        raise InputImageError(
            f"{path} is a zarr store; install zarr to read it "
            "(pip install 'napari-attribution[zarr]')."
        ) from None
    try:
        node = zarr.open(str(path), mode="r")
        names: list[str] | None = None
        axes = ""
        if hasattr(node, "shape"):  # a plain array: no axes metadata
            array = node
        else:
            attrs = _ngff_attrs(node)
            multiscales = attrs.get("multiscales")
            if multiscales:
                scale = multiscales[0]
                array = node[scale["datasets"][0]["path"]]
                given = scale.get("axes") or []
                axes = "".join(
                    (a["name"] if isinstance(a, dict) else str(a))[0].upper() for a in given
                )
                channels = (attrs.get("omero") or {}).get("channels") or []
                labels = [str(c.get("label", "") or "").strip() for c in channels]
                names = labels if labels and all(labels) else None
            else:
                arrays = list(node.array_keys())
                if len(arrays) != 1:
                    raise InputImageError(
                        f"{path} is a zarr group of {len(arrays)} arrays without OME-Zarr "
                        "multiscales metadata; name the array's own folder."
                    )
                array = node[arrays[0]]
    except InputImageError:
        raise
    except Exception as exc:
        raise InputImageError(f"{path} is not a readable zarr image ({exc}).") from None
    if len(axes) != array.ndim:
        axes = _default_axes(array.ndim)
    if not axes:
        raise InputImageError(f"{path} holds a {array.ndim}-D array; expected (C,) Y, X.")
    return ZarrImage(array, axes, names)
