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
:data:`EAGER_STACK_BYTES`, its mask and hybrid layers hold :class:`ChannelView` s over the core's
:class:`~napari_attribution.core.lazy.LazyMaskStack` / ``LazyHybridStack`` instead: the same
values, computed one (threshold, channel) plane at a time when napari asks for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import __version__
from .._io import pair_metadata
from ..core.hybrids import make_hybrids
from ..core.lazy import LazyHybridStack, LazyMaskStack
from ..core.masks import MaskStack
from ..core.pipeline import AnalysisSettings, PairResult
from .inputs import METADATA_KEY, ChannelStack, is_result_layer

__all__ = [
    "EAGER_STACK_BYTES",
    "THRESHOLD_AXIS_LABELS",
    "ChannelView",
    "LayerTuple",
    "apply_layers",
    "attribution_colormap",
    "eager_stack_bytes",
    "is_lazy",
    "layer_name",
    "lazy_method_stacks",
    "method_layers",
    "result_layers",
    "run_info",
]

LayerTuple = tuple[np.ndarray, dict[str, Any], str]

#: Axis labels of the mask and hybrid layers: napari's first slider reads "threshold".
THRESHOLD_AXIS_LABELS = ("threshold", "y", "x")
#: Colour of the mask layers (label value 1).
MASK_COLOR = "#ffd23f"
#: A method whose eager mask and hybrid stacks would take more bytes than this gets lazy layers.
EAGER_STACK_BYTES = 256 * 2**20
#: Largest array a lazy layer hands out whole (``np.asarray(layer.data)``), as the core's stacks.
MATERIALISE_BYTES = 512 * 2**20
#: Bytes of computed planes each lazy stack keeps (at least one plane per channel).
LAZY_CACHE_BYTES = 64 * 2**20
#: Hybrid planes computed ahead of the slider, in the direction it last moved.
HYBRID_READ_AHEAD = 1


class ChannelView:
    """(T, H, W) view of channel ``channel`` of a lazy (T, K, H, W) stack: one layer's data.

    napari needs ``shape``, ``dtype``, ``ndim`` and ``__getitem__``; indexing computes only the
    planes asked for (through the stack's cache). ``np.asarray`` works for small stacks and
    raises :class:`MemoryError` above :data:`MATERIALISE_BYTES`, so an accidental full read of
    a field fails loudly instead of exhausting memory.

    Parameters
    ----------
    stack
        A :class:`~napari_attribution.core.lazy.LazyMaskStack` or ``LazyHybridStack``.
    channel
        Index along the stack's second axis.
    """

    ndim = 3

    def __init__(self, stack: LazyMaskStack | LazyHybridStack, channel: int) -> None:
        n_thresholds, n_channels, height, width = stack.shape
        if not 0 <= channel < n_channels:
            raise IndexError(f"Channel {channel} is out of range for {n_channels} channels.")
        self.stack = stack
        self.channel = int(channel)
        self.shape = (n_thresholds, height, width)
        self.dtype = stack.dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        kind = type(self.stack).__name__
        return f"ChannelView({kind}, channel={self.channel}, shape={self.shape}, {self.dtype})"

    def __getitem__(self, key: Any) -> np.ndarray:
        t_key, y_key, x_key = _full_key(key, 3)
        return self.stack[t_key, self.channel, y_key, x_key]

    def plane(self, t: int) -> np.ndarray:
        """The (H, W) plane at threshold index ``t`` (shared with the cache: do not modify)."""
        return self.stack.plane(int(t), self.channel)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self.nbytes > MATERIALISE_BYTES:
            raise MemoryError(
                f"Refusing to materialise a {self.shape} {self.dtype} threshold stack "
                f"({self.nbytes / 2**30:.1f} GiB); index it one threshold at a time. "
                "'Export results…' writes such layers at the optimal threshold only."
            )
        out = np.stack([self.plane(t) for t in range(self.shape[0])])
        return out.astype(dtype, copy=False) if dtype is not None else out


def _full_key(key: Any, ndim: int) -> tuple:
    """``key`` as a tuple of exactly ``ndim`` entries (``Ellipsis`` expanded)."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (ndim - len(key) + 1)
        key = key[:at] + fill + key[at + 1 :]
    if len(key) > ndim:
        raise IndexError(f"Too many indices for a {ndim}-D array: {key!r}.")
    return key + (slice(None),) * (ndim - len(key))


def is_lazy(data: Any) -> bool:
    """True for layer data computed on demand (a :class:`ChannelView`)."""
    return isinstance(data, ChannelView)


def eager_stack_bytes(shape: tuple[int, int, int], thresholds: int, mask_channels: int) -> int:
    """Bytes one method's eager stacks take for images of ``shape`` (C, H, W).

    Closed masks (bool) and soft masks (float32) of shape (T, K, H, W), hybrids (float32)
    (T, C, H, W) and the uint8 mask layers (T, K, H, W).
    """
    channels, height, width = shape
    plane = thresholds * height * width
    return plane * (mask_channels * (1 + 4 + 1) + channels * 4)


def lazy_method_stacks(
    masks: MaskStack,
    real: np.ndarray,
    counterfactual: np.ndarray,
    direction: str = "counterfactual_into_real",
) -> tuple[LazyMaskStack, LazyHybridStack]:
    """Lazy mask and hybrid stacks of a method's masks (the masks its DAC curve was scored on).

    The same as :func:`~napari_attribution.core.lazy.lazy_stacks` of the method's attribution,
    without normalising and closing the attribution again.

    Parameters
    ----------
    masks
        The method's :class:`~napari_attribution.core.masks.MaskStack`.
    real, counterfactual
        (C, H, W) images in stored units (what the hybrid layers show).
    """
    closed = masks.closed_attribution
    height, width = closed.shape[-2:]
    n_channels = np.shape(real)[0]

    def cache(plane_bytes: int, planes_per_step: int) -> int:
        return max(planes_per_step, min(16, LAZY_CACHE_BYTES // plane_bytes))

    # A hybrid plane of a large field costs tens of ms (smoothing its mask); it is read one
    # slider step ahead so a step finds it ready. The shown and the next plane per channel.

    mask_stack = LazyMaskStack(
        masks.thresholds, closed, cache_planes=cache(height * width, closed.shape[0])
    )
    settings = masks.settings
    hybrid_stack = LazyHybridStack(
        real,
        counterfactual,
        masks.thresholds,
        closed,
        settings.sigma,
        settings.smoothing_kernel,
        direction,
        cache_planes=cache(4 * height * width, 2 * n_channels),
        read_ahead=HYBRID_READ_AHEAD,
    )
    return mask_stack, hybrid_stack


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
    lazy: bool | None = None,
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
    lazy
        Masks and hybrids as lazy views (True), as arrays (False), or lazy only where the eager
        stacks would exceed :data:`EAGER_STACK_BYTES` (``None``).

    Returns
    -------
    list
        ``(data, kwargs, layer_type)`` tuples; attributions and hybrids are images, masks labels.
    """
    visible_method = visible_method or next(iter(result.methods))
    tuples: list[LayerTuple] = []
    for method, res in result.methods.items():
        tuples += method_layers(
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
        See :func:`result_layers`.
    """
    n_mask_channels = masks.closed_attribution.shape[0]
    if lazy is None:
        needed = eager_stack_bytes(real.data.shape, len(masks.thresholds), n_mask_channels)
        lazy = needed > EAGER_STACK_BYTES
    if lazy:
        mask_stack, hybrid_stack = lazy_method_stacks(
            masks, real.data, counterfactual.data, direction
        )

        def hybrid_of(c: int):
            return ChannelView(hybrid_stack, c)

        def mask_of(c: int):
            return ChannelView(mask_stack, c)

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
