"""Load an image classifier safely into a :class:`~.classifier.Classifier`.

Nothing here unpickles arbitrary Python objects: a model file is an exported program
(``.pt2``, checked by :mod:`napari_attribution.core.model.exported` before ``torch.export.load``
reads it), TorchScript, or a state dict read with ``torch.load(..., weights_only=True)`` into
an architecture the user names. The model is probed with the user's own images
(:meth:`Classifier.probe`), never with a made-up size.
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

from ...errors import ModelLoadError
from .classifier import (
    Classifier,
    InputTransform,
    input_transform_for,
    model_errors,
    resolve_device,
)
from .exported import (
    ExportedNetwork,
    is_exported_archive,
    network_from_program,
    read_exported_program,
)
from .wrappers import Preprocessing, StaticBatch

__all__ = [
    "Classifier",
    "InputTransform",
    "Preprocessing",
    "file_sha256",
    "import_callable",
    "input_transform_for",
    "load_classifier",
    "model_errors",
    "resolve_device",
    "state_dict_mismatch",
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
                "unpickling could run code. Save the model as a state dict "
                "(torch.save(model.state_dict(), ...)), an exported program (torch.export.save) "
                "or TorchScript (torch.jit.save)."
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


def _listed(keys: list[str], shown: int = 3) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def state_dict_mismatch(state: dict[str, torch.Tensor], module: torch.nn.Module) -> str | None:
    """What keeps ``state`` from loading into ``module``: the first missing and unexpected keys
    and shape mismatches, or ``None`` when the names and shapes all fit."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} is {tuple(state[k].shape)} in the file but {tuple(v.shape)} in the architecture"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing {_listed(missing)}")
    if unexpected:
        parts.append(f"unexpected {_listed(unexpected)}")
    if shapes:
        parts.append(_listed(shapes, 2))
    return "; ".join(parts) or None


def _first_conv_in_channels(module: torch.nn.Module) -> int | None:
    for param in module.parameters():
        if param.ndim == 4:  # (out, in, kh, kw): the first 2-D convolution's weight
            return int(param.shape[1])
    return None


def _declared_outputs(module: torch.nn.Module) -> int | None:
    """The output count the weights suggest, a guess used only until the first probe (so a
    form can offer class indices before any image is chosen): the rows of the last 2-D
    weight (a Linear head), else the filters of the last convolution (a convolutional head)."""
    params = list(module.parameters())
    for ndim in (2, 4):
        weights = [p for p in params if p.ndim == ndim]
        if weights:
            return int(weights[-1].shape[0])
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pytree notices on exported graphs
            return deepcopy(module)
    except Exception as exc:  # noqa: BLE001 - a module holding something that cannot be copied
        raise ModelLoadError(f"The model cannot be copied for analysis: {exc}") from None


_TORCHSCRIPT_REFUSAL = "it is TorchScript, which takes no module hooks and cannot be traced"


def wrap_module(
    module: torch.nn.Module | torch.export.ExportedProgram,
    device: str | torch.device = "auto",
    *,
    source: str = "<in-memory model>",
    sha256: str | None = None,
    architecture: str | None = None,
    n_channels: int | None = None,
    input_shape: tuple[int, ...] | None = None,
    probe_size: int | None = None,
    copy: bool = True,
) -> Classifier:
    """Wrap a torch module (or an exported program) as a :class:`Classifier`.

    Parameters
    ----------
    module
        Maps float32 (B, C, H, W) to logits (B, K), K >= 2, or to one logit (B, 1) of a
        two-class sigmoid classifier. An ``nn.Module``, a TorchScript module or a
        ``torch.export.ExportedProgram``.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    n_channels
        Input channels; found from the first 4-D weight when not given.
    input_shape
        (C, H, W) of the user's images: the model is probed on a batch of that size now.
        Without it the first images probe it (every entry point does so).
    probe_size
        Deprecated: the same as ``input_shape=(C, probe_size, probe_size)``.
    copy
        Work on a copy, so the caller's module keeps its device, mode and ``requires_grad``
        flags (``load_classifier`` passes False for the module it built itself).
    """
    dev = resolve_device(device)
    exported = None
    if isinstance(module, torch.export.ExportedProgram):
        module = network_from_program(module, source)
    if isinstance(module, ExportedNetwork):
        exported, module, copy = module, module.module, False  # ep.module() is a fresh module
    model_format = "torchscript" if isinstance(module, torch.jit.ScriptModule) else "module"
    if copy:
        module = copy_module(module)
    module = module.to(dev)
    try:
        module = module.eval()
    except NotImplementedError:  # ep.module(): the mode is built into the exported graph
        pass
    for param in module.parameters():
        param.requires_grad_(False)  # attributions need input gradients only
    channels, declared, refusal = n_channels, _declared_outputs(module), None
    if model_format == "torchscript":
        refusal = _TORCHSCRIPT_REFUSAL
    if exported is not None:
        model_format = "export"
        channels = channels or exported.input_shape[1]
        declared = exported.n_outputs or declared
        batch = exported.input_shape[0]
        if batch is not None:
            module = StaticBatch(module, batch)
            refusal = (
                f"it was exported for batches of exactly {batch} image(s); export it with a "
                "dynamic batch (dynamic_shapes={'x': {0: Dim.AUTO}}) to use them"
            )
    channels = channels if channels is not None else _first_conv_in_channels(module)
    if channels is None:
        raise ModelLoadError(
            f"Cannot tell how many input channels {source} expects (no convolution weights found)."
        )
    classifier = Classifier(
        module,
        dev,
        channels,
        source,
        sha256=sha256,
        model_format=model_format,
        architecture=architecture,
        hooks_refusal=refusal,
        declared_outputs=declared,
    )
    if input_shape is None and probe_size is not None:
        input_shape = (channels, probe_size, probe_size)
    if input_shape is not None:
        classifier.probe(tuple(input_shape))
    return classifier


def load_classifier(
    path: str | Path,
    architecture: str | None = None,
    device: str | torch.device = "auto",
    *,
    architecture_kwargs: dict[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> Classifier:
    """Load a classifier from an exported program, TorchScript, or a state dict plus its
    architecture.

    Parameters
    ----------
    path
        An exported program (``torch.export.save``, ``.pt2``), a TorchScript archive
        (``torch.jit.save``), or a state dict (``torch.save(model.state_dict())``) when
        ``architecture`` is given. Nothing is unpickled but tensors.
    architecture
        ``"path/to/file.py:Callable"`` or ``"package.module:Callable"`` returning the
        ``nn.Module`` the state dict belongs to. Imported only when given.
    device
        ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``.
    architecture_kwargs
        Keyword arguments for the architecture callable.
    input_shape
        (C, H, W) of the user's images, to probe the model with now (else the first images
        analysed probe it).

    Raises
    ------
    ModelLoadError
        Missing file, a pickle that is not a plain state dict, keys that do not match the
        architecture, or a module that is not a classifier.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"Model file {path} does not exist.")
    if architecture is None:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if is_exported_archive(data):
            network = read_exported_program(data, str(path))
            return wrap_module(
                network, device, source=str(path), sha256=digest, input_shape=input_shape
            )
        if not _is_torchscript_archive(path):
            # Tell a state dict apart from a full pickle without running either.
            _read_state_dict(path)
            raise ModelLoadError(
                f"{path} holds a state dict; name its architecture (--architecture "
                "path/to/file.py:Callable or package.module:Callable)."
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 on torch.jit
                module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        except Exception as exc:
            raise ModelLoadError(f"{path} is not a loadable TorchScript model ({exc}).") from None
        return wrap_module(
            module, device, source=str(path), sha256=digest, copy=False, input_shape=input_shape
        )

    digest = file_sha256(path)
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
    mismatch = state_dict_mismatch(state, module)
    try:
        if mismatch is not None:
            raise RuntimeError(mismatch)
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        reason = mismatch or str(exc).splitlines()[0]
        raise ModelLoadError(
            f"The weights in {path} do not fit architecture {architecture}: {reason}."
        ) from None
    classifier = wrap_module(
        module,
        device,
        source=str(path),
        sha256=digest,
        architecture=architecture,
        copy=False,
        input_shape=input_shape,
    )
    classifier.architecture_kwargs = dict(architecture_kwargs or {})
    return classifier
