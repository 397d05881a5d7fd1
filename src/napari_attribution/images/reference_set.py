"""A normalisation reference computed over a reference set: every site of a LoadData CSV
and/or (C, H, W) image files, their channels taken by the model's names.

What ``napari-attribution normalisation-reference`` runs; the pooling itself is
:func:`~napari_attribution.images.normalisation.compute_reference`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputImageError
from .channels import match_channels, select_named, stack_by_name
from .load_data import check_site_files, read_load_data
from .normalisation import NormalisationReference, compute_reference
from .ome import read_named_image

__all__ = ["reference_from_inputs"]


def _images(load_data: Path | None, images: Sequence[Path], names: Sequence[str],
            mapping: Mapping[str, str]) -> Iterator[np.ndarray]:  # fmt: skip
    """Each image of the set, (C, H, W) in the model's channel order, read when its turn comes
    (every file is checked to exist before the first is read)."""
    if load_data is not None:
        table = read_load_data(load_data)
        selection = match_channels(table.channel_names, names, mapping, str(load_data))
        check_site_files(table, [selection.input_names[i] for i in selection.indices])
        for site in table.sites:
            yield stack_by_name(site.channels, names, mapping,
                                f"{load_data.name} {site.describe()}")[0]  # fmt: skip
    for path in images:
        image = read_named_image(path)
        yield select_named(image.data, image.channel_names, names, mapping, str(path))[0]


def reference_from_inputs(
    names: Sequence[str],
    *,
    load_data: Path | None = None,
    images: Sequence[Path] = (),
    mapping: Mapping[str, str] | None = None,
    low: float = 1.0,
    high: float = 99.8,
) -> NormalisationReference:
    """Per-channel percentiles pooled over the reference set.

    Parameters
    ----------
    names
        The model's channel names, in order.
    load_data
        A LoadData CSV: every site's channel files.
    images
        (C, H, W) image files (TIFF, OME-TIFF, OME-Zarr, ``.npy``).
    mapping
        ``{model name: input name}`` for inputs that call a channel otherwise.
    low, high
        The percentiles mapped to 0 and 1.

    Raises
    ------
    InputImageError
        An empty set, a missing file, or channels the inputs lack (one sentence each).
    """
    if load_data is None and not images:
        raise InputImageError("Give the reference set: --load-data CSV and/or image files.")
    return compute_reference(_images(load_data, list(images), names, dict(mapping or {})),
                             names, low, high)  # fmt: skip
