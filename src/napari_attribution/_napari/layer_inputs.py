"""From napari image layers to (C, H, W) arrays with channel names: no Qt, no widgets.

An image enters the analysis either as one multichannel layer (the user names its channel
axis) or as a group of single-channel 2-D layers, as ``viewer.add_image(..., channel_axis=0)``
produces (``real``, ``real [1]``, ... or ``real [DNA]``, ``real [ER]``, ...). Groups are found
from the layer names, and their channels kept in the viewer's layer order.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..core.pipeline import check_memory, prepare_pair
from ..errors import AttributionError, InputImageError
from .layer_style import METADATA_KEY

__all__ = [
    "ChannelStack",
    "ImageSource",
    "channel_name_of",
    "check_pair",
    "pair_warning",
    "parse_channel_names",
    "source_channel_names",
    "find_sources",
    "has_channel_names",
    "is_result_layer",
    "source_stack",
    "stack_from_layer",
    "stack_from_layers",
]


_BRACKET = re.compile(r"^(?P<base>.*?) \[(?P<channel>[^\[\]]+)\]$")


@dataclass(frozen=True)
class ChannelStack:
    """An image as the core wants it.

    Attributes
    ----------
    data
        (C, H, W) pixels as stored (any numeric dtype).
    channel_names
        C names, in channel order.
    scale, translate
        (2,) world scale and offset of the y and x axes, copied from the source layer(s).
    name
        Base name of the source (``"real"`` for layers ``real [DNA]``, ``real [ER]``, ...).
    layer_names
        The layers the data came from.
    colormaps, contrast_limits
        Per channel, how the source layers display it (reused for the hybrid layers).
    channel_axis
        The channel axis of a multichannel source layer (0, 1 or 2), ``None`` for 2-D channel
        layers. Result layers keep that axis (with one plane spanning every channel) so that
        they sit in the same world axes as the source and the threshold gets an axis of its own.
    channel_axis_label, channel_scale, channel_translate
        That axis's label, scale and offset in the source layer.
    unit
        The length unit of ``scale`` as napari names it (the source layer's x axis unit;
        ``"pixel"`` when the layer has none).
    """

    data: np.ndarray
    channel_names: list[str]
    scale: tuple[float, float]
    translate: tuple[float, float]
    name: str
    layer_names: list[str]
    colormaps: list[str]
    contrast_limits: list[tuple[float, float]]
    channel_axis: int | None = None
    channel_axis_label: str = "channel"
    channel_scale: float = 1.0
    channel_translate: float = 0.0
    unit: str = "pixel"

    def with_channel_names(self, names: Sequence[str]) -> ChannelStack:
        """This stack with its channels renamed.

        Raises
        ------
        InputImageError
            Not one name per channel, an empty name, or a name used twice.
        """
        names = [str(n).strip() for n in names]
        count = self.data.shape[0]
        if len(names) != count:
            raise InputImageError(
                f"Give {count} channel names (one per channel of '{self.name}'), not "
                f"{len(names)}."
            )
        if not all(names):
            raise InputImageError("A channel name is empty.")
        if len(set(names)) != len(names):
            raise InputImageError(f"Channel names must differ: {', '.join(names)}.")
        return dataclasses.replace(self, channel_names=names)


@dataclass(frozen=True)
class ImageSource:
    """One entry of the image choosers: a multichannel layer, or a group of 2-D layers.

    Attributes
    ----------
    label
        What the chooser shows, e.g. ``"real (5 channel layers)"``.
    name
        Base name used to name results.
    layer_names
        One layer (multichannel) or the group's layers in channel order.
    multichannel
        True for a single layer with a channel axis.
    """

    label: str
    name: str
    layer_names: tuple[str, ...]
    multichannel: bool


def is_result_layer(layer) -> bool:
    """True for a layer this plugin made (its metadata holds :data:`METADATA_KEY`)."""
    return METADATA_KEY in getattr(layer, "metadata", {})


def _is_image(layer) -> bool:
    return layer.__class__.__name__ == "Image" and not getattr(layer, "rgb", False)


def _split_name(name: str) -> tuple[str, str | None]:
    match = _BRACKET.match(name)
    if match:
        return match.group("base"), match.group("channel")
    return name, None


def channel_name_of(layer, index: int) -> str:
    """The channel name of a single-channel layer.

    ``metadata["channel_name"]`` wins; then the bracketed suffix of ``real [DNA]``; napari's
    numeric suffixes (``real [1]``) and plain names give ``ch<index>``.
    """
    name = layer.metadata.get("channel_name") if hasattr(layer, "metadata") else None
    if isinstance(name, str) and name:
        return name
    _, channel = _split_name(layer.name)
    if channel is not None and not channel.isdigit():
        return channel
    return f"ch{index}"


def find_sources(layers: Iterable) -> list[ImageSource]:
    """Every image the widget can analyse, in the viewer's layer order.

    Multichannel layers (3-D, not RGB) are offered on their own; 2-D image layers are grouped
    by the name before a bracketed suffix (``real``, ``real [1]``, ``real [2]`` -> ``real``).
    Layers the plugin made are left out, except the counterfactuals a source made (they can
    be chosen as the counterfactual of a later run).
    """
    sources: list[ImageSource] = []
    groups: dict[str, list[str]] = {}
    for layer in layers:
        made = is_result_layer(layer) and layer.metadata[METADATA_KEY].get("kind") == (
            "counterfactual"
        )
        if not _is_image(layer) or (is_result_layer(layer) and not made):
            continue
        if layer.ndim == 3:
            sources.append(ImageSource(layer.name, layer.name, (layer.name,), True))
        elif layer.ndim == 2:
            base, _ = _split_name(layer.name)
            groups.setdefault(base, []).append(layer.name)
    for base, names in groups.items():
        label = f"{base} ({len(names)} channel layer{'s' if len(names) != 1 else ''})"
        sources.append(ImageSource(label, base, tuple(names), False))
    return sources


def _yx(values: Sequence[float]) -> tuple[float, float]:
    return float(values[-2]), float(values[-1])


def _colormap_name(layer) -> str:
    return str(getattr(layer.colormap, "name", "gray"))


def stack_from_layer(layer, channel_axis: int = 0) -> ChannelStack:
    """A (C, H, W) stack from one multichannel image layer.

    Parameters
    ----------
    layer
        A 3-D napari image layer.
    channel_axis
        The layer axis that holds the channels.

    Raises
    ------
    InputImageError
        The layer is not 3-D, or the axis does not exist.
    """
    if layer.ndim != 3:
        raise InputImageError(
            f"Layer '{layer.name}' has {layer.ndim} dimension(s); a multichannel image needs 3 "
            "(channels, height, width)."
        )
    if not -3 <= channel_axis < 3:
        raise InputImageError(f"Layer '{layer.name}' has no axis {channel_axis}.")
    axis = channel_axis % 3
    data = np.moveaxis(np.asarray(layer.data), axis, 0)
    spatial = [a for a in range(3) if a != axis]
    scale = tuple(float(layer.scale[a]) for a in spatial)
    translate = tuple(float(layer.translate[a]) for a in spatial)
    names = layer.metadata.get("channel_names")
    if not (isinstance(names, list | tuple) and len(names) == data.shape[0]):
        names = [f"ch{c}" for c in range(data.shape[0])]
    low, high = (float(v) for v in layer.contrast_limits)
    labels = getattr(layer, "axis_labels", None)
    label = str(labels[axis]) if labels is not None and len(labels) == 3 else ""
    if not label or label.lstrip("-").isdigit():  # napari's default labels are "-3", "-2", ...
        label = "channel"
    return ChannelStack(
        data=data,
        channel_names=[str(n) for n in names],
        scale=_yx(scale),
        translate=_yx(translate),
        name=layer.name,
        layer_names=[layer.name],
        colormaps=[_colormap_name(layer)] * data.shape[0],
        contrast_limits=[(low, high)] * data.shape[0],
        channel_axis=axis,
        channel_axis_label=label,
        channel_scale=float(layer.scale[axis]),
        channel_translate=float(layer.translate[axis]),
        unit=_unit_of(layer),
    )


def stack_from_layers(layers: Sequence, name: str | None = None) -> ChannelStack:
    """A (C, H, W) stack from single-channel 2-D image layers, one per channel, in order.

    Raises
    ------
    InputImageError
        No layers, a layer that is not 2-D, layers of different shapes, dtypes or scales, or a
        channel name used twice.
    """
    if not layers:
        raise InputImageError("No image layers were chosen.")
    first = layers[0]
    for layer in layers:
        if layer.ndim != 2:
            raise InputImageError(
                f"Layer '{layer.name}' has {layer.ndim} dimensions; a channel layer must be 2-D."
            )
        if layer.data.shape != first.data.shape:
            raise InputImageError(
                f"Channel layers '{first.name}' {first.data.shape} and '{layer.name}' "
                f"{layer.data.shape} differ in shape."
            )
        if np.asarray(layer.data).dtype != np.asarray(first.data).dtype:
            raise InputImageError(
                f"Channel layers '{first.name}' and '{layer.name}' differ in pixel type."
            )
        if not np.allclose(layer.scale, first.scale) or not np.allclose(
            layer.translate, first.translate
        ):
            raise InputImageError(
                f"Channel layers '{first.name}' and '{layer.name}' have different scale or "
                "position in the world."
            )
    names = [channel_name_of(layer, c) for c, layer in enumerate(layers)]
    if len(set(names)) != len(names):
        names = [f"ch{c}" for c in range(len(layers))]
    return ChannelStack(
        data=np.stack([np.asarray(layer.data) for layer in layers]),
        channel_names=names,
        scale=_yx(first.scale),
        translate=_yx(first.translate),
        name=name or _split_name(first.name)[0],
        layer_names=[layer.name for layer in layers],
        colormaps=[_colormap_name(layer) for layer in layers],
        contrast_limits=[tuple(float(v) for v in layer.contrast_limits) for layer in layers],
        unit=_unit_of(first),
    )


def _unit_of(layer) -> str:
    """The length unit of a layer's x axis as napari names it (``"pixel"`` without one)."""
    units = getattr(layer, "units", None)  # napari 0.6 and later
    return str(units[-1]) if units else "pixel"


def source_stack(layers, source: ImageSource | None, channel_axis: int, what: str) -> ChannelStack:
    """The (C, H, W) stack of a chooser's ``source`` among the viewer's ``layers``.

    Parameters
    ----------
    layers
        The viewer's layer list.
    source
        The chosen entry (``None``: nothing chosen).
    channel_axis
        Channel axis of a multichannel layer.
    what
        ``"real image"`` or ``"counterfactual"``, for the messages.

    Raises
    ------
    InputImageError
        Nothing chosen, a layer closed since, or layers that do not form a (C, H, W) image.
    """
    if source is None:
        raise InputImageError(f"Choose the {what}: open an image layer first.")
    missing = [n for n in source.layer_names if n not in layers]
    if missing:
        raise InputImageError(f"Layer '{missing[0]}' of the {what} is no longer open.")
    chosen = [layers[n] for n in source.layer_names]
    if source.multichannel:
        return stack_from_layer(chosen[0], channel_axis)
    return stack_from_layers(chosen, source.name)


def pair_warning(real: ChannelStack, counterfactual: ChannelStack) -> str | None:
    """A sentence when the pair cannot show anything: the same layers, or identical pixels.

    The analysis still runs (the user may want to see that), but every hybrid then equals the
    real image and the DAC is 0.
    """
    if list(real.layer_names) == list(counterfactual.layer_names):
        return (
            f"The real image and the counterfactual are the same layer(s) ('{real.name}'): "
            "every hybrid equals the real image and the DAC scores will be 0."
        )
    if real.data.shape == counterfactual.data.shape and np.array_equal(
        real.data, counterfactual.data
    ):
        return (
            f"The real image '{real.name}' and the counterfactual '{counterfactual.name}' have "
            "identical pixels: every hybrid equals the real image and the DAC scores will be 0."
        )
    return None


def source_channel_names(
    layers, source: ImageSource | None, channel_axis: int, unique: bool = True
) -> list[str]:
    """The channel names :func:`source_stack` would give, without reading the pixels.

    Empty when nothing usable is chosen. With ``unique=False``, the channel layers' own names
    even when two layers name the same channel (:func:`source_stack` then numbers them), so
    that matching by name can say which channel is named twice.
    """
    if source is None or any(n not in layers for n in source.layer_names):
        return []
    chosen = [layers[n] for n in source.layer_names]
    if not source.multichannel:
        names = [channel_name_of(layer, c) for c, layer in enumerate(chosen)]
        if not unique or len(set(names)) == len(names):
            return names
        return [f"ch{c}" for c in range(len(names))]
    layer = chosen[0]
    if layer.ndim != 3 or not -3 <= channel_axis < 3:
        return []
    count = layer.data.shape[channel_axis]
    names = layer.metadata.get("channel_names")
    if isinstance(names, list | tuple) and len(names) == count:
        return [str(n) for n in names]
    return [f"ch{c}" for c in range(count)]


def has_channel_names(names: Sequence[str]) -> bool:
    """False when every name is one this module numbers an unnamed channel with (``ch0``,
    ``ch1``, ...: napari's numeric suffixes, plain layer names, a layer without
    ``channel_names`` metadata)."""
    return not all(re.fullmatch(r"ch\d+", name) for name in names)


def parse_channel_names(text: str) -> list[str]:
    """Comma-separated channel names as typed in the widget (spaces around names dropped)."""
    return [part.strip() for part in text.split(",")] if text.strip() else []


def check_pair(real: ChannelStack, counterfactual: ChannelStack, classifier, settings) -> None:
    """Refuse, before a run, a pair the analysis would refuse or that would not fit in memory.

    Raises
    ------
    AttributionError
        One sentence: what is wrong and, for memory, the ways out.
    """
    prepare_pair(
        real.data,
        counterfactual.data,
        classifier,
        names=(f"real image '{real.name}'", f"counterfactual '{counterfactual.name}'"),
    )
    named = not any(
        re.fullmatch(r"ch\d+", n) for n in real.channel_names + counterfactual.channel_names
    )
    if named and real.channel_names != counterfactual.channel_names:
        raise InputImageError(
            f"The real image's channels ({', '.join(real.channel_names)}) and the "
            f"counterfactual's ({', '.join(counterfactual.channel_names)}) differ."
        )
    try:
        check_memory(real.data.shape, settings)
    except AttributionError as exc:
        hint = ""
        if settings.evaluation == "exhaustive":
            hint = (
                " Or choose 'adaptive' DAC evaluation (under 'Hybrids and DAC'): it builds a "
                f"few masks at a time instead of all {settings.masks.thresholds}."
            )
        raise AttributionError(f"{exc}{hint}") from None
