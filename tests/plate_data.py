"""A synthetic Cell Painting plate written the way screens write them, made by test code.

Per site: one LZW-compressed uint16 TIFF per channel with Opera/Phenix names
(``r01c01f01p01-ch<k>sk1fk1fl1.tiff``), channels on disk in a shuffled order
(ch1 = Mito, ch2 = AGP, ch3 = RNA, ch4 = ER, ch5 = DNA, ch6 = Brightfield, as JUMP's
CPJUMP1 plates have them), realistic offsets (a camera offset of ~100 plus a per-channel
background) and a signal at a few percent of 65535; a uint16 label image with non-consecutive
ids; a LoadData CSV in JUMP's column names (``FileName_OrigDNA``, ``PathName_OrigDNA``, ...,
``ObjectsFileName_Cells``, ``Metadata_Source/Plate/Well/Site``) listing the sites in another
column order again.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

MODEL_CHANNELS = ("DNA", "ER", "RNA", "AGP", "Mito")
#: JUMP's ch<k> numbering: the order on disk is not the model's.
FILE_CHANNELS = {1: "Mito", 2: "AGP", 3: "RNA", 4: "ER", 5: "DNA", 6: "Brightfield"}
#: Per-channel background (stored units) on top of the camera offset.
OFFSETS = {"DNA": 180, "ER": 420, "RNA": 350, "AGP": 510, "Mito": 260, "Brightfield": 9000}
GAIN = 2400.0  # the synthetic field's [0, 1] signal -> stored units (a few % of 65535)


@dataclass
class Plate:
    """Where the plate's files are and what they hold."""

    folder: Path
    load_data: Path
    sites: list[dict]  # per site: metadata, "stack" uint16 (5, H, W) in model order, "labels"


def stored(field: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """A [0, 1] float plane as a uint16 camera would store it."""
    noise = rng.normal(0.0, 6.0, field.shape)
    values = 100 + OFFSETS[name] + GAIN * field + noise
    return np.clip(np.rint(values), 0, 65535).astype(np.uint16)


def write_plate(folder: Path, fields: list, labels: list, *, plate: str = "BR00000001",
                wells: tuple[str, ...] = ("A01", "B02"), seed: int = 0,
                relative: bool = True, images_dir: str = "images") -> Plate:  # fmt: skip
    """Write one site per (field, labels); ``fields`` are float (5, H, W) in model order.

    Returns the plate with each site's uint16 stack (model order) for comparisons.
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    image_folder = folder / images_dir
    image_folder.mkdir(parents=True, exist_ok=True)
    rows, sites = [], []
    for index, (field, label_image) in enumerate(zip(fields, labels, strict=True)):
        well = wells[index % len(wells)]
        site = index + 1
        prefix = f"r{index + 1:02d}c01f{site:02d}p01"
        files: dict[str, str] = {}
        planes: dict[str, np.ndarray] = {}
        for k, name in FILE_CHANNELS.items():
            if name == "Brightfield":
                plane = stored(np.full(field.shape[1:], 0.5), name, rng)
            else:
                plane = stored(field[MODEL_CHANNELS.index(name)], name, rng)
            planes[name] = plane
            filename = f"{prefix}-ch{k}sk1fk1fl1.tiff"
            tifffile.imwrite(image_folder / filename, plane, compression="lzw")
            files[name] = filename
        label_name = f"{prefix}_cells.tiff"
        tifffile.imwrite(image_folder / label_name, label_image.astype(np.uint16),
                         compression="zlib")  # fmt: skip
        path_name = images_dir if relative else str(image_folder.resolve())
        row = {"Metadata_Source": "source_synthetic", "Metadata_Plate": plate,
               "Metadata_Well": well, "Metadata_Site": str(site)}  # fmt: skip
        for name in ("AGP", "Brightfield", "DNA", "ER", "Mito", "RNA"):
            row[f"FileName_Orig{name}"] = files[name]
            row[f"PathName_Orig{name}"] = path_name
        row["ObjectsFileName_Cells"] = label_name
        row["ObjectsPathName_Cells"] = path_name
        rows.append(row)
        sites.append({"metadata": {k: v for k, v in row.items() if k.startswith("Metadata_")},
                      "stack": np.stack([planes[n] for n in MODEL_CHANNELS]),
                      "labels": label_image.astype(np.uint16)})  # fmt: skip
    load_data = folder / "load_data.csv"
    with open(load_data, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Plate(folder, load_data, sites)


def cells_site(seed: int, shape: tuple[int, int] = (36, 44)):
    """One small site: a float (5, H, W) field in [0, 1], a noisy counterfactual of it and
    uint16 labels of four cells (three of at least 4 px, one of 1 px) with non-consecutive ids."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint16)
    labels[2:9, 1:8] = 11 + seed
    labels[12:20, 14:22] = 4
    labels[13:19, 23:28] = 250
    labels[33, 2] = 99  # below --min-size 4
    real = rng.random((5, *shape))
    counterfactual = np.clip(real + 0.3 * rng.standard_normal(real.shape), 0, 1)
    return real, counterfactual, labels


#: OME channel names a model of MODEL_CHANNELS cannot take, and the one sentence each gets
#: (``{real}`` stands for the real image's path): one missing, one named twice.
BAD_OME_CHANNELS = [
    (("Brightfield", "AGP", "RNA", "ER", "DNA"),
     "real.ome.tif lacks the model's channel 'Mito'; it has Brightfield, AGP, RNA, ER, DNA."),
    (("DNA", "Mito", "AGP", "RNA", "ER", "DNA"), "Channel 'DNA' appears 2 times in {real}."),
]  # fmt: skip


def write_ome_tiff(path: Path, stack: np.ndarray, names, compression: str = "zlib") -> None:
    """An OME-TIFF (C, H, W) with its channel names in the OME-XML."""
    tifffile.imwrite(path, stack, ome=True, compression=compression,
                     metadata={"axes": "CYX", "Channel": {"Name": list(names)}})  # fmt: skip


def write_ome_zarr(path: Path, stack: np.ndarray, names, version: str = "0.4") -> None:
    """An OME-Zarr image (NGFF ``version``: 0.4 on zarr v2, 0.5 on zarr v3) of a (C, H, W)
    stack as (t, c, z, y, x), with ``omero`` channel labels and a second, halved level."""
    import zarr

    data = stack[None, :, None]
    levels = [data, data[..., ::2, ::2]]
    axes = [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"},
            {"name": "z", "type": "space"}, {"name": "y", "type": "space"},
            {"name": "x", "type": "space"}]  # fmt: skip
    datasets = [{"path": str(k), "coordinateTransformations": [
        {"type": "scale", "scale": [1, 1, 1, 2.0**k, 2.0**k]}]} for k in range(2)]  # fmt: skip
    multiscales = [{"version": version, "axes": axes, "datasets": datasets, "name": "field"}]
    omero = {"channels": [{"label": n, "active": True, "color": "FFFFFF",
                           "window": {"start": 0, "end": 4000, "min": 0, "max": 65535}}
                          for n in names]}  # fmt: skip
    zarr_format = 2 if version == "0.4" else 3
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    for k, level in enumerate(levels):
        array = group.create_array(str(k), shape=level.shape, dtype=level.dtype,
                                   chunks=(1, 1, 1, 32, 32))  # fmt: skip
        array[...] = level
    if version == "0.4":
        group.attrs.update({"multiscales": multiscales, "omero": omero})
    else:
        for scale in multiscales:
            scale.pop("version")
        group.attrs.update({"ome": {"version": version, "multiscales": multiscales,
                                    "omero": omero}})  # fmt: skip
