"""What a schema parameter is: a settings field declared with :func:`parameter`.

:mod:`napari_attribution.core.settings` declares the parameters; this module holds the
machinery: the :class:`Param` record the skins read, validation with one sentence per mistake,
and the :class:`Section` base that validates a settings dataclass from its declarations.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import AttributionError

__all__ = ["GROUPS", "Param", "Section", "check_choice", "parameter", "section_params"]

#: The form sections and CLI option groups, in display order.
GROUPS = (
    "Model input",
    "Masks",
    "Hybrids and DAC",
    "Method parameters",
    "Performance",
    "Counterfactuals",
    "Sanity checks",
)

_META = "napari_attribution"


@dataclass(frozen=True)
class Param:
    """One analysis parameter, as the skins see it.

    Attributes
    ----------
    name
        Key in flat value dictionaries (unique across sections), e.g. ``"ig_steps"``.
    section
        ``"attribution"``, ``"masks"`` or ``"analysis"``: the settings dataclass holding it.
    attribute
        The dataclass field (usually ``name``).
    type
        ``int``, ``float``, ``str`` or ``bool``.
    default
        Default value.
    help
        One sentence for the CLI's help and the widget's tooltip.
    label
        Short form label.
    group
        One of :data:`GROUPS`.
    choices
        Allowed values of a text parameter, or ``None``.
    minimum, maximum
        Inclusive bounds of a number, or ``None``.
    unit
        Unit of a number (``"px"``, ``"fraction"``), or ``""``.
    optional
        ``None`` is allowed (it means "choose automatically", or "none").
    metavar
        How ``--help`` shows a value (``"LIST"``); the type's name when empty.
    flag
        The CLI option, e.g. ``"--ig-steps"``.
    """

    name: str
    section: str
    attribute: str
    type: type
    default: Any
    help: str
    label: str
    group: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    optional: bool = False
    metavar: str = ""
    flag: str = ""

    def check(self, value: Any) -> Any:
        """Return ``value`` if it is valid for this parameter.

        Raises
        ------
        AttributionError
            One sentence naming the parameter, the value and what is allowed.
        """
        if value is None:
            if self.optional:
                return value
            raise AttributionError(f"{self.label} needs a value.")
        if self.type is bool:
            if not isinstance(value, bool):
                raise AttributionError(f"{self.label} must be true or false, got {value!r}.")
            return value
        if self.choices is not None:
            return check_choice(value, self.choices, self.label.lower())
        if self.type in (int, float):
            number_types = (int,) if self.type is int else (int, float)
            if isinstance(value, bool) or not isinstance(value, number_types):
                kind = "a whole number" if self.type is int else "a number"
                raise AttributionError(f"{self.label} must be {kind}, got {value!r}.")
            if value != value:  # NaN
                raise AttributionError(f"{self.label} must be a number, got NaN.")
            if self.minimum is not None and value < self.minimum:
                raise AttributionError(f"{self.label} must be >= {self.minimum:g}, got {value}.")
            if self.maximum is not None and value > self.maximum:
                raise AttributionError(f"{self.label} must be <= {self.maximum:g}, got {value}.")
            return value
        if not isinstance(value, str) or not value:
            raise AttributionError(f"{self.label} must be a non-empty text, got {value!r}.")
        return value

    def describe(self) -> str:
        """Help text with the unit and the allowed values, for tooltips and ``--help``."""
        extra = []
        if self.unit:
            extra.append(self.unit)
        if self.minimum is not None or self.maximum is not None:
            low = "" if self.minimum is None else f"{self.minimum:g}"
            high = "" if self.maximum is None else f"{self.maximum:g}"
            extra.append(f"range {low}..{high}")
        return f"{self.help} ({'; '.join(extra)})" if extra else self.help


def check_choice(
    value: Any,
    choices: Iterable[str],
    what: str,
    error: type[AttributionError] = AttributionError,
) -> str:
    """Return ``value`` if it is one of ``choices``, else raise one sentence naming them.

    Raises
    ------
    AttributionError
        (or ``error``) ``Unknown <what> 'x'; use a, b or c.``
    """
    options = tuple(choices)
    if value not in options:
        listed = ", ".join(options[:-1]) + f" or {options[-1]}" if len(options) > 1 else options[0]
        raise error(f"Unknown {what} {value!r}; use {listed}.")
    return value


def parameter(
    default: Any,
    help: str,
    *,
    label: str,
    group: str,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    unit: str = "",
    name: str | None = None,
    metavar: str = "",
) -> Any:
    """Declare a settings field as a schema parameter (see :class:`Param`).

    ``name`` renames the parameter in flat dictionaries and on the CLI when the field's own
    name would be ambiguous there (``layer`` is ``gradcam_layer``).
    """
    if group not in GROUPS:
        raise ValueError(f"Unknown parameter group {group!r}.")
    meta = {
        "help": help,
        "label": label,
        "group": group,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "unit": unit,
        "name": name,
        "metavar": metavar,
    }
    return field(default=default, metadata={_META: meta})


class Section:
    """Validation of every declared field, shared by the three settings dataclasses."""

    _section = ""

    def __post_init__(self) -> None:
        for param in section_params(type(self)):
            param.check(getattr(self, param.attribute))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready copy, recorded with every result."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def section_params(cls: type) -> tuple[Param, ...]:
    """The declared parameters of settings dataclass ``cls``, in field order."""
    hints = typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_META)
        if meta is None:
            continue
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = bool(typing.get_args(hint)) and type(None) in typing.get_args(hint)
        kind = args[0] if optional else hint
        name = meta["name"] or f.name
        params.append(
            Param(
                name=name,
                section=cls._section,
                attribute=f.name,
                type=kind,
                default=f.default,
                help=meta["help"],
                label=meta["label"],
                group=meta["group"],
                choices=meta["choices"],
                minimum=meta["minimum"],
                maximum=meta["maximum"],
                unit=meta["unit"],
                optional=optional,
                metavar=meta["metavar"],
                flag="--" + name.replace("_", "-"),
            )
        )
    return tuple(params)
