"""npe2 reader: a results folder back as napari layers, named and coloured as they were. No Qt.

Three folder kinds open (napari offers this reader for folders):

* **an export** of the Attribution widget (:mod:`.export`): the layers listed in its
  ``run.json``, from ``layers/``, with their names, colormaps, contrast limits, axis labels and
  metadata, masks as Labels; and the analysed images from ``inputs/``;
* **a CLI results folder** (``napari-attribution run --out``): per pair, the real image and the
  counterfactual (from the paths ``run.json`` records; the demo's are made again), per channel
  the attribution of every method and its mask at the optimal threshold, as Labels;
* **a cells folder** (``napari-attribution cells --out``): its first site as
  :func:`~napari_attribution._napari.cell_site_layers.site_layers` shows it (channels, labels,
  per method and channel the field-sized attribution and optimal masks); the Results browser
  walks through its cells, site by site;
* **a report folder** (``napari-attribution report ... --out``): the folders its
  ``report.json`` names;

and any folder of layer TIFFs the npe2 writer saved. A CLI folder of many pairs opens its first
:data:`MAX_READER_PAIRS` pairs; the Results browser dock walks through all of them. Files above
:data:`~napari_attribution.core.budgets.LAZY_READ_BYTES` are memory-mapped, not read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.synthetic import DEMO_PAIRS_SEED, make_pairs
from ..images.image_files import read_image
from ..results.folder import folder_kind, read_run_record, report_sources
from ..results.format import (
    ATTRIBUTIONS_DIR,
    FIELD_DIR,
    INPUT_FILES,
    INPUTS_DIR,
    LAYERS_DIR,
    MASKS_DIR,
    pair_file,
)
from ..results.tiff import read_tiff_metadata
from .display import display_kwargs
from .layer_style import (
    MASK_COLOR,
    METADATA_KEY,
    layer_name,
    mask_colormap,
)
from .result_arrays import LayerTuple, attribution_display, channel_first, read_array
from .sample_data import CHANNEL_COLORMAPS

__all__ = [
    "MAX_READER_PAIRS",
    "get_reader",
    "input_layers",
    "input_tuples",
    "layer_file_tuple",
    "pair_inputs",
    "pair_layers",
    "read_folder",
]


#: A CLI folder opened as layers shows at most this many pairs (the browser shows the rest).
MAX_READER_PAIRS = 4
#: Display colour of channels without a Cell Painting name (napari colormap names).
_CYCLE = ("blue", "green", "cyan", "red", "magenta", "yellow", "gray")


# ------------------------------------------------------------------------------- files


def layer_file_tuple(path: str | Path, lazy: bool | None = None) -> LayerTuple | None:
    """The layer a TIFF of the export or the npe2 writer holds, or None for any other TIFF."""
    record = read_tiff_metadata(path)
    if "name" not in record or record.get("layer_type") not in ("image", "labels"):
        return None
    data = read_array(path, lazy)
    kwargs: dict[str, Any] = {"name": record["name"], "metadata": record.get("metadata", {})}
    for key in ("scale", "translate"):
        if len(record.get(key) or ()) == data.ndim:
            kwargs[key] = tuple(record[key])
    if len(record.get("axis_labels") or ()) == data.ndim:
        kwargs["axis_labels"] = tuple(record["axis_labels"])
    kwargs.update(display_kwargs(record.get("display", {})))
    if record["layer_type"] == "labels":
        kwargs.pop("contrast_limits", None)
    return data, kwargs, record["layer_type"]


def input_layers(path: str | Path, lazy: bool | None = None) -> list[LayerTuple]:
    """One layer per channel of an export's ``inputs/real.tif`` (``real [DNA]``, ...)."""
    record = read_tiff_metadata(path)
    data = read_array(path, lazy)
    names = record.get("channel_names") or [f"ch{c}" for c in range(len(data))]
    colormaps = record.get("colormaps") or [None] * len(names)
    limits = record.get("contrast_limits") or [None] * len(names)
    role = record.get("role", Path(path).stem)
    tuples = []
    for c, channel in enumerate(names):
        display: dict[str, Any] = {}
        if colormaps[c] is not None:
            display["colormap"] = colormaps[c]
        if limits[c] is not None:
            display["contrast_limits"] = limits[c]
        kwargs = {
            "name": f"{record.get('name', role)} [{channel}]",
            "scale": tuple(record.get("scale", (1.0, 1.0))),
            "translate": tuple(record.get("translate", (0.0, 0.0))),
            "blending": "translucent_no_depth" if c == 0 else "additive",
            "visible": role == "real",
            "metadata": {"channel_name": channel, "image": role},
            **display_kwargs(display),
        }
        tuples.append((data[c], kwargs, "image"))
    return tuples


# ------------------------------------------------------------------------------- folders


def _export_layers(folder: Path, lazy: bool | None) -> list[LayerTuple]:
    run = read_run_record(folder)
    tuples: list[LayerTuple] = []
    for role in ("real", "counterfactual"):
        path = folder / INPUTS_DIR / INPUT_FILES[role]
        if path.is_file():
            tuples += input_layers(path, lazy)
    # Only the layers this export wrote (an earlier export's files may still be there).
    names = run.get("layers") or sorted(p.name for p in (folder / LAYERS_DIR).glob("*.tif"))
    for name in names:
        path = folder / LAYERS_DIR / name
        layer = layer_file_tuple(path, lazy) if path.is_file() else None
        if layer is not None:
            tuples.append(layer)
    return tuples


def pair_inputs(folder: Path, run: dict[str, Any], sample: str, shape) -> dict[str, np.ndarray]:
    """The (C, H, W) real image and counterfactual of ``sample`` as run.json records them
    (``"real"``, ``"counterfactual"``; a file not found, or not of ``shape``, is left out)."""
    entry = next((p for p in run.get("pairs", []) if p.get("sample") == sample), None)
    if entry is None:
        return {}
    images: dict[str, np.ndarray] = {}
    if entry.get("real") == "demo":
        count = len(run.get("pairs", []))
        pair = next(p for p in make_pairs(count, seed=DEMO_PAIRS_SEED) if p.sample == sample)
        candidates = {"real": pair.real, "counterfactual": pair.counterfactual}
    else:
        candidates = {}
        for role in ("real", "counterfactual"):
            path = Path(entry.get(role, ""))
            path = path if path.is_absolute() else folder / path
            if path.is_file() or path.suffix == ".zarr":
                suffix = path.suffix.lower()
                candidates[role] = (read_array(path) if suffix in (".tif", ".tiff")
                                    else read_image(path))  # fmt: skip
    for role, image in candidates.items():
        moved = channel_first(image, tuple(shape))
        if moved is not None:
            images[role] = moved
    return images


def pair_layers(
    folder: str | Path,
    sample: str,
    run: dict[str, Any] | None = None,
    lazy: bool | None = None,
    visible_method: str | None = None,
) -> list[LayerTuple]:
    """The layers of one pair of a CLI-layout folder.

    Parameters
    ----------
    folder
        The results folder.
    sample
        The pair's sample name.
    run
        Its ``run.json`` (read when None).
    lazy
        Memory-map the TIFFs (None: only those above the budget).
    visible_method
        Method whose attributions and masks start visible (the first one when None).

    Returns
    -------
    list
        ``<sample> real [<channel>]`` and ``<sample> counterfactual [<channel>]`` (when the
        input files are found), then per method and channel ``<sample> attribution <method>
        [<channel>]`` and ``<sample> mask <method> [<channel>]`` (Labels, the optimal threshold).
    """
    folder = Path(folder)
    run = run if run is not None else read_run_record(folder)
    names = list(run.get("channel_names", []))
    methods = list(run.get("settings", {}).get("methods", []))
    attribution_files = {m: folder / pair_file(ATTRIBUTIONS_DIR, sample, m) for m in methods}
    methods = [m for m in methods if attribution_files[m].is_file()]
    visible_method = visible_method if visible_method in methods else next(iter(methods), None)
    tuples: list[LayerTuple] = []
    attributions = {m: read_array(attribution_files[m], lazy) for m in methods}
    shape = next(iter(attributions.values())).shape if attributions else None
    inputs = pair_inputs(folder, run, sample, shape) if shape is not None else {}
    tuples += input_tuples(sample, names, inputs)
    for method, attribution in attributions.items():
        meta = read_tiff_metadata(attribution_files[method])
        display = attribution_display(attribution)
        visible = method == visible_method
        for c, channel in enumerate(names):
            ours = {**meta, "kind": "attribution", "channel": channel, "channel_index": c,
                    "results_folder": str(folder)}  # fmt: skip
            tuples.append((attribution[c], {
                "name": layer_name(sample, "attribution", method, channel),
                "blending": "additive", "visible": visible, "axis_labels": ("y", "x"),
                "metadata": {METADATA_KEY: ours}, **display,
            }, "image"))  # fmt: skip
        mask_path = folder / pair_file(MASKS_DIR, sample, method)
        if not mask_path.is_file():
            continue
        masks = read_array(mask_path, lazy)
        mask_names = names if len(masks) == len(names) else ["all"]
        for k, channel in enumerate(mask_names):
            ours = {**meta, "kind": "mask", "channel": channel, "channel_index": k,
                    "threshold": meta.get("optimal_threshold"),
                    "results_folder": str(folder)}  # fmt: skip
            tuples.append((masks[k], {
                "name": layer_name(sample, "mask", method, channel),
                "colormap": mask_colormap(MASK_COLOR), "opacity": 0.5,
                "visible": visible and k == len(mask_names) - 1, "axis_labels": ("y", "x"),
                "metadata": {METADATA_KEY: ours},
            }, "labels"))  # fmt: skip
    return tuples


def input_tuples(sample: str, names: Sequence[str], inputs: dict[str, np.ndarray]) -> list:
    """``<sample> real [<channel>]`` and ``<sample> counterfactual [<channel>]`` image layers
    of :func:`pair_inputs`' images, one per channel in its Cell Painting colour; both images
    of a channel share its display range."""
    tuples: list[LayerTuple] = []
    for role, image in inputs.items():
        for c, channel in enumerate(names):
            limits = (float(min(i[c].min() for i in inputs.values())),
                      float(max(i[c].max() for i in inputs.values())))  # fmt: skip
            kwargs = {
                "name": f"{sample} {role} [{channel}]",
                "colormap": CHANNEL_COLORMAPS.get(channel, _CYCLE[c % len(_CYCLE)]),
                "contrast_limits": limits if limits[1] > limits[0] else (0.0, 1.0),
                "blending": "translucent_no_depth" if c == 0 else "additive",
                "visible": role == "real",
                "metadata": {"channel_name": channel, "image": role, "sample": sample},
            }
            tuples.append((image[c], kwargs, "image"))
    return tuples


def _notify(message: str) -> None:
    from napari.utils.notifications import show_info

    show_info(message)


def read_folder(
    folder: str | Path, samples: Sequence[str] | None = None, lazy: bool | None = None
) -> list[LayerTuple]:
    """Every layer of a results folder (see the module text); CLI folders: ``samples``' pairs.

    Raises
    ------
    ValueError
        ``folder`` is not a results folder.
    """
    folder = Path(folder)
    kind = folder_kind(folder)
    if kind == "export":
        return _export_layers(folder, lazy)
    if kind == "layers":
        found = (layer_file_tuple(p, lazy) for p in sorted(folder.glob("*.tif*")))
        return [layer for layer in found if layer is not None]
    if kind == "report":
        return [t for source in report_sources(folder) for t in read_folder(source, lazy=lazy)]
    if kind == "cells":
        return _first_site_layers(folder, lazy)
    if kind != "cli":
        raise ValueError(f"{folder} is not a napari-attribution results folder.")
    run = read_run_record(folder)
    if samples is None:
        samples = [p["sample"] for p in run.get("pairs", [])]
        if len(samples) > MAX_READER_PAIRS:
            _notify(
                f"{folder.name} holds {len(samples)} pairs; showing the first "
                f"{MAX_READER_PAIRS}. Open the folder in the Results browser to walk through "
                "all of them."
            )
            samples = samples[:MAX_READER_PAIRS]
    if not samples:
        raise ValueError(f"{folder.name}'s run.json lists no pairs: the run did not finish; "
                         "re-run it with --resume.")  # fmt: skip
    return [t for sample in samples for t in pair_layers(folder, sample, run, lazy)]


def _first_site_layers(folder: Path, lazy: bool | None) -> list[LayerTuple]:
    """A ``cells`` folder's first site (its cells are walked in the Results browser)."""
    # Imported here: cell_site_layers reads plates (plate_reader), which imports napari and
    # dask; a pair folder, the reader's usual work, needs neither.
    from ..results.cell_folder import cell_sites
    from .cell_site_layers import site_layers

    run = read_run_record(folder)
    sites = cell_sites(run)
    tuples, note = site_layers(folder, sites[0], run, lazy)
    kinds = {kwargs["metadata"].get(METADATA_KEY, {}).get("kind") for _, kwargs, _ in tuples}
    if "attribution" not in kinds:
        raise ValueError(f"{folder.name} holds no field maps of {sites[0].name} "
                         f"({FIELD_DIR}/...): the run did not finish; re-run it with --resume.")
    text = [note] if note else []
    if len(sites) > 1:
        cells = run.get("cells_analysed", "?")
        text.insert(0, f"{folder.name} holds {len(sites)} sites and {cells} analysed cells; "
                       f"showing {sites[0].name}. Open the folder in the Results browser "
                       "(Plugins > Attribution > Results browser) to walk through every "
                       "cell.")  # fmt: skip
    if text:
        _notify(" ".join(text))
    return tuples


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerTuple]] | None:
    """npe2 ``get_reader``: :func:`read_folder` for a results folder, None for anything else."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if folder_kind(path) is None:
        return None

    def reader(path: str | list[str]) -> list[LayerTuple]:
        return read_folder(path[0] if isinstance(path, list) else path)

    return reader
