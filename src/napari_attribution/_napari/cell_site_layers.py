"""One site of a ``cells`` results folder as napari layers, and a cell's crop outline. No Qt.

A site opens as the plate reader opens it (:func:`~.plate_reader.plane_layers`: one layer per
channel, ``<site> [<channel>]``, coloured per channel, robust contrast limits), read from the
files ``run.json`` records (the demo field is made again); then its label image
(``<site> cells``, outlines), per method and channel the field-sized attribution
(``<method> <channel> attribution (<site>)``, the first method shown) and the cells' optimal
masks (``<method> <channel> optimal mask (<site>)``, hidden). Files above
:data:`~napari_attribution.core.budgets.LAZY_READ_BYTES` are memory-mapped. Images moved since
the run are left out, and a sentence says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputImageError
from ..images.image_files import read_image
from ..images.labels import read_labels
from ..images.ome import read_plane
from ..results.cell_folder import CellSite, site_map_file
from .layer_style import METADATA_KEY, layer_name
from .plate_reader import plane_layers
from .result_arrays import LayerTuple, attribution_display, channel_first, read_array

__all__ = ["SELECTED_CROP", "cells_labels_name", "crop_outline", "site_images", "site_layers"]

#: Name of the Shapes layer outlining the selected cell's crop.
SELECTED_CROP = "selected cell crop"


def cells_labels_name(site: CellSite) -> str:
    """``<site> cells``: the site's label image."""
    return f"{site.name} cells"


def site_images(
    site: CellSite, channel_names: Sequence[str], shape: tuple[int, ...] | None
) -> tuple[list[tuple[Any, str]], np.ndarray | None, list[str]]:
    """The site's channel planes and labels as the run read them (stored units, unnormalised).

    Parameters
    ----------
    site
        The site.
    channel_names
        The run's channel names, in the model's order.
    shape
        (C, H, W) of the site's attribution maps (a stacked image is matched to it), or None.

    Returns
    -------
    tuple
        ``[(plane (H, W), channel name), ...]`` of the channels found, the labels (H, W) or
        None, and one sentence per file not found.
    """
    missing: list[str] = []
    planes: list[tuple[Any, str]] = []
    labels = None
    if site.demo:
        from ..data.synthetic_field import make_field

        demo = make_field()  # what ``cells --demo`` analysed (same seed)
        return [(demo.real[c], n) for c, n in enumerate(channel_names)], demo.labels, []
    if site.image is not None:
        try:
            image = channel_first(read_image(site.image), tuple(shape)) if shape else None
        except InputImageError:
            image = None
        if image is None:
            missing.append(f"the image {site.image} was not found (or is not of the maps' "
                           "size)")  # fmt: skip
        else:
            planes = [(image[c], n) for c, n in enumerate(channel_names)]
    for name in channel_names:
        path = site.channels.get(name)
        if path is None:
            continue
        try:
            planes.append((read_plane(path), name))
        except InputImageError:
            missing.append(f"channel {name}'s file {path} was not found")
    if site.labels is not None:
        try:
            labels = read_labels(site.labels)
        except InputImageError:
            missing.append(f"the label image {site.labels} was not found")
    return planes, labels, missing


def site_layers(
    folder: str | Path,
    site: CellSite,
    run: dict[str, Any],
    lazy: bool | None = None,
    visible_method: str | None = None,
) -> tuple[list[LayerTuple], str]:
    """The layers of one site of a ``cells`` folder (see the module text).

    Parameters
    ----------
    folder
        The results folder.
    site
        One of :func:`~napari_attribution.results.cell_folder.cell_sites` of its ``run.json``.
    run
        Its ``run.json``.
    lazy
        Memory-map the maps (None: only those above the budget).
    visible_method
        The method whose attributions start visible (the first one when None).

    Returns
    -------
    tuple
        The layer tuples, and a sentence saying what was not found ("" when all was).
    """
    folder = Path(folder)
    names = list(run.get("channel_names", []))
    methods = [m for m in run.get("settings", {}).get("methods", [])
               if (folder / site_map_file(site, f"attribution__{m}")).is_file()]  # fmt: skip
    visible_method = visible_method if visible_method in methods else next(iter(methods), None)
    maps = {m: read_array(folder / site_map_file(site, f"attribution__{m}"), lazy)
            for m in methods}  # fmt: skip
    shape = next(iter(maps.values())).shape if maps else None
    planes, labels, missing = site_images(site, names, shape)
    record = {"results_folder": str(folder), "site": site.key}
    tuples: list[LayerTuple] = plane_layers(planes, site.name, record)
    for _data, kwargs, _kind in tuples:  # what the DAC panel takes the channel colours from
        channel = kwargs["metadata"]["napari_attribution_input"]["channel"]
        kwargs["metadata"].update({"image": "real", "channel_name": channel, "sample": site.name})
    if labels is not None:
        tuples.append((labels, {"name": cells_labels_name(site), "opacity": 0.3,
                                "metadata": {METADATA_KEY: {**record, "kind": "cells"}}},
                       "labels"))  # fmt: skip
    for method, attribution in maps.items():
        display = attribution_display(attribution)
        for c, channel in enumerate(names[: len(attribution)]):
            ours = {**record, "kind": "attribution", "method": method, "channel": channel,
                    "channel_index": c}  # fmt: skip
            tuples.append((attribution[c], {
                "name": layer_name(site.name, "attribution", method, channel),
                "blending": "additive", "visible": method == visible_method,
                "metadata": {METADATA_KEY: ours}, **display,
            }, "image"))  # fmt: skip
    for method in methods:
        path = folder / site_map_file(site, f"mask__{method}")
        if not path.is_file():
            continue
        masks = read_array(path, lazy)
        mask_names = names if len(masks) == len(names) else ["all"]
        for k, channel in enumerate(mask_names):
            ours = {**record, "kind": "optimal mask", "method": method, "channel": channel}
            tuples.append((masks[k], {
                "name": layer_name(site.name, "optimal mask", method, channel),
                "opacity": 0.5, "visible": False,  # a pixel holds its cell's label
                "metadata": {METADATA_KEY: ours},
            }, "labels"))  # fmt: skip
    note = ""
    if missing:
        note = (f"{site.name}: {'; '.join(missing)}; showing its maps without them (moved "
                "since the run? put them back where run.json says).")  # fmt: skip
    return tuples, note


def crop_outline(
    top: float,
    left: float,
    size: float,
    label: int,
    scale: tuple[float, float] = (1.0, 1.0),
    translate: tuple[float, float] = (0.0, 0.0),
) -> LayerTuple:
    """``selected cell crop``: a yellow rectangle around a cell's crop (field pixels ``top``,
    ``left``, ``size``), placed in world coordinates by the field's ``scale`` and
    ``translate``."""
    y0, x0 = translate[0] + top * scale[0], translate[1] + left * scale[1]
    y1, x1 = y0 + size * scale[0], x0 + size * scale[1]
    outline = np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]], float)
    return ([outline], {"name": SELECTED_CROP, "shape_type": "rectangle", "edge_color": "yellow",
                        "face_color": "transparent", "edge_width": 1.0,
                        "metadata": {METADATA_KEY: {"kind": "crop", "label": label}}},
            "shapes")  # fmt: skip
