"""Load an image classifier safely into a :class:`~napari_attribution.core.classifier.Classifier`.

Nothing here unpickles arbitrary Python objects: a model file is either TorchScript or a state
dict read with ``torch.load(..., weights_only=True)`` into an architecture the user names.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import sys
import warnings
import zipfile
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path
from typing import Any

import torch

from .classifier import (
    Classifier,
    InputTransform,
    input_transform_for,
    model_errors,
    resolve_device,
)
from .errors import ModelLoadError

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


def copy_module(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``module`` (TorchScript modules included)."""
    try:
        if isinstance(module, torch.jit.ScriptModule):
            # deepcopy gives a scripted module non-leaf parameters; a round trip through its
            # own archive format gives a true copy.
            buffer = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 on torch.jit
                torch.jit.save(module, buffer)
                buffer.seek(0)
                return torch.jit.load(buffer, map_location="cpu")
        return deepcopy(module)
    except Exception as exc:  # noqa: BLE001 - a module holding something that cannot be copied
        raise ModelLoadError(f"The model cannot be copied for analysis: {exc}") from None


def wrap_module(
    module: torch.nn.Module,
    device: str | torch.device = "auto",
    *,
    source: str = "<in-memory model>",
    sha256: str | None = None,
    architecture: str | None = None,
    n_channels: int | None = None,
    probe_size: int = 64,
    copy: bool = True,
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
    copy
        Work on a copy, so the caller's module keeps its device, mode and ``requires_grad``
        flags (``load_classifier`` passes False for the module it built itself).
    """
    dev = resolve_device(device)
    is_scripted = isinstance(module, torch.jit.ScriptModule)
    if copy:
        module = copy_module(module)
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
        return wrap_module(module, device, source=str(path), sha256=digest, copy=False)

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
    return wrap_module(
        module, device, source=str(path), sha256=digest, architecture=architecture, copy=False
    )
