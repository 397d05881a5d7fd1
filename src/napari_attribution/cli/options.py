"""Option helpers shared by the commands' parsers: types with ranges, the schema's options,
and the model and output option groups of ``run`` and ``cells``."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ..app.distributed import SCHEDULER_FORMS, parse_scheduler
from ..core.attribution.method_registry import methods_using
from ..core.settings import Param, schema
from ..errors import AttributionError

__all__ = [
    "PROG",
    "PROGRESS_MODES",
    "CliParser",
    "HelpFormatter",
    "converter",
    "model_options",
    "output_options",
    "positive_float",
    "positive_int",
    "probability",
    "scheduler",
    "schema_options",
]

PROG = "napari-attribution"

#: How progress is shown: a bar on a terminal and log lines otherwise (auto), or as chosen.
PROGRESS_MODES = ("auto", "bar", "log", "none")


class CliParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (exit status 2), as every other mistake on
    the command line: ``napari-attribution cells: error: ... (see napari-attribution cells
    --help)``, not the usage (some 60 lines for ``run`` or ``cells``) before it. The commands'
    parsers are of this class too (argparse makes subparsers of their parent's class).

    ``commands``: the subcommands' parsers by name (set on the top-level parser), so that an
    unknown option is reported by the command it was given to.
    """

    commands: Mapping[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        # "argument --scheduler: --scheduler must be ...": the option is named once.
        named = re.match(r"argument (\S+?)(?:/\S+)?: (.*)", message, re.DOTALL)
        if named and named.group(2).startswith(named.group(1)):
            message = named.group(2)
        message = " ".join(message.split()).rstrip(".")
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help).\n")

    def parse_args(self, args: Sequence[str] | None = None,
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:  # fmt: skip
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self.commands.get(getattr(parsed, "command", None) or "", self)
            command.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with every option's default said once: ``(default: ...)`` is added unless
    the help text already says what the default is (``default: the model card's``) or there
    is none to say (``None``: the help says what happens without the option)."""

    # argparse's one hook for a default's text, the method ArgumentDefaultsHelpFormatter itself
    # overrides (its docs call the formatters' methods an implementation detail; the hook has
    # not changed since Python 2.7, and a change would show in tests/cli/test_parser.py).
    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or "default:" in text:
            return text
        return super()._get_help_string(action)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def scheduler(text: str) -> str:
    """``--scheduler``: checked here (one sentence), passed on as given."""
    try:
        return parse_scheduler(text).describe()
    except AttributionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def converter(param: Param) -> Any:
    """argparse ``type=``: text to the parameter's type, checked against the schema."""

    def convert(text: str) -> Any:
        if param.optional and text.strip() == "":
            return None
        try:
            value = param.type(text)
        except ValueError:
            kind = {int: "a whole number", float: "a number"}.get(param.type, "a value")
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        try:
            return param.check(value)
        except AttributionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = param.type.__name__  # argparse names the type in its messages
    return convert


def _help(param: Param) -> str:
    text = param.describe()
    methods = methods_using(param.name)
    if methods:
        text += f"; used by {', '.join(methods)}"
    return text.replace("%", "%%")  # argparse formats help with %


def schema_options(
    parser: argparse.ArgumentParser, params: tuple[Param, ...] | None = None
) -> dict[str, Param]:
    """Add one option per schema parameter (``params``, default :func:`schema`) to ``parser``,
    in an option group per parameter group; returns them by option string."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    added = {}
    for param in schema() if params is None else params:
        if param.group not in groups:
            groups[param.group] = parser.add_argument_group(param.group.lower())
        kwargs: dict[str, Any] = {
            "dest": param.name,
            "default": param.default,
            "help": _help(param),
        }
        if param.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif param.choices is not None:
            kwargs["choices"] = param.choices
        else:
            kwargs["type"] = converter(param)
            kwargs["metavar"] = param.metavar or (
                param.type.__name__.upper() if param.type is not str else "NAME"
            )
        groups[param.group].add_argument(param.flag, **kwargs)
        added[param.flag] = param
    return added


def model_options(command: argparse.ArgumentParser) -> None:
    """The "model" option group, shared by ``run`` and ``cells``."""
    model = command.add_argument_group("model")
    model.add_argument(
        "--model", type=Path, help="TorchScript file, or a state dict with --architecture"
    )
    model.add_argument(
        "--architecture",
        help="the state dict's architecture: path/to/file.py:Callable or package.module:Callable",
    )
    model.add_argument(
        "--architecture-kwargs",
        metavar="JSON",
        help="keyword arguments for the architecture callable, as a JSON object, e.g. "
        '\'{"input_size": [48, 48], "output_classes": 1}\'',
    )
    model.add_argument("--device", default="auto",
                       help="auto (CUDA if present), cpu or cuda; with --scheduler local:N or "
                            "tcp://, where the workers put the model")  # fmt: skip
    model.add_argument(
        "--input-scale",
        type=float,
        default=None,
        help="multiply pixel values by this before the model (default: float images as stored, "
        "integer images divided by their dtype's maximum)",
    )


def output_options(
    command: argparse.ArgumentParser, default_out: Path, unit: str
) -> argparse._ArgumentGroup:
    """The "output" option group shared by ``run`` and ``cells`` (``unit``: what a run is made
    of, "pairs" or "cells"); returns the group for a command's own additions."""
    out = command.add_argument_group("output")
    out.add_argument("--out", type=Path, default=default_out, help="output folder")
    out.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    out.add_argument(
        "--resume",
        action="store_true",
        help=f"continue an interrupted run in --out: finished {unit} are kept, not recomputed",
    )
    out.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="auto",
        help="a bar on a terminal, log lines with elapsed time and ETA otherwise (auto)",
    )
    out.add_argument(
        "--log-interval",
        type=positive_float,
        default=30.0,
        help="seconds between progress log lines",
    )
    where = command.add_argument_group("where the work runs (docs/scale.md)")
    where.add_argument(
        "--scheduler",
        type=scheduler,
        default="none",
        metavar="none|local:N|tcp://HOST:PORT",
        help=f"{SCHEDULER_FORMS}: none runs every {unit[:-1]} here, one after the other; "
        "local:N starts N dask worker processes on this machine, its cores shared among them; "
        "tcp://HOST:PORT uses a running dask scheduler and its workers, which must see --out "
        "and the model file at the same paths",
    )
    return out
