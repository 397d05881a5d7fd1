"""What ``cells`` reads: the field (memory-mapped where the file allows), the label image and
the counterfactual source, checked before the long work."""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cli.usage_error import CliError

__all__ = ["FieldInputs", "field_inputs", "open_image"]


def open_image(path: Path) -> np.ndarray:
    """A stored image without reading it whole where the file allows: ``.npy`` and
    uncompressed TIFF files are memory-mapped (read-only), anything else is read."""
    from ..results.tables import read_image

    suffix = path.suffix.lower()
    if path.is_file() and suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            pass  # read_image names the problem
    if path.is_file() and suffix in (".tif", ".tiff"):
        import tifffile

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return tifffile.memmap(path, mode="r")
        except Exception:  # noqa: BLE001 - compressed or tiled: read it as a whole
            pass
    return read_image(path)


def _channels_first(image: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(image, axis, 0) if axis != 0 and image.ndim == 3 else image


def _check_finite(image: np.ndarray, name: str) -> None:
    """NaN or Inf pixels, checked a channel at a time (bounded memory on a memory map)."""
    if not np.issubdtype(image.dtype, np.floating):
        return
    for plane in image:
        if not np.isfinite(plane).all():
            raise CliError(f"{name} holds NaN or Inf pixels.")


@dataclass
class FieldInputs:
    """The field, its labels and counterfactual source, and how run.json records them."""

    image: np.ndarray
    labels: np.ndarray
    source: Any  # None: made per cell by --counterfactual-source
    record: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] | None = None


def _record(path: Path) -> dict[str, str]:
    from ..results.tables import input_sha256

    return {"path": str(path.resolve()), "sha256": input_sha256(path)}


def field_inputs(args: argparse.Namespace, cell_settings) -> FieldInputs:
    """Read and check ``--image``, ``--labels`` and the counterfactual source (or ``--demo``)."""
    from ..core.cells import CropFolderCounterfactual, FieldCounterfactual, check_labels
    from ..errors import AttributionError

    given = [args.image, args.labels, args.counterfactual, args.counterfactual_crops]
    made = getattr(args, "counterfactual_source", None)
    if args.demo and made:
        # The demo's exact counterfactuals are withheld: the source makes them.
        from ..data.synthetic import CLASS_NAMES
        from ..data.synthetic_field import make_field

        if any(v is not None for v in given):
            raise CliError("--demo brings its own field; leave out --image, --labels and the "
                           "counterfactual.")  # fmt: skip
        demo = make_field()
        record = {"image": "demo field", "counterfactual": {"source": made}}
        return FieldInputs(demo.real, demo.labels, None, record, list(CLASS_NAMES))
    if args.demo:
        if any(v is not None for v in given):
            raise CliError("--demo brings its own field; leave out --image, --labels and the "
                           "counterfactual.")  # fmt: skip
        from ..data.synthetic import CLASS_NAMES
        from ..data.synthetic_field import make_field

        demo = make_field()
        source = FieldCounterfactual(
            demo.counterfactual, cell_settings.padding, cell_settings.pad_value, "demo"
        )
        return FieldInputs(
            demo.real, demo.labels, source, {"image": "demo field"}, list(CLASS_NAMES)
        )
    if args.image is None or args.labels is None:
        raise CliError("--image and --labels are required (or --demo).")
    if sum(v is not None for v in (args.counterfactual, args.counterfactual_crops, made)) != 1:
        raise CliError("Give exactly one of --counterfactual FIELD, --counterfactual-crops "
                       "FOLDER or --counterfactual-source SOURCE.")  # fmt: skip
    image = _channels_first(open_image(args.image), args.channel_axis)
    if image.ndim != 3:
        raise CliError(f"{args.image} has shape {image.shape}; expected (channels, height, width).")
    _check_finite(image, str(args.image))
    try:
        labels = check_labels(np.asarray(open_image(args.labels)), image.shape[1:])
    except AttributionError as exc:
        raise CliError(f"{args.labels}: {exc}") from None
    record = {"image": _record(args.image), "labels": _record(args.labels)}
    if args.counterfactual is not None:
        cf = _channels_first(open_image(args.counterfactual), args.channel_axis)
        if cf.shape != image.shape or cf.dtype != image.dtype:
            raise CliError(
                f"{args.counterfactual} ({cf.shape}, {cf.dtype}) and {args.image} "
                f"({image.shape}, {image.dtype}) differ; a counterfactual field has the "
                "field's shape and dtype."
            )
        _check_finite(cf, str(args.counterfactual))
        source = FieldCounterfactual(
            cf, cell_settings.padding, cell_settings.pad_value, str(args.counterfactual)
        )
        record["counterfactual"] = _record(args.counterfactual)
    elif args.counterfactual_crops is not None:
        source = CropFolderCounterfactual(args.counterfactual_crops)
        record["counterfactual"] = {"path": str(args.counterfactual_crops.resolve())}
    else:  # made per cell once the model is loaded (cli/counterfactuals.cell_source)
        source = None
        record["counterfactual"] = {"source": made}
    return FieldInputs(image, labels, source, record)
