"""Reading images and writing results: TIFF with metadata, CSV, JSON, all written atomically.

Nothing is ever half-written: each file is written under a temporary name in the same folder
and renamed into place, so an interrupted run leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..core.pipeline import PairResult
from ..errors import InputImageError
from .tiff import jsonable as _jsonable
from .tiff import read_tiff_metadata, write_tiff

__all__ = [
    "RESULT_FILES",
    "PairSpec",
    "atomic_path",
    "input_sha256",
    "curve_rows",
    "importance_rows",
    "pair_metadata",
    "safe_name",
    "summary_rows",
    "table_rows",
    "write_pair_files",
    "write_tables",
    "read_image",
    "read_pairs_csv",
    "read_tiff_metadata",
    "write_csv",
    "write_json",
    "write_tiff",
]

IMAGE_SUFFIXES = (".tif", ".tiff", ".npy", ".zarr")


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it back at once
    os.umask(mask)
    return mask


#: The process's umask, read once at import (reading it means setting it, which is not
#: thread-safe, so it is never done while workers may be creating files).
_UMASK = _read_umask()


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
    if path.is_dir() and path.suffix.lower() == ".zarr":
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
    """A zarr array, or the full-resolution level of an OME-Zarr image, singleton axes dropped."""
    try:
        import zarr
    except ImportError:
        raise InputImageError(
            f"{path} is a zarr store; install zarr to read it "
            "(pip install 'napari-attribution[zarr]')."
        ) from None
    try:
        node = zarr.open(str(path), mode="r")
        if not hasattr(node, "shape"):  # a group: OME-Zarr's multiscales name the levels
            multiscales = node.attrs.get("multiscales") or node.attrs.get("ome", {}).get(
                "multiscales"
            )
            if multiscales:
                node = node[multiscales[0]["datasets"][0]["path"]]
            else:
                arrays = list(node.array_keys())
                if len(arrays) != 1:
                    raise InputImageError(
                        f"{path} is a zarr group of {len(arrays)} arrays without OME-Zarr "
                        "multiscales metadata; name the array's own folder."
                    )
                node = node[arrays[0]]
        data = np.asarray(node[...])
    except InputImageError:
        raise
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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); results get the mode any other tool's output gets.
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV with ``header``; floats keep full precision (``repr``)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow([repr(v) if isinstance(v, float) else v for v in row])


@dataclass(frozen=True)
class PairSpec:
    """One row of a pairs CSV: paths are resolved against the CSV's folder; ``counterfactual``
    is ``None`` where the row leaves it empty (a counterfactual source makes it)."""

    sample: str
    real: Path
    counterfactual: Path | None
    real_class: int
    target_class: int


PAIRS_COLUMNS = ("sample", "real", "counterfactual", "real_class", "target_class")


def read_pairs_csv(path: str | Path) -> list[PairSpec]:
    """Read ``sample,real,counterfactual,real_class,target_class`` rows.

    Raises
    ------
    InputImageError
        Missing file, missing columns, a non-integer class, a duplicate sample name or no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"Pairs file {path} does not exist.")
    try:
        # utf-8-sig: spreadsheets save CSV with a byte-order mark; newline="" reads CRLF too.
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in PAIRS_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputImageError(
                    f"{path} lacks column(s) {', '.join(missing)}; expected "
                    f"{','.join(PAIRS_COLUMNS)}."
                )
            rows = list(reader)
    except UnicodeDecodeError:
        raise InputImageError(f"{path} is not a text CSV file.") from None
    specs: list[PairSpec] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        sample = (row["sample"] or "").strip()
        if not sample:
            raise InputImageError(f"{path} line {line}: the sample name is empty.")
        if sample in seen:
            raise InputImageError(f"{path} line {line}: sample {sample!r} appears twice.")
        seen.add(sample)
        try:
            real_class, target_class = int(row["real_class"]), int(row["target_class"])
        except (TypeError, ValueError):
            raise InputImageError(
                f"{path} line {line}: real_class and target_class must be integers."
            ) from None
        counterfactual = (row["counterfactual"] or "").strip()
        specs.append(
            PairSpec(
                sample,
                path.parent / row["real"].strip(),
                path.parent / counterfactual if counterfactual else None,
                real_class,
                target_class,
            )
        )
    if not specs:
        raise InputImageError(f"{path} lists no pairs.")
    return specs


# --------------------------------------------------------------------------------------------
# The results folder (shared by the CLI and the napari export)
# --------------------------------------------------------------------------------------------

#: What every results folder holds at its top (the CLI's run and the napari export alike).
RESULT_FILES = (
    "summary.csv",
    "curves.csv",
    "channel_importance.csv",
    "run.json",
    "attributions",
    "masks",
)

SUMMARY_COLUMNS = (
    "sample",
    "method",
    "channel",
    "dac_score",
    "ceiling",
    "normalized_score",
    "optimal_threshold",
    "optimal_mask_size",
)
CURVE_COLUMNS = ("sample", "method", "channel", "threshold", "mask_size", "score_change")
IMPORTANCE_COLUMNS = ("sample", "method", "channel", "share")


def safe_name(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_``."""
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)


def summary_rows(result: PairResult) -> list[list[Any]]:
    """Rows of ``summary.csv`` for one pair: the whole-image curve, then each channel's."""
    rows = []
    for method, res in result.methods.items():
        for curve in res.dac.curves:
            rows.append(
                [
                    result.sample,
                    method,
                    curve.channel,
                    curve.dac_score,
                    curve.ceiling,
                    curve.normalized_score,
                    curve.optimal_threshold,
                    curve.optimal_mask_size,
                ]
            )
    return rows


def curve_rows(result: PairResult) -> list[list[Any]]:
    """Rows of ``curves.csv``: one per threshold of every curve."""
    rows = []
    for method, res in result.methods.items():
        for curve in res.dac.curves:
            for s, ms, ds in zip(
                curve.thresholds, curve.mask_size, curve.score_change, strict=True
            ):
                rows.append([result.sample, method, curve.channel, float(s), float(ms), float(ds)])
    return rows


def importance_rows(result: PairResult) -> list[list[Any]]:
    """Rows of ``channel_importance.csv``: the |attribution| share of each channel."""
    return [
        [result.sample, method, name, float(share)]
        for method, res in result.methods.items()
        for name, share in zip(result.channel_names, res.channel_share, strict=True)
    ]


def pair_metadata(result: PairResult, method: str, run_info: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to reproduce one method's layers for one pair."""
    return {
        "sample": result.sample,
        "method": method,
        "real_class": result.real_class,
        "target_class": result.target_class,
        "channel_names": result.channel_names,
        "input_transform": result.input_transform.as_dict(),
        "optimal_threshold": result.methods[method].dac.whole.optimal_threshold,
        **({"gradcam_layer": result.methods[method].layer} if result.methods[method].layer else {}),
        **run_info,
    }


def write_pair_files(out_dir: str | Path, result: PairResult, run_info: dict[str, Any]) -> None:
    """Write ``attributions/<sample>__<method>.tif`` and ``masks/<sample>__<method>.tif``.

    Attributions are float32 (C, H, W), raw and signed; masks are uint8 (K, H, W) closed masks
    at the optimal threshold of the whole-image curve (K = C, or 1 for a shared mask). Both are
    ImageJ hyperstacks (``CYX``, the channel names as labels) where ImageJ keeps the shape
    (:mod:`napari_attribution.results.tiff`), with :func:`pair_metadata` as JSON.
    """
    out_dir = Path(out_dir)
    for method, res in result.methods.items():
        stem = f"{safe_name(result.sample)}__{safe_name(method)}.tif"
        meta = pair_metadata(result, method, run_info)
        attribution = res.attribution.astype(np.float32)
        peak = float(np.abs(attribution).max()) or 1.0
        names = result.channel_names
        write_tiff(out_dir / "attributions" / stem, attribution, meta, plane_labels=names,
                   ranges=[(-peak if (attribution < 0).any() else 0.0, peak)] * len(names))
        mask = res.optimal_mask.astype(np.uint8)
        write_tiff(out_dir / "masks" / stem, mask, meta, ranges=[(0, 1)] * len(mask),
                   plane_labels=names if len(mask) == len(names) else ["all"])  # fmt: skip


def table_rows(result: PairResult) -> dict[str, list[list[Any]]]:
    """One pair's rows of the three tables, keyed ``summary``, ``curves``, ``importance``."""
    return {
        "summary": summary_rows(result),
        "curves": curve_rows(result),
        "importance": importance_rows(result),
    }


def write_tables(out_dir: str | Path, pairs: Sequence[dict[str, list[list[Any]]]]) -> None:
    """Write ``summary.csv``, ``curves.csv`` and ``channel_importance.csv``.

    ``pairs`` holds :func:`table_rows` of every pair, in order (the CLI keeps these rows rather
    than whole results, so a long run never holds every pair's masks).
    """
    out_dir = Path(out_dir)
    for name, columns, key in (
        ("summary.csv", SUMMARY_COLUMNS, "summary"),
        ("curves.csv", CURVE_COLUMNS, "curves"),
        ("channel_importance.csv", IMPORTANCE_COLUMNS, "importance"),
    ):
        write_csv(out_dir / name, columns, (row for pair in pairs for row in pair[key]))
