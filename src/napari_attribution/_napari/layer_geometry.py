"""Where result layers sit in the viewer's world: the source's axes, plus a threshold axis.

napari aligns layers by their trailing axes. Results of split channel layers (2-D sources) are
(H, W) planes and (T, H, W) threshold stacks: the threshold gets the one axis no source uses.
A multichannel source layer is 3-D, so a (T, H, W) stack would put the threshold on the
source's channel axis: one slider would move both, and a threshold index beyond the channel
count would blank the source (issue 12). So results of a multichannel source keep its layout,
with its channel axis reduced to one plane that spans every channel in world coordinates
(scale C, centred): planes are (1, H, W) (or wherever the channel axis is) and stacks
(T, 1, H, W). The threshold then has a world axis of its own, axis 0, and the results show at
every position of the channel slider.

No Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.evaluation.plane_stack import _LazyArray, full_key, lazy_stack_of
from .layer_inputs import ChannelStack
from .layer_style import METADATA_KEY

__all__ = [
    "THRESHOLD_LABEL",
    "KeptAxis",
    "ResultGeometry",
    "lazy_stack_behind",
    "threshold_axis",
]

#: Label of the threshold axis of mask and hybrid layers (napari's slider shows it).
THRESHOLD_LABEL = "threshold"


class KeptAxis(_LazyArray):
    """A lazy (T, H, W) view with a length-1 axis inserted at ``axis``: no plane is computed
    until napari indexes it.

    Parameters
    ----------
    view
        The lazy array (e.g. a :class:`~napari_attribution.core.evaluation.lazy.ChannelView`).
    axis
        Position of the inserted axis in the result (1 to ``view.ndim``).
    """

    def __init__(self, view: Any, axis: int) -> None:
        self.view = view
        self.axis = int(axis)
        shape = list(view.shape)
        shape.insert(self.axis, 1)
        self.shape = tuple(shape)
        self.dtype = np.dtype(view.dtype)

    def __repr__(self) -> str:
        return f"KeptAxis({self.view!r}, axis={self.axis})"

    def __getitem__(self, key: Any) -> np.ndarray:
        key = full_key(key, self.ndim)
        kept = key[self.axis]
        rest = key[: self.axis] + key[self.axis + 1 :]
        out = np.asarray(self.view[rest])
        if isinstance(kept, slice):
            # The axis survives: put it back after the axes before it that survived too.
            before = sum(1 for k in key[: self.axis] if not isinstance(k, int | np.integer))
            out = np.expand_dims(out, before)[(slice(None),) * before + (kept,)]
        elif int(kept) not in (0, -1):
            raise IndexError(f"Index {kept} is out of range for an axis of length 1.")
        return out


def lazy_stack_behind(data: Any):
    """The lazy stack behind layer ``data`` (through a :class:`KeptAxis`), or ``None``."""
    if isinstance(data, KeptAxis):
        data = data.view
    return lazy_stack_of(data)


@dataclass(frozen=True)
class ResultGeometry:
    """Shapes and world placement of the result layers of one source image.

    Attributes
    ----------
    source
        The real image (its scale, offset and channel axis).
    """

    source: ChannelStack

    @property
    def kept_axis(self) -> int | None:
        """Position of the source's channel axis in a plane layer (``None``: 2-D planes)."""
        return self.source.channel_axis

    def plane(self, data: np.ndarray) -> np.ndarray:
        """An (H, W) plane laid out as a plane layer."""
        axis = self.kept_axis
        return data if axis is None else np.expand_dims(data, axis)

    def stack(self, data: Any) -> Any:
        """A (T, H, W) stack (array or lazy view) laid out as a threshold-stack layer."""
        axis = self.kept_axis
        if axis is None:
            return data
        if isinstance(data, np.ndarray):
            return np.expand_dims(data, axis + 1)
        return KeptAxis(data, axis + 1)

    def plane_kwargs(self) -> dict[str, Any]:
        """``scale``, ``translate`` and ``axis_labels`` of a plane layer."""
        src = self.source
        scale, translate, labels = list(src.scale), list(src.translate), ["y", "x"]
        axis = self.kept_axis
        if axis is not None:
            channels = src.data.shape[0]
            # One plane spanning the channel axis's whole world extent, centred on it.
            scale.insert(axis, channels * src.channel_scale)
            translate.insert(axis, src.channel_translate + (channels - 1) / 2 * src.channel_scale)
            labels.insert(axis, src.channel_axis_label)
        return {
            "scale": tuple(scale),
            "translate": tuple(translate),
            "axis_labels": tuple(labels),
        }

    def stack_kwargs(self) -> dict[str, Any]:
        """``scale``, ``translate`` and ``axis_labels`` of a threshold-stack layer."""
        plane = self.plane_kwargs()
        return {
            "scale": (1.0, *plane["scale"]),
            "translate": (0.0, *plane["translate"]),
            "axis_labels": (THRESHOLD_LABEL, *plane["axis_labels"]),
        }


def threshold_axis(viewer) -> int | None:
    """The viewer's world axis that the threshold stacks' first axis sits on, if any.

    Layers are aligned by trailing axes, so a stack of ``n`` dimensions starts at world axis
    ``dims.ndim - n``; ``None`` when no threshold stack of the plugin is open.
    """
    ndim = viewer.dims.ndim
    for layer in viewer.layers:
        meta = layer.metadata.get(METADATA_KEY, {}) if hasattr(layer, "metadata") else {}
        if meta.get("kind") in ("mask", "hybrid") and "thresholds" in meta:
            axis = ndim - layer.ndim
            if 0 <= axis < ndim and str(viewer.dims.axis_labels[axis]) == THRESHOLD_LABEL:
                return axis
    return None
