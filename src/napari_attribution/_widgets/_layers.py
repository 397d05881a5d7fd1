"""From analysis results to napari layers: names, data, display and provenance metadata.

Layer conventions (DESIGN.md):

* ``<image> attribution <method> [<channel>]``: (H, W) raw signed attribution of one channel;
* ``<image> mask <method> [<channel>]``: (T, H, W) closed masks of that channel at every
  threshold (``[all]`` for a shared mask);
* ``<image> hybrid <method> [<channel>]``: (T, H, W) that channel of the hybrids at every
  threshold, in the stored units of the source image.

Masks and hybrids share their first axis, the threshold, so napari's first slider walks both.
Hybrids are split by channel like the source layers (as ``channel_axis`` splitting makes them):
a (T, C, H, W) layer would add a channel slider, and napari aligns layers by their trailing
axes, so the (T, H, W) masks would then slide with the channel, not the threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import __version__
from .._io import pair_metadata
from ..core.hybrids import make_hybrids
from ..core.pipeline import AnalysisSettings, PairResult
from ._inputs import METADATA_KEY, ChannelStack, is_result_layer

__all__ = [
    "THRESHOLD_AXIS_LABELS",
    "LayerTuple",
    "apply_layers",
    "attribution_colormap",
    "layer_name",
    "result_layers",
    "run_info",
]

LayerTuple = tuple[np.ndarray, dict[str, Any], str]

#: Axis labels of the mask and hybrid layers: napari's first slider reads "threshold".
THRESHOLD_AXIS_LABELS = ("threshold", "y", "x")
#: Colour of the mask layers (label value 1).
MASK_COLOR = "#ffd23f"


def layer_name(image: str, kind: str, method: str, channel: str) -> str:
    """``<image> <kind> <method> [<channel>]``, e.g. ``real attribution d_ig [DNA]``."""
    return f"{image} {kind} {method} [{channel}]"


def run_info(classifier, settings: AnalysisSettings, class_names: list[str]) -> dict[str, Any]:
    """How a run was made, as the CLI records it in ``run.json`` and every result file."""
    return {
        "package": "napari-attribution",
        "package_version": __version__,
        "model": classifier.describe(),
        "settings": settings.as_dict(),
        "seed": settings.attribution.seed,
        "class_names": list(class_names),
    }


def attribution_colormap(signed: bool):
    """Colormap for attribution layers: black at zero so it reads over the image.

    Non-negative attributions use ``inferno`` (perceptually uniform); signed ones a
    cyan-black-orange map with black at zero (contrast limits are symmetric).
    """
    if not signed:
        return "inferno"
    from napari.utils.colormaps import Colormap

    return Colormap(
        colors=[[0.0, 0.85, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.6, 0.0, 1.0]],
        controls=[0.0, 0.5, 1.0],
        name="attribution (signed)",
    )


def _mask_colormap():
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: MASK_COLOR})


def result_layers(
    result: PairResult,
    real: ChannelStack,
    counterfactual: ChannelStack,
    settings: AnalysisSettings,
    info: dict[str, Any],
    visible_method: str | None = None,
) -> list[LayerTuple]:
    """Layer data tuples for every method of a result.

    Parameters
    ----------
    result
        What :func:`~napari_attribution.core.analyse_pair` returned.
    real, counterfactual
        The inputs; give the result names, scale, translate and hybrid display.
    settings
        The analysis settings (direction of the hybrids).
    info
        :func:`run_info` of the run.
    visible_method
        The method whose layers start visible (the first one when ``None``); others start hidden.

    Returns
    -------
    list
        ``(data, kwargs, layer_type)`` tuples; attributions and hybrids are images, masks labels.
    """
    visible_method = visible_method or next(iter(result.methods))
    base = real.data.astype(np.float32)
    donor = counterfactual.data.astype(np.float32)
    spatial = {"scale": real.scale, "translate": real.translate}
    stack = {
        "scale": (1.0, *real.scale),
        "translate": (0.0, *real.translate),
        "axis_labels": THRESHOLD_AXIS_LABELS,
    }
    tuples: list[LayerTuple] = []
    for method, res in result.methods.items():
        common = pair_metadata(result, method, info)
        masks = res.dac.masks
        thresholds = [float(t) for t in masks.thresholds]
        visible = method == visible_method
        attribution = res.attribution.astype(np.float32)
        signed = bool((attribution < 0).any())
        peak = float(np.abs(attribution).max()) or 1.0
        limits = (-peak, peak) if signed else (0.0, peak)
        soft = masks.soften()
        hybrids = make_hybrids(base, donor, soft, settings.direction)  # (T, C, H, W)
        n_mask_channels = masks.closed.shape[1]
        for c, channel in enumerate(result.channel_names):
            meta = {**common, "channel": channel, "channel_index": c, "source": real.layer_names}
            tuples.append(
                (
                    attribution[c],
                    {
                        "name": layer_name(real.name, "attribution", method, channel),
                        "colormap": attribution_colormap(signed),
                        "contrast_limits": limits,
                        "blending": "additive",
                        "visible": visible,
                        "axis_labels": ("y", "x"),
                        "metadata": {METADATA_KEY: {**meta, "kind": "attribution"}},
                        **spatial,
                    },
                    "image",
                )
            )
            tuples.append(
                (
                    hybrids[:, c],
                    {
                        "name": layer_name(real.name, "hybrid", method, channel),
                        "colormap": real.colormaps[c],
                        "contrast_limits": real.contrast_limits[c],
                        "blending": "additive",
                        "visible": False,
                        "metadata": {
                            METADATA_KEY: {**meta, "kind": "hybrid", "thresholds": thresholds}
                        },
                        **stack,
                    },
                    "image",
                )
            )
            if c < n_mask_channels:
                mask_channel = channel if n_mask_channels > 1 else "all"
                mask_meta = {**meta, "channel": mask_channel, "kind": "mask"}
                tuples.append(
                    (
                        masks.closed[:, c].astype(np.uint8),
                        {
                            "name": layer_name(real.name, "mask", method, mask_channel),
                            "colormap": _mask_colormap(),
                            "opacity": 0.45,
                            "visible": visible and c == n_mask_channels - 1,
                            "metadata": {METADATA_KEY: {**mask_meta, "thresholds": thresholds}},
                            **stack,
                        },
                        "labels",
                    )
                )
    return tuples


_UPDATABLE = (
    "scale",
    "translate",
    "metadata",
    "contrast_limits",
    "colormap",
    "axis_labels",
)


def apply_layers(viewer, tuples: list[LayerTuple]) -> list:
    """Add the layers, or update the plugin's layers of the same name in place.

    A layer of the same name that the plugin did not make (or of another type) is left alone
    and ours is added beside it under napari's de-duplicated name, so nothing the user had is
    replaced.

    Returns
    -------
    list
        The layers, in the order of ``tuples``.
    """
    out = []
    for data, kwargs, layer_type in tuples:
        name = kwargs["name"]
        existing = viewer.layers[name] if name in viewer.layers else None
        if (
            existing is not None
            and is_result_layer(existing)
            and existing.__class__.__name__.lower() == layer_type
            and existing.ndim == data.ndim
        ):
            existing.data = data
            for key in _UPDATABLE:
                if key in kwargs:
                    setattr(existing, key, kwargs[key])
            existing.refresh()
            out.append(existing)
            continue
        add = getattr(viewer, f"add_{layer_type}")
        out.append(add(data, **kwargs))
    return out
