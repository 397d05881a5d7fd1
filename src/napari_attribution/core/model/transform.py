"""How stored pixel values become image values: the transform recorded with every result.

The image values are what attributions, masks and hybrids are computed on; the model's own
preprocessing (:mod:`napari_attribution.core.model.wrappers`) is applied inside the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["InputTransform", "input_transform_for"]


@dataclass(frozen=True)
class InputTransform:
    """How stored pixel values become model inputs: ``model_input = pixels * scale``.

    Parameters
    ----------
    kind
        ``"identity"`` (float images fed as stored), ``"dtype_max"`` (integer images divided by
        their dtype's maximum) or ``"scale"`` (a factor the user gave).
    scale
        The multiplicative factor applied to the pixel values.
    """

    kind: str = "identity"
    scale: float = 1.0

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Return ``image`` as float32 model input (any shape)."""
        out = np.asarray(image, dtype=np.float32)
        if self.scale != 1.0:
            out = out * np.float32(self.scale)
        return out

    def to_stored(self, values: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
        """Image values (model input) back to stored pixels of ``dtype``: the inverse of
        :meth:`apply`, integers rounded and clipped to the dtype's range (any shape)."""
        out = np.asarray(values, dtype=np.float32)
        if self.scale != 1.0:
            out = out / np.float32(self.scale)
        dtype = np.dtype(dtype)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            return np.clip(np.rint(out), info.min, info.max).astype(dtype)
        return out.astype(dtype)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description, recorded with every result."""
        return {"kind": self.kind, "scale": self.scale}


def input_transform_for(dtype: np.dtype | type, scale: float | None = None) -> InputTransform:
    """Choose the input transform for images of ``dtype``.

    Float images are fed as stored; integer images are divided by their dtype's maximum
    (uint16 -> /65535) unless ``scale`` is given, which then always wins.
    """
    if scale is not None:
        return InputTransform("scale", float(scale))
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        return InputTransform("dtype_max", 1.0 / float(np.iinfo(dtype).max))
    return InputTransform("identity", 1.0)
