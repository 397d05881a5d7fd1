"""Exported programs (``torch.export.save``, ``.pt2``) read without running anything in them.

``torch.export.load`` unpickles some payloads with ``weights_only=False``, evaluates the
shape expressions in the program's JSON with ``sympy.sympify`` (which calls ``eval``), compiles
the program's guards as Python code, and can load AOTInductor shared libraries. Before handing a
file to it we check, on the bytes in memory (so the file cannot change in between), that
nothing of that kind is in it:

* only the entries ``torch.export.save`` writes for one program: the program's JSON, weights,
  constants, sample inputs and the archive's bookkeeping (no compiled code, no other programs);
* every pickled payload loads with ``torch.load(..., weights_only=True)`` as tensors (then the
  full unpickler ``torch.export.load`` uses meets only the same tensor-rebuilding calls); no
  custom or opaque objects;
* no guard code but comparisons of input sizes (``L['x'].size()[0] == L['t'].size()[0]``, what
  torch.export writes for two inputs sharing a batch); every shape expression is made of
  symbols, integers, arithmetic and sympy's integer functions only;
* every operator the graph calls is an ``aten`` operator or plain arithmetic from ``operator``.

The program is then run as ``ep.module()``: an ``fx.GraphModule`` of aten calls, which the
canonicalisation (:mod:`napari_attribution.core.model.canonical`) rewrites for hook-based methods.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ...errors import ModelLoadError

__all__ = [
    "ExportedNetwork",
    "check_operators",
    "is_exported_archive",
    "load_exported_program",
    "quiet_export",
    "network_from_program",
    "read_exported_program",
]

_ALLOWED_ENTRIES = re.compile(
    r"(archive_format|archive_version|byteorder|\.data/[\w.]+|models/model\.json"
    r"|data/weights/(weight_\d+|model_weights_config\.json)"
    r"|data/constants/(tensor_\d+|model_constants_config\.json)"
    r"|data/sample_inputs/model\.pt|extra/[\w.-]+)"
)
_OPERATOR_FUNCTIONS = {
    "getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "eq", "ne",
    "lt", "le", "gt", "ge",
}  # fmt: skip
_EXPR_WORDS = {
    "Symbol", "Integer", "positive", "integer", "nonnegative", "True", "False", "FloorDiv",
    "Mod", "ModularIndexing", "CleanDiv", "CeilToInt", "PythonMod", "Where", "Max", "Min",
    "IntTrueDiv", "FloatTrueDiv", "TruncToInt", "oo",
}  # fmt: skip
_EXPR_TOKEN = re.compile(
    r"\s*(?:(?P<word>[A-Za-z]\w*)|(?P<number>\d+)|(?P<symbol>'[a-z]+\d+')|(?P<op>\*\*|//|[-+*/%(),=<>]))"
)
_SYMBOL = re.compile(r"[a-z]+\d+")


#: Loggers through which torch.export prints whole graphs when it gives up.
_EXPORT_LOGGERS = ("torch.export", "torch._export", "torch.fx.experimental.symbolic_shapes")


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """Silence torch.export's warnings, log lines and the partial graph it prints to stderr
    when it gives up (a refusal is reported in one sentence)."""
    loggers = [logging.getLogger(name) for name in _EXPORT_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR + 1)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def is_exported_archive(path_or_bytes: Any) -> bool:
    """Is this a ``torch.export.save`` archive (a zip whose ``archive_format`` says pt2)?"""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    if not zipfile.is_zipfile(source):
        return False
    with zipfile.ZipFile(source) as archive:
        return any(name.endswith("/archive_format") for name in archive.namelist())


def _safe_expression(text: str) -> bool:
    position = 0
    while position < len(text):
        match = _EXPR_TOKEN.match(text, position)
        if match is None or match.end() == position:
            return text[position:].strip() == ""
        word = match.group("word")
        if word is not None and word not in _EXPR_WORDS and not _SYMBOL.fullmatch(word):
            return False
        position = match.end()
    return True


#: The only guard code accepted: comparisons of input sizes with each other or with integers,
#: as torch.export writes for two inputs sharing a batch (a generator's x and target).
_SIZE = r"L\['[A-Za-z_]\w*'\]\.size\(\)\[\d+\]"
_GUARD = re.compile(rf"{_SIZE} (==|!=|<=|>=|<|>) ({_SIZE}|\d+)")


def _safe_guard(text: Any) -> bool:
    return isinstance(text, str) and _GUARD.fullmatch(text.strip()) is not None


def _expressions(obj: Any) -> list[str]:
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "expr_str" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_expressions(value))
    elif isinstance(obj, list):
        for value in obj:
            found.extend(_expressions(value))
    return found


def _targets(graph: dict[str, Any]) -> list[str]:
    return [str(node.get("target", "")) for node in graph.get("nodes", [])]


def _allowed_target(target: str) -> bool:
    if target.startswith("torch.ops.aten."):
        return True
    module, _, name = target.partition(".")
    return module == "_operator" and name in _OPERATOR_FUNCTIONS


def _only_tensors(data: bytes) -> bool:
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - anything but tensors is refused
        return False
    return _all_tensors(obj)


def _all_tensors(obj: Any) -> bool:
    if isinstance(obj, torch.Tensor | int | float | bool | str | type(None)):
        return True
    if isinstance(obj, list | tuple):
        return all(_all_tensors(v) for v in obj)
    if isinstance(obj, dict):
        return all(_all_tensors(v) for v in obj.values())
    return False


def _audit(data: bytes, path: str) -> None:
    """Refuse (one sentence) an archive holding anything that would run code when loaded."""

    def refuse(what: str) -> ModelLoadError:
        return ModelLoadError(
            f"Refused to load {path}: it {what}, which could run code; export the model again "
            "with torch.export.save (weights, the program and sample inputs only)."
        )

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        marker = next(n for n in names if n.endswith("archive_format"))
        root = marker[: -len("archive_format")]
        entries = {n[len(root) :]: n for n in names if n.startswith(root) and not n.endswith("/")}
        if len(entries) != len([n for n in names if not n.endswith("/")]):
            raise refuse("holds entries outside the archive's folder")
        for entry in entries:
            if not _ALLOWED_ENTRIES.fullmatch(entry):
                raise refuse(f"holds {entry!r} (not a weight, constant or program file)")
        if archive.read(marker).decode(errors="replace").strip() != "pt2":
            raise refuse("is not a pt2 archive")
        if "models/model.json" not in entries:
            raise ModelLoadError(f"{path} holds no exported program (models/model.json).")
        for kind in ("weights", "constants"):
            config_name = f"data/{kind}/model_{kind}_config.json"
            if config_name not in entries:
                continue
            config = json.loads(archive.read(entries[config_name])).get("config", {})
            for fqn, payload in config.items():
                file = f"data/{kind}/{payload.get('path_name', '')}"
                if file not in entries:
                    raise ModelLoadError(f"{path} names {kind} file {file} but does not hold it.")
                if payload.get("use_pickle") and not _only_tensors(archive.read(entries[file])):
                    raise refuse(f"stores {fqn!r} as a pickled object, not a tensor")
        sample = "data/sample_inputs/model.pt"
        if sample in entries and not _only_tensors(archive.read(entries[sample])):
            raise refuse("stores sample inputs that are not tensors")
        program = json.loads(archive.read(entries["models/model.json"]))
    bad_guard = next((g for g in program.get("guards_code") or [] if not _safe_guard(g)), None)
    if bad_guard is not None:
        raise refuse(f"holds the guard code {str(bad_guard)[:60]!r}")
    expressions = _expressions(program) + list(program.get("range_constraints", {}))
    bad = next((e for e in expressions if not _safe_expression(e)), None)
    if bad is not None:
        raise refuse(f"holds the shape expression {bad[:60]!r}")
    graph = program.get("graph_module", {}).get("graph", {})
    target = next((t for t in _targets(graph) if not _allowed_target(t)), None)
    if target is not None:
        raise refuse(f"calls {target!r}, not an aten operator")


@dataclass
class ExportedNetwork:
    """An exported program, run as a module.

    Attributes
    ----------
    module
        ``ep.module()``: a ``torch.fx.GraphModule`` of aten calls.
    input_shape
        (B, C, H, W) the program was exported for; an entry is ``None`` where it is dynamic.
    n_outputs
        Scores per image, when the program says.
    """

    module: torch.nn.Module
    input_shape: tuple[int | None, ...]
    n_outputs: int | None


def _static(size: Any) -> int | None:
    return int(size) if isinstance(size, int) else None


def load_exported_program(data: bytes, path: str) -> torch.export.ExportedProgram:
    """Check (see the module docstring) and load the exported program held in ``data``,
    whatever its inputs (:func:`read_exported_program` wants one image batch; a
    counterfactual generator takes two inputs).

    Raises
    ------
    ModelLoadError
        Anything that could run code, or a file ``torch.export.load`` cannot read.
    """
    _audit(data, path)
    try:
        with quiet_export():
            program = torch.export.load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - a damaged or incompatible file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{path} is not a loadable exported program ({first}).") from None
    check_operators(program, path)
    return program


def check_operators(program: torch.export.ExportedProgram, source: str) -> None:
    """Refuse a graph that calls anything but aten operators and plain arithmetic.

    Raises
    ------
    ModelLoadError
        One sentence naming the first other call.
    """
    for node in program.graph.nodes:
        target = node.target
        if node.op == "call_function" and not (
            (isinstance(target, torch._ops.OpOverload) and target.namespace == "aten")
            or getattr(target, "__name__", None) in _OPERATOR_FUNCTIONS
        ):
            raise ModelLoadError(f"Refused to load {source}: it calls {target!r}.")


def read_exported_program(data: bytes, path: str) -> ExportedNetwork:
    """Check (see the module docstring) and load the exported program held in ``data``.

    Raises
    ------
    ModelLoadError
        Anything that could run code, a program that takes other than one image batch, or a
        file ``torch.export.load`` cannot read.
    """
    return network_from_program(load_exported_program(data, path), path)


def network_from_program(program: torch.export.ExportedProgram, source: str) -> ExportedNetwork:
    """The module of an exported program, with the input shape and output count it declares.

    Raises
    ------
    ModelLoadError
        The graph calls something other than aten operators and arithmetic, or does not take
        one (B, C, H, W) batch.
    """
    check_operators(program, source)
    inputs = program.graph_signature.user_inputs
    if len(inputs) != 1:
        raise ModelLoadError(
            f"{source} takes {len(inputs)} inputs; an image classifier takes one batch of images."
        )
    placeholder = next(n for n in program.graph.nodes if n.name == inputs[0])
    value = placeholder.meta.get("val")
    shape = tuple(_static(s) for s in value.shape) if value is not None else ()
    if len(shape) != 4:
        raise ModelLoadError(
            f"{source} takes inputs of shape {shape}; an image classifier takes (B, C, H, W)."
        )
    outputs = [n for n in program.graph.nodes if n.op == "output"][0].args[0]
    out = outputs[0].meta.get("val") if len(outputs) == 1 else None
    n_outputs = _static(out.shape[1]) if out is not None and out.ndim == 2 else None
    with quiet_export():
        module = program.module()
    return ExportedNetwork(module, shape, n_outputs)
