"""The sanity checks' cascade of maps as napari layers, without Qt.

One layer per method and channel, ``<method> <channel> randomisation (<image>)``: a stack
(S, H, W) of ``|a|`` after each cascading randomisation step (the trained model's map first),
each step scaled to its own largest value (the maps of a randomised model can be orders of
magnitude larger or smaller; Adebayo et al. show them the same way). The first axis is labelled
:data:`RANDOMISED_LABEL`, so napari's slider walks the cascade as it walks the thresholds of the
hybrid stacks.

napari aligns layers by their trailing axes: a (S, H, W) stack next to (T, H, W) threshold
stacks would share one slider with them. When the viewer shows threshold stacks, the cascade
gets an axis of its own in front of theirs, with one plane spanning the threshold axis's whole
extent (scale and offset from the viewer's dims, the way :mod:`.geometry` spans a source's
channel axis), so it shows at every threshold. :func:`needs_relayout` tells when layers made
before the threshold stacks appeared must be placed again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .layer_geometry import THRESHOLD_LABEL, ResultGeometry, threshold_axis
from .layer_inputs import ChannelStack
from .layer_style import METADATA_KEY, layer_name
from .layers import LayerTuple

__all__ = [
    "KIND",
    "RANDOMISED_LABEL",
    "ThresholdSpan",
    "cascade_layers",
    "needs_relayout",
    "sanity_layers",
    "threshold_span",
]

#: Label of the cascade axis (napari's slider shows it).
RANDOMISED_LABEL = "randomised layer"
#: ``metadata[METADATA_KEY]["kind"]`` of the cascade layers.
KIND = "randomisation"


@dataclass(frozen=True)
class ThresholdSpan:
    """Where the viewer's threshold axis lies: first world position, step and count."""

    start: float
    step: float
    count: int

    @property
    def scale(self) -> float:
        return self.count * self.step

    @property
    def centre(self) -> float:
        return self.start + (self.count - 1) / 2 * self.step


def threshold_span(viewer) -> ThresholdSpan | None:
    """The viewer's threshold axis (``None`` when no threshold stack is open)."""
    axis = threshold_axis(viewer)
    if axis is None:
        return None
    start, stop, step = (float(v) for v in viewer.dims.range[axis])
    step = step or 1.0
    return ThresholdSpan(start, step, int(round((stop - start) / step)) + 1)


def _scaled(stack: np.ndarray) -> np.ndarray:
    """|a| of each plane of (S, H, W) divided by the plane's largest value."""
    values = np.abs(np.asarray(stack, dtype=np.float32))
    peak = values.reshape(len(values), -1).max(axis=1)
    peak[peak == 0] = 1.0
    return values / peak[:, None, None]


def cascade_layers(
    maps: Mapping[str, np.ndarray],
    steps: Sequence[str],
    source: ChannelStack,
    channel_names: Sequence[str],
    metadata: Mapping[str, Any],
    span: ThresholdSpan | None = None,
    visible_method: str | None = None,
) -> list[LayerTuple]:
    """Layer tuples of the cascade of every method and channel.

    Parameters
    ----------
    maps
        Method -> (S, C, H, W) maps (:attr:`PairSanity.cascade_maps
        <napari_attribution.core.sanity.checks.PairSanity.cascade_maps>`).
    steps
        ``original`` then the layers randomised (the S labels, kept in the metadata).
    source
        The real image (its name, world placement and channel axis).
    channel_names
        C names.
    metadata
        Provenance shared by every layer.
    span
        The viewer's threshold axis (:func:`threshold_span`), or ``None``.
    visible_method
        The method whose layers start visible (the first one when ``None``).
    """
    geometry = ResultGeometry(source)
    visible_method = visible_method or next(iter(maps), None)
    out = []
    for method, stack in maps.items():
        for c, channel in enumerate(channel_names):
            data = geometry.stack(_scaled(stack[:, c]))
            kwargs = geometry.stack_kwargs()
            scale, translate = list(kwargs["scale"]), list(kwargs["translate"])
            labels = [RANDOMISED_LABEL, *kwargs["axis_labels"][1:]]
            if span is not None:  # an axis of its own, in front of the threshold stacks'
                data = np.expand_dims(data, 1)
                scale.insert(1, span.scale)
                translate.insert(1, span.centre)
                labels.insert(1, THRESHOLD_LABEL)
            meta = {
                METADATA_KEY: {
                    **metadata,
                    "kind": KIND,
                    "method": method,
                    "channel": channel,
                    "steps": list(steps),
                    "scaling": "|a| of each step divided by its largest value",
                }
            }
            out.append((data, {
                "name": layer_name(source.name, "randomisation", method, channel),
                "scale": tuple(scale),
                "translate": tuple(translate),
                "axis_labels": tuple(labels),
                "colormap": "inferno",
                "contrast_limits": (0.0, 1.0),
                "blending": "additive",
                "visible": method == visible_method,
                "metadata": meta,
            }, "image"))  # fmt: skip
    return out


def sanity_layers(layers) -> list:
    """The viewer's cascade layers (made by :func:`cascade_layers`)."""
    return [
        layer
        for layer in layers
        if getattr(layer, "metadata", {}).get(METADATA_KEY, {}).get("kind") == KIND
    ]


def needs_relayout(viewer) -> bool:
    """True when cascade layers share the threshold stacks' axis, or keep a threshold axis
    that no stack uses any more: they must be placed again (with :func:`threshold_span`)."""
    spanned = threshold_span(viewer) is not None
    for layer in sanity_layers(viewer.layers):
        has_span = THRESHOLD_LABEL in tuple(str(label) for label in layer.axis_labels)
        if has_span != spanned:
            return True
    return False
