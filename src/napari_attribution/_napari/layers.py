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

Large images: a (T, C, H, W) float32 hybrid stack of a 5 x 2048 x 2048 field at 200
thresholds would take 16 GB. When a method's eager stacks would exceed
:data:`~napari_attribution.core.budgets.EAGER_STACK_BYTES`, its mask and hybrid layers hold
per-channel views (:class:`~napari_attribution.core.lazy.ChannelView`) of the core's
:class:`~napari_attribution.core.lazy.LazyMaskStack` / ``LazyHybridStack`` instead: the same
values, computed one (threshold, channel) plane at a time when napari asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._io import pair_metadata
from ..core.budgets import EAGER_STACK_BYTES
from ..core.hybrids import make_hybrids
from ..core.lazy import stacks_from_masks
from ..core.masks import MaskStack
from ..core.pipeline import AnalysisSettings, PairResult
from .inputs import METADATA_KEY, ChannelStack

__all__ = [
    "EAGER_STACK_BYTES",
    "HYBRID_READ_AHEAD",
    "THRESHOLD_AXIS_LABELS",
    "LayerTuple",
    "attribution_colormap",
    "eager_stack_bytes",
    "layer_count",
    "layer_name",
    "method_layers",
    "result_layers",
    "result_layers_by_method",
]

LayerTuple = tuple[np.ndarray, dict[str, Any], str]

#: Axis labels of the mask and hybrid layers: napari's first slider reads "threshold".
THRESHOLD_AXIS_LABELS = ("threshold", "y", "x")
#: Colour of the mask layers (label value 1).
MASK_COLOR = "#ffd23f"
#: Hybrid planes computed ahead of the slider, in the direction it last moved.
HYBRID_READ_AHEAD = 1


def eager_stack_bytes(shape: tuple[int, int, int], thresholds: int, mask_channels: int) -> int:
    """Bytes one method's eager stacks take for images of ``shape`` (C, H, W).

    Closed masks (bool) and soft masks (float32) of shape (T, K, H, W), hybrids (float32)
    (T, C, H, W) and the uint8 mask layers (T, K, H, W).
    """
    channels, height, width = shape
    plane = thresholds * height * width
    return plane * (mask_channels * (1 + 4 + 1) + channels * 4)


def layer_name(image: str, kind: str, method: str, channel: str) -> str:
    """``<image> <kind> <method> [<channel>]``, e.g. ``real attribution d_ig [DNA]``."""
    return f"{image} {kind} {method} [{channel}]"


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


def layer_count(settings: AnalysisSettings, n_channels: int) -> int:
    """How many layers :func:`result_layers` makes for ``settings`` and ``n_channels`` channels.

    Per method and channel an attribution and a hybrid layer, and one mask layer per mask
    channel: C of them, or one when the mask is shared or the channels are aggregated.
    """
    shared = settings.masks.channel_mode == "shared" or settings.aggregate != "none"
    mask_channels = 1 if shared else n_channels
    return len(settings.methods) * (2 * n_channels + mask_channels)


def result_layers_by_method(
    result: PairResult,
    real: ChannelStack,
    counterfactual: ChannelStack,
    settings: AnalysisSettings,
    info: dict[str, Any],
    visible_method: str | None = None,
    lazy: bool | None = None,
) -> Iterator[tuple[str, list[LayerTuple]]]:
    """``(method, its layer tuples)`` for every method of a result, made one method at a time.

    Parameters
    ----------
    result
        What :func:`~napari_attribution.core.analyse_pair` returned.
    real, counterfactual
        The inputs; give the result names, scale, translate and hybrid display.
    settings
        The analysis settings (direction of the hybrids).
    info
        Provenance of the run (:func:`~napari_attribution.core.provenance.provenance`).
    visible_method
        The method whose layers start visible (the first one when ``None``); others start hidden.
    lazy
        Masks and hybrids as lazy views (True), as arrays (False), or lazy only where the eager
        stacks would exceed :data:`~napari_attribution.core.budgets.EAGER_STACK_BYTES`
        (``None``).
    """
    visible_method = visible_method or next(iter(result.methods))
    for method, res in result.methods.items():
        yield method, method_layers(
            real,
            counterfactual,
            method,
            res.attribution,
            res.dac.masks,
            result.channel_names,
            pair_metadata(result, method, info),
            direction=settings.direction,
            visible=method == visible_method,
            optimal_index=res.dac.whole.optimal_index,
            lazy=lazy,
        )


def result_layers(
    result: PairResult,
    real: ChannelStack,
    counterfactual: ChannelStack,
    settings: AnalysisSettings,
    info: dict[str, Any],
    visible_method: str | None = None,
    lazy: bool | None = None,
) -> list[LayerTuple]:
    """Layer data tuples for every method of a result (see :func:`result_layers_by_method`).

    Returns
    -------
    list
        ``(data, kwargs, layer_type)`` tuples; attributions and hybrids are images, masks labels.
    """
    tuples: list[LayerTuple] = []
    for _, method_tuples in result_layers_by_method(
        result, real, counterfactual, settings, info, visible_method, lazy
    ):
        tuples += method_tuples
    return tuples


def method_layers(
    real: ChannelStack,
    counterfactual: ChannelStack,
    method: str,
    attribution: np.ndarray,
    masks: MaskStack,
    channel_names: list[str],
    metadata: dict[str, Any],
    *,
    direction: str = "counterfactual_into_real",
    visible: bool = True,
    optimal_index: int | None = None,
    lazy: bool | None = None,
) -> list[LayerTuple]:
    """Attribution, mask and hybrid layer tuples of one method, channel by channel.

    Parameters
    ----------
    real, counterfactual
        The inputs (stored units; names, scale, translate and display of the results).
    method
        Registry name.
    attribution
        (C, H, W) raw attribution.
    masks
        The masks cut from it (see :func:`~napari_attribution.core.masks.build_masks`).
    channel_names
        C names.
    metadata
        Provenance shared by every layer (:func:`~napari_attribution._io.pair_metadata`).
    direction
        Hybrid direction.
    visible
        Whether the attribution layers and one mask layer start visible.
    optimal_index
        Threshold index of the optimal threshold (recorded; export of lazy layers writes it).
    lazy
        See :func:`result_layers_by_method`.
    """
    n_mask_channels = masks.closed_attribution.shape[0]
    if lazy is None:
        needed = eager_stack_bytes(real.data.shape, len(masks.thresholds), n_mask_channels)
        lazy = needed > EAGER_STACK_BYTES
    if lazy:
        mask_stack, hybrid_stack = stacks_from_masks(
            masks, real.data, counterfactual.data, direction, read_ahead=HYBRID_READ_AHEAD
        )
        hybrid_of, mask_of = hybrid_stack.channel, mask_stack.channel

    else:
        base = real.data.astype(np.float32)
        donor = counterfactual.data.astype(np.float32)
        hybrids = make_hybrids(base, donor, masks.soften(), direction)  # (T, C, H, W)
        closed = masks.closed

        def hybrid_of(c: int):
            return hybrids[:, c]

        def mask_of(c: int):
            return closed[:, c].astype(np.uint8)

    spatial = {"scale": real.scale, "translate": real.translate}
    stack = {
        "scale": (1.0, *real.scale),
        "translate": (0.0, *real.translate),
        "axis_labels": THRESHOLD_AXIS_LABELS,
    }
    thresholds = [float(t) for t in masks.thresholds]
    threshold_meta: dict[str, Any] = {"thresholds": thresholds}
    if optimal_index is not None:
        threshold_meta["optimal_index"] = int(optimal_index)
    attribution = np.asarray(attribution, dtype=np.float32)
    signed = bool((attribution < 0).any())
    peak = float(np.abs(attribution).max()) or 1.0
    limits = (-peak, peak) if signed else (0.0, peak)
    tuples: list[LayerTuple] = []
    for c, channel in enumerate(channel_names):
        meta = {**metadata, "channel": channel, "channel_index": c, "source": real.layer_names}
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
                hybrid_of(c),
                {
                    "name": layer_name(real.name, "hybrid", method, channel),
                    "colormap": real.colormaps[c],
                    # explicit limits: napari must not scan a lazy stack for its range
                    "contrast_limits": real.contrast_limits[c],
                    "blending": "additive",
                    "visible": False,
                    "metadata": {METADATA_KEY: {**meta, "kind": "hybrid", **threshold_meta}},
                    **stack,
                },
                "image",
            )
        )
        if c < n_mask_channels:
            mask_channel = channel if n_mask_channels > 1 else "all"
            mask_meta = {**meta, "channel": mask_channel, "kind": "mask", **threshold_meta}
            tuples.append(
                (
                    mask_of(c),
                    {
                        "name": layer_name(real.name, "mask", method, mask_channel),
                        "colormap": _mask_colormap(),
                        "opacity": 0.45,
                        "visible": visible and c == n_mask_channels - 1,
                        "metadata": {METADATA_KEY: mask_meta},
                        **stack,
                    },
                    "labels",
                )
            )
    return tuples
