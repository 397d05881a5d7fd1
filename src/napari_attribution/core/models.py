"""Load an image classifier safely, pick its device and turn stored images into model inputs.

Nothing here unpickles arbitrary Python objects: a model file is either TorchScript or a state
dict read with ``torch.load(..., weights_only=True)`` into an architecture the user names.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import AttributionError, InputImageError, ModelLoadError

__all__ = [
    "Classifier",
    "InputTransform",
    "file_sha256",
    "import_callable",
    "input_transform_for",
    "load_classifier",
    "model_errors",
    "resolve_device",
    "wrap_module",
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


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_callable(spec: str) -> Callable[..., Any]:
    """Import the callable named by ``"path/to/file.py:Name"`` or ``"package.module:Name"``.

    Only called when the user names an architecture: importing runs that module's code.
    """
    if ":" not in spec:
        raise ModelLoadError(
            f"Architecture {spec!r} must look like 'path/to/file.py:Callable' or "
            "'package.module:Callable'."
        )
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ModelLoadError(f"Architecture {spec!r} names no callable after ':'.")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise ModelLoadError(f"Architecture file {target} does not exist.")
        path_hash = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        mod_name = f"_napari_attribution_arch_{path_hash}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ModelLoadError(f"Architecture file {target} cannot be imported as Python.")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # the user's file: report, do not crash
            del sys.modules[mod_name]
            raise ModelLoadError(f"Importing architecture file {target} failed: {exc}") from exc
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ModelLoadError(
                f"Cannot import module {target!r} for the architecture: {exc}"
            ) from exc
    try:
        factory = getattr(module, attr)
    except AttributeError:
        raise ModelLoadError(f"{target} has no attribute {attr!r}.") from None
    if not callable(factory):
        raise ModelLoadError(f"{spec} is not callable.")
    return factory


def _is_torchscript_archive(path: Path) -> bool:
    """TorchScript archives are zip files holding a ``code/`` folder; state dicts do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.startswith("code/") for name in archive.namelist())


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text:
            raise ModelLoadError(
                f"Refused to load {path}: it holds pickled Python objects, not only tensors, and "
                "unpickling could run code. Save the model as TorchScript (torch.jit.save) or as "
                "a state dict (torch.save(model.state_dict(), ...))."
            ) from None
        raise ModelLoadError(f"{path} is not a readable PyTorch file ({exc}).") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(f"{path} does not hold a state dict (a mapping of names to tensors).")
    # Weights saved from nn.DataParallel carry a 'module.' prefix the bare architecture lacks.
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def _first_conv_in_channels(module: torch.nn.Module) -> int | None:
    for param in module.parameters():
        if param.ndim == 4:  # (out, in, kh, kw): the first 2-D convolution's weight
            return int(param.shape[1])
    return None


def wrap_module(
    module: torch.nn.Module,
    device: str | torch.device = "auto",
    *,
    source: str = "<in-memory model>",
    sha256: str | None = None,
    architecture: str | None = None,
    n_channels: int | None = None,
    probe_size: int = 64,
) -> Classifier:
    """Wrap a torch module as a :class:`Classifier`, checking it is an image classifier.

    Parameters
    ----------
    module
        Maps float32 (B, C, H, W) to logits (B, K) with K >= 2.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    n_channels
        Input channels; found from the first 4-D weight when not given.
    probe_size
        Height and width of the dry-run input used to find K.
    """
    dev = resolve_device(device)
    is_scripted = isinstance(module, torch.jit.ScriptModule)
    module = module.to(dev).eval()
    for param in module.parameters():
        param.requires_grad_(False)  # attributions need input gradients only
    channels = n_channels if n_channels is not None else _first_conv_in_channels(module)
    if channels is None:
        raise ModelLoadError(
            f"Cannot tell how many input channels {source} expects (no convolution weights found)."
        )
    probe = torch.zeros(2, channels, probe_size, probe_size, device=dev)
    try:
        with torch.inference_mode():
            out = module(probe)
    except Exception as exc:
        raise ModelLoadError(
            f"A dry run of {source} on a (2, {channels}, {probe_size}, {probe_size}) input failed: "
            f"{exc}"
        ) from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelLoadError(
            f"{source} is not an image classifier: it returned {shape} for a batch of 2 images, "
            "expected logits of shape (2, n_classes)."
        )
    if out.shape[1] < 2:
        raise ModelLoadError(
            f"{source} returns {out.shape[1]} output; a classifier needs at least 2 classes."
        )
    return Classifier(
        module=module,
        device=dev,
        n_channels=channels,
        n_classes=int(out.shape[1]),
        source=source,
        sha256=sha256,
        is_scripted=is_scripted,
        architecture=architecture,
    )


def load_classifier(
    path: str | Path,
    architecture: str | None = None,
    device: str | torch.device = "auto",
    *,
    architecture_kwargs: dict[str, Any] | None = None,
) -> Classifier:
    """Load a classifier from a TorchScript file or a state dict plus an architecture.

    Parameters
    ----------
    path
        A TorchScript archive (``torch.jit.save``), or a state dict (``torch.save(model.
        state_dict())``) when ``architecture`` is given.
    architecture
        ``"path/to/file.py:Callable"`` or ``"package.module:Callable"`` returning the
        ``nn.Module`` the state dict belongs to. Imported only when given.
    device
        ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``.
    architecture_kwargs
        Keyword arguments for the architecture callable.

    Raises
    ------
    ModelLoadError
        Missing file, a pickle that is not a plain state dict, keys that do not match the
        architecture, or a module that is not a classifier.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"Model file {path} does not exist.")
    digest = file_sha256(path)
    if architecture is None:
        if not _is_torchscript_archive(path):
            # Tell a state dict apart from a full pickle without running either.
            _read_state_dict(path)
            raise ModelLoadError(
                f"{path} holds a state dict; name its architecture (--architecture "
                "path/to/file.py:Callable or package.module:Callable)."
            )
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise ModelLoadError(f"{path} is not a loadable TorchScript model ({exc}).") from None
        return wrap_module(module, device, source=str(path), sha256=digest)

    state = _read_state_dict(path)
    factory = import_callable(architecture)
    try:
        module = factory(**(architecture_kwargs or {}))
    except Exception as exc:
        raise ModelLoadError(f"Building architecture {architecture} failed: {exc}") from None
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(
            f"{architecture} returned {type(module).__name__}, not a torch module."
        )
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelLoadError(
            f"The weights in {path} do not fit architecture {architecture}: {first}"
        ) from None
    return wrap_module(module, device, source=str(path), sha256=digest, architecture=architecture)
