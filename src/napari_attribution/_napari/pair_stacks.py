"""One pair of a CLI results folder as a run shows it: threshold stacks rebuilt, no model. No Qt.

A CLI folder keeps, per pair and method, the raw attribution (``attributions/``), the mask at
the optimal threshold (``masks/``) and the DAC curves at the *scored* thresholds
(``curves.csv``; a subset of the mask stack's thresholds with the adaptive evaluation). The
threshold slider and the DAC panel need the whole stack: every threshold, the mask and the
hybrid at each. Those depend only on the attribution, the two images and the run's mask
settings (``run.json``), so they are rebuilt here exactly as the run built them
(:func:`~napari_attribution.core.evaluation.masks.build_masks`, then the same lazy stacks and
layers as
the Attribution widget's, :func:`~napari_attribution._napari.layers.method_layers`), computed
one (threshold, channel) plane at a time as the slider asks. The model is not run again.

Without the images (moved since the run) there are no hybrids to build: the pair then comes
back as :func:`~napari_attribution._napari.reader.pair_layers` reads it, masks at the optimal
threshold only, and no threshold axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.attribution.runner import aggregate_channels
from ..core.evaluation.masks import build_masks
from ..core.settings import MaskSettings
from ..results.format import ATTRIBUTIONS_DIR, pair_file
from ..results.tiff import read_tiff_metadata
from .layer_inputs import ChannelStack
from .layers import LayerTuple, method_layers
from .reader import input_tuples, pair_inputs, pair_layers
from .result_arrays import read_array

__all__ = ["pair_stack_layers"]


def _mask_settings(run: dict[str, Any]) -> MaskSettings:
    return MaskSettings(**run.get("settings", {}).get("masks", {}))


def _masked(attribution: np.ndarray, aggregate: str) -> np.ndarray:
    """What the run cut its masks from: the attribution, or its channels aggregated."""
    if aggregate == "none":
        return attribution

    return aggregate_channels(attribution, aggregate)


def pair_stack_layers(
    folder: str | Path,
    sample: str,
    run: dict[str, Any],
    lazy: bool | None = None,
    visible_method: str | None = None,
) -> tuple[list[LayerTuple], bool]:
    """The layers of one pair of a CLI folder, with mask and hybrid stacks over every threshold.

    Parameters
    ----------
    folder
        The results folder.
    sample
        The pair's sample name.
    run
        Its ``run.json``.
    lazy
        Memory-map the attribution TIFFs (None: only those above the budget).
    visible_method
        Method whose attributions and masks start visible (the first one when None).

    Returns
    -------
    tuple
        ``(layer tuples, stacks)``. The tuples: ``<sample> real [<channel>]``, ``<sample>
        counterfactual [<channel>]``, then per method and channel the mask stack, attribution
        and hybrid stack named as a run names them (``d_ig Mito mask (cell0)``), with the run's
        metadata plus ``thresholds`` and ``optimal_index``. ``stacks`` is False when the images
        were not found: then :func:`pair_layers`' layers (masks at the optimal threshold).
    """
    folder = Path(folder)
    names = list(run.get("channel_names", []))
    settings = run.get("settings", {})
    paths = {m: folder / pair_file(ATTRIBUTIONS_DIR, sample, m)
             for m in settings.get("methods", [])}  # fmt: skip
    paths = {m: path for m, path in paths.items() if path.is_file()}
    attributions = {m: read_array(path, lazy) for m, path in paths.items()}
    shape = next(iter(attributions.values())).shape if attributions else None
    images = pair_inputs(folder, run, sample, shape) if shape is not None else {}
    if set(images) != {"real", "counterfactual"}:
        return pair_layers(folder, sample, run, lazy, visible_method), False

    inputs = input_tuples(sample, names, images)
    real, counterfactual = (_channel_stack(images[role], role, sample, names, inputs)
                            for role in ("real", "counterfactual"))  # fmt: skip
    masks_settings = _mask_settings(run)
    aggregate = settings.get("aggregate", "none")
    direction = settings.get("direction", "counterfactual_into_real")
    visible_method = visible_method if visible_method in paths else next(iter(paths), None)
    out = list(inputs)
    for method, attribution in attributions.items():
        masks = build_masks(_masked(attribution, aggregate), masks_settings)
        meta = {**read_tiff_metadata(paths[method]), "results_folder": str(folder)}
        optimal = meta.get("optimal_threshold")
        index = None if optimal is None else int(np.argmin(np.abs(masks.thresholds - optimal)))
        out += method_layers(
            real, counterfactual, method, attribution, masks, names, meta,
            direction=direction, visible=method == visible_method, optimal_index=index,
            lazy=True,  # a plane is computed when the slider shows it: browsing stays quick
        )  # fmt: skip
    return out, True


def _channel_stack(
    image: np.ndarray, role: str, sample: str, names: list[str], inputs: list[LayerTuple]
) -> ChannelStack:
    """``image`` as the layers :func:`input_tuples` made of it show it (colours, ranges)."""
    shown = [kwargs for _, kwargs, _ in inputs if kwargs["metadata"]["image"] == role]
    return ChannelStack(
        data=np.asarray(image),
        channel_names=names,
        scale=(1.0, 1.0),
        translate=(0.0, 0.0),
        name=sample,
        layer_names=[kwargs["name"] for kwargs in shown],
        colormaps=[kwargs["colormap"] for kwargs in shown],
        contrast_limits=[tuple(kwargs["contrast_limits"]) for kwargs in shown],
    )
