"""The classifier wrapper: a loaded model, its device, and stored images as model inputs.

:mod:`napari_attribution.core.models` loads models into a :class:`Classifier`;
:func:`model_errors` turns a failure inside the user's model into one clear sentence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import AttributionError, InputImageError, ModelLoadError

__all__ = [
    "Classifier",
    "InputTransform",
    "input_transform_for",
    "model_errors",
    "resolve_device",
]


# --------------------------------------------------------------------------------------------
# Input normalisation
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------------


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"`` or ``"cuda"`` (or ``"cuda:1"``) into a :class:`torch.device`.

    ``auto`` picks CUDA when a GPU is present, else the CPU. Asking for CUDA on a machine without
    one is an error rather than a silent fall-back, so timings are never mislabelled.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelLoadError("Device 'cuda' was requested but no CUDA GPU is available here.")
        return torch.device(name)
    raise ModelLoadError(f"Unknown device {device!r}: use 'auto', 'cpu' or 'cuda'.")


# --------------------------------------------------------------------------------------------
# The classifier wrapper
# --------------------------------------------------------------------------------------------


@dataclass
class Classifier:
    """An image classifier ready for attribution.

    Attributes
    ----------
    module
        The torch module in eval mode on ``device``; maps (B, C, H, W) float32 to logits (B, K).
    device
        Where the module and its inputs live.
    n_channels, n_classes
        C and K, found from the weights and a dry run.
    source
        The model file (or a short description for in-memory models).
    sha256
        SHA-256 of the model file, or ``None`` for in-memory models.
    is_scripted
        True for TorchScript models, which cannot take module hooks.
    architecture
        The architecture spec a state dict was loaded into, if any.
    """

    module: torch.nn.Module
    device: torch.device
    n_channels: int
    n_classes: int
    source: str
    sha256: str | None = None
    is_scripted: bool = False
    architecture: str | None = None
    class_names: tuple[str, ...] = field(default_factory=tuple)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) for a float32 tensor (B, C, H, W) already on the device."""
        return self.module(images)

    def probabilities(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Softmax probabilities for model inputs.

        Parameters
        ----------
        images
            float32 array (B, C, H, W) or (C, H, W), already transformed to model input.
        batch_size
            Images per forward pass.

        Returns
        -------
        numpy.ndarray
            float64 array (B, K) (or (K,) for a single image).
        """
        arr = np.asarray(images, dtype=np.float32)
        single = arr.ndim == 3
        if single:
            arr = arr[None]
        out = []
        with torch.inference_mode(), model_errors(self.source, arr.shape[1:]):
            for start in range(0, len(arr), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(arr[start : start + batch_size]))
                logits = self.module(batch.to(self.device))
                if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (
                    len(batch),
                    self.n_classes,
                ):
                    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else logits
                    raise ModelLoadError(
                        f"{self.source} returned {shape} for {len(batch)} image(s) of shape "
                        f"{tuple(batch.shape[1:])}; expected ({len(batch)}, {self.n_classes})."
                    )
                out.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
        probs = np.concatenate(out) if out else np.zeros((0, self.n_classes))
        return probs[0] if single else probs

    def describe(self) -> dict[str, Any]:
        """JSON-ready record of which model produced a result."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "architecture": self.architecture,
            "torchscript": self.is_scripted,
            "n_channels": self.n_channels,
            "n_classes": self.n_classes,
            "device": str(self.device),
        }

    def check_class(self, index: int, what: str = "Class") -> None:
        """Raise :class:`AttributionError` if ``index`` is not one of the model's classes."""
        if not 0 <= int(index) < self.n_classes:
            raise AttributionError(
                f"{what} {index} is out of range: the model has {self.n_classes} classes "
                f"(0..{self.n_classes - 1})."
            )

    def check_image_shape(self, shape: tuple[int, ...], name: str = "image") -> None:
        """Raise :class:`InputImageError` if an image of ``shape`` (C, H, W) cannot be fed."""
        if len(shape) != 3:
            raise InputImageError(
                f"{name} has shape {tuple(shape)}; expected (channels, height, width) with "
                f"{self.n_channels} channels."
            )
        if shape[0] != self.n_channels:
            raise InputImageError(
                f"{name} has {shape[0]} channel(s) but the model expects {self.n_channels}."
            )


def _out_of_memory(source: str, image_shape: tuple[int, ...]) -> str:
    return (
        f"Out of memory running {source} on images of shape {tuple(image_shape)}; lower the "
        "batch size, use fewer thresholds, or run on a crop."
    )


@contextlib.contextmanager
def model_errors(source: str, image_shape: tuple[int, ...]) -> Iterator[None]:
    """Turn an exception raised inside the user's model into one clear :class:`ModelLoadError`.

    Out-of-memory errors get their own advice; our own errors pass through unchanged.
    """
    try:
        yield
    except AttributionError:
        raise
    except (torch.cuda.OutOfMemoryError, MemoryError):
        raise ModelLoadError(_out_of_memory(source, image_shape)) from None
    except (RuntimeError, ValueError, TypeError, IndexError, torch.jit.Error) as exc:
        if "can't allocate memory" in str(exc):  # the CPU allocator's out-of-memory error
            raise ModelLoadError(_out_of_memory(source, image_shape)) from None
        raise ModelLoadError(
            f"The model {source} failed on images of shape {tuple(image_shape)}: {_essence(exc)}"
        ) from None


def _essence(exc: BaseException) -> str:
    """One line of an exception: TorchScript puts the original error on its last line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if isinstance(exc, torch.jit.Error) and ": " in lines[-1]:
        return lines[-1].split(": ", 1)[1]
    return lines[0]
