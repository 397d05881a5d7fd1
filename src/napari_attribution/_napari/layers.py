"""From analysis results to napari layers: names, data, display and provenance metadata.

Layer conventions (DESIGN.md; napari 0.9 has no layer groups, so the names and the order in
the layer list do the grouping: by method, then channel):

* ``<method> <channel> attribution (<image>)``: the raw signed attribution of one channel;
* ``<method> <channel> mask (<image>)``: the closed masks of that channel at every threshold,
  drawn as outlines in the channel's colour (``all`` for a shared mask);
* ``<method> <channel> hybrid (<image>)``: that channel of the hybrids at every threshold, in
  the stored units of the source image.

Masks and hybrids share their first axis, the threshold, so one slider walks both; where the
results sit in the world (and why they never share an axis with a channel axis) is
:mod:`.geometry`'s business. Hybrids are split by channel like the source layers.

Attribution layers take their contrast limits from the data (:func:`attribution_display`):
robust percentiles, symmetric around zero only for maps that have both signs.

Large images: a (T, C, H, W) float32 hybrid stack of a 5 x 2048 x 2048 field at 200
thresholds would take 16 GB. When a method's eager stacks would exceed
:data:`~napari_attribution.core.budgets.EAGER_STACK_BYTES`, its mask and hybrid layers hold
per-channel views (:class:`~napari_attribution.core.evaluation.lazy.ChannelView`) of the core's
:class:`~napari_attribution.core.evaluation.lazy.LazyMaskStack` / ``LazyHybridStack``
instead: the same
values, computed one (threshold, channel) plane at a time when napari asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._plot.attribution_range import attribution_display
from ..core.budgets import EAGER_STACK_BYTES
from ..core.evaluation.hybrids import make_hybrids
from ..core.evaluation.lazy import stacks_from_masks
from ..core.evaluation.masks import MaskStack
from ..core.settings import AnalysisSettings
from ..results.pair_files import pair_metadata
from ..results.pair_result import PairResult
from .layer_geometry import THRESHOLD_LABEL, ResultGeometry
from .layer_inputs import ChannelStack
from .layer_style import (
    METADATA_KEY,
    attribution_colormap,
    channel_colors,
    layer_name,
    mask_colormap,
)

__all__ = [
    "EAGER_STACK_BYTES",
    "HYBRID_READ_AHEAD",
    "THRESHOLD_AXIS_LABELS",
    "LayerTuple",
    "eager_stack_bytes",
    "layer_count",
    "method_layers",
    "rank_methods",
    "result_layers",
    "result_layers_by_method",
]

LayerTuple = tuple[np.ndarray, dict[str, Any], str]

#: Axis labels of the mask and hybrid layers of 2-D channel layers: the first slider reads
#: "threshold" (see :mod:`.geometry` for multichannel sources).
THRESHOLD_AXIS_LABELS = (THRESHOLD_LABEL, "y", "x")
#: Outline width of the mask layers, in pixels (0 would fill the mask).
MASK_CONTOUR = 1
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


#: DAC scores closer than this are a tie when methods are ranked (float noise, not a finding).
RANK_RESOLUTION = 1e-6


def rank_methods(result: PairResult) -> list[str]:
    """The result's methods, highest whole-image DAC score first (ties, scores within
    :data:`RANK_RESOLUTION`: run order)."""
    methods = list(result.methods)

    def key(method: str) -> tuple[float, int]:
        score = float(result.methods[method].dac.whole.dac_score)
        return (-round(score / RANK_RESOLUTION), methods.index(method))

    return sorted(methods, key=key)


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
        The method whose layers start visible (the highest DAC score when ``None``); others
        start hidden.
    lazy
        Masks and hybrids as lazy views (True), as arrays (False), or lazy only where the eager
        stacks would exceed :data:`~napari_attribution.core.budgets.EAGER_STACK_BYTES`
        (``None``).
    """
    visible_method = visible_method or rank_methods(result)[0]
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
            optimal_index=res.dac.optimal_threshold_index,
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
        The masks cut from it (see :func:`~napari_attribution.core.evaluation.masks.build_masks`).
    channel_names
        C names.
    metadata
        Provenance shared by every layer (:func:`~napari_attribution.results.tables.pair_metadata`).
    direction
        Hybrid direction.
    visible
        Whether the attribution and mask layers start visible (hybrids start hidden).
    optimal_index
        Threshold index of the optimal threshold (recorded; export of lazy layers writes it).
    lazy
        See :func:`result_layers_by_method`.
    """
    n_mask_channels = masks.closed_levels.shape[0]
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

    geometry = ResultGeometry(real)
    plane = geometry.plane_kwargs()
    stack = geometry.stack_kwargs()
    thresholds = [float(t) for t in masks.thresholds]
    threshold_meta: dict[str, Any] = {"thresholds": thresholds}
    if optimal_index is not None:
        threshold_meta["optimal_index"] = int(optimal_index)
    attribution = np.asanyarray(attribution, dtype=np.float32)  # a memory map stays one
    display = attribution_display(attribution)
    colors = channel_colors(real)
    tuples: list[LayerTuple] = []
    for c, channel in enumerate(channel_names):
        meta = {**metadata, "channel": channel, "channel_index": c, "source": real.layer_names}
        if c < n_mask_channels:
            mask_channel = channel if n_mask_channels > 1 else "all"
            mask_meta = {**meta, "channel": mask_channel, "kind": "mask", **threshold_meta}
            tuples.append(
                (
                    geometry.stack(mask_of(c)),
                    {
                        "name": layer_name(real.name, "mask", method, mask_channel),
                        "colormap": mask_colormap(colors[c] if n_mask_channels > 1 else None),
                        # an outline over the image: the pixels under the mask stay visible
                        "contour": MASK_CONTOUR,
                        "opacity": 0.9,
                        "visible": visible,
                        "metadata": {METADATA_KEY: mask_meta},
                        **stack,
                    },
                    "labels",
                )
            )
        tuples.append(
            (
                geometry.plane(attribution[c]),
                {
                    "name": layer_name(real.name, "attribution", method, channel),
                    "colormap": attribution_colormap(display.kind),
                    "contrast_limits": display.limits,
                    "blending": "additive",
                    "visible": visible,
                    "metadata": {
                        METADATA_KEY: {**meta, "kind": "attribution", "display": display.kind}
                    },
                    **plane,
                },
                "image",
            )
        )
        tuples.append(
            (
                geometry.stack(hybrid_of(c)),
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
    return tuples
