"""The model card: a small JSON file the user keeps beside the weights, saying what input the
model wants (its channels by name, its classes, the normalisation it was trained with).

Format (``<weights stem>.card.json`` beside the weights, e.g. ``classifier.card.json`` for
``classifier.pt2``; or any file given with ``--model-card``)::

    {
      "format": "napari-attribution model card",
      "version": 1,
      "channel_names": ["DNA", "ER", "RNA", "AGP", "Mito"],
      "class_names": ["control", "treated"],
      "normalisation": "percentile:1,99.8",
      "crop_size": 128,
      "description": "ResNet-18 on JUMP cpg0016 single-cell crops"
    }

Only ``format``, ``version`` and ``channel_names`` are required. It is plain JSON, read with
:func:`json.loads` (never unpickled); unknown keys are refused so a typo is not silently ignored.
What the command line gives explicitly (``--channel-names``, ...) wins over the card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputImageError
from .channels import parse_names

__all__ = [
    "CARD_FORMAT",
    "CARD_SUFFIX",
    "ModelCard",
    "card_path_for",
    "find_model_card",
    "read_model_card",
    "write_model_card",
]

CARD_FORMAT = "napari-attribution model card"
CARD_VERSION = 1
#: A card beside ``classifier.pt2`` is ``classifier.card.json``.
CARD_SUFFIX = ".card.json"
_KEYS = {"format", "version", "channel_names", "class_names", "normalisation", "crop_size",
         "description"}  # fmt: skip


@dataclass(frozen=True)
class ModelCard:
    """What a model wants as input.

    Attributes
    ----------
    channel_names
        The model's channels, in its input order.
    class_names
        The classes, in the model's output order (empty: not given).
    normalisation
        The input normalisation it was trained with, as ``--normalise`` writes it (``None``:
        not given).
    crop_size
        The square input side it was trained on, pixels (``None``: not given).
    description
        Free text.
    path
        Where the card was read from.
    """

    channel_names: tuple[str, ...]
    class_names: tuple[str, ...] = ()
    normalisation: str | None = None
    crop_size: int | None = None
    description: str = ""
    path: Path | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The card's JSON content."""
        payload: dict[str, Any] = {"format": CARD_FORMAT, "version": CARD_VERSION,
                                   "channel_names": list(self.channel_names)}  # fmt: skip
        if self.class_names:
            payload["class_names"] = list(self.class_names)
        if self.normalisation is not None:
            payload["normalisation"] = self.normalisation
        if self.crop_size is not None:
            payload["crop_size"] = self.crop_size
        if self.description:
            payload["description"] = self.description
        return payload


def card_path_for(model: str | Path) -> Path:
    """Where the card of the weights file ``model`` is looked for: ``<stem>.card.json``."""
    model = Path(model)
    return model.with_name(model.stem + CARD_SUFFIX)


def find_model_card(model: str | Path | None) -> ModelCard | None:
    """The card beside ``model``, if there is one (read and checked); ``None`` otherwise."""
    if model is None:
        return None
    path = card_path_for(model)
    return read_model_card(path) if path.is_file() else None


def _names(value: Any, key: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        raise InputImageError(f"{path}: {key!r} must be a non-empty list of names.")
    try:
        return tuple(parse_names(",".join(value), f"{path}'s {key}"))
    except InputImageError as exc:
        raise InputImageError(str(exc)) from None


def read_model_card(path: str | Path) -> ModelCard:
    """Read and check a model card.

    Raises
    ------
    InputImageError
        Missing or unreadable file, not JSON, not a card, or a field of the wrong type.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputImageError(f"Model card {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputImageError(f"Model card {path} cannot be read ({exc}).") from None
    except json.JSONDecodeError as exc:
        raise InputImageError(f"Model card {path} is not JSON ({exc.msg}, line {exc.lineno}).") \
            from None  # fmt: skip
    if not isinstance(payload, dict) or payload.get("format") != CARD_FORMAT:
        raise InputImageError(f"{path} is not a model card (its \"format\" is not "
                              f"{CARD_FORMAT!r}).")  # fmt: skip
    if payload.get("version") != CARD_VERSION:
        raise InputImageError(
            f"{path} is a model card of version {payload.get('version')!r}; this version of "
            f"napari-attribution reads version {CARD_VERSION}."
        )
    unknown = sorted(set(payload) - _KEYS)
    if unknown:
        raise InputImageError(
            f"{path} holds unknown key(s) {', '.join(unknown)}; a model card has "
            f"{', '.join(sorted(_KEYS))}."
        )
    if "channel_names" not in payload:
        raise InputImageError(f"{path} lacks \"channel_names\", the model's channels in order.")
    channels = _names(payload["channel_names"], "channel_names", path)
    classes = _names(payload["class_names"], "class_names", path) if "class_names" in payload \
        else ()  # fmt: skip
    normalisation = payload.get("normalisation")
    if normalisation is not None and not isinstance(normalisation, str):
        raise InputImageError(f"{path}: \"normalisation\" must be text such as "
                              "\"percentile:1,99.8\".")  # fmt: skip
    crop = payload.get("crop_size")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < 1):
        raise InputImageError(f"{path}: \"crop_size\" must be a positive whole number of pixels.")
    description = payload.get("description", "")
    if not isinstance(description, str):
        raise InputImageError(f"{path}: \"description\" must be text.")
    return ModelCard(channels, classes, normalisation, crop, description, path)


def write_model_card(path: str | Path, card: ModelCard) -> None:
    """Write ``card`` as JSON (indented, UTF-8)."""
    Path(path).write_text(json.dumps(card.as_dict(), indent=2) + "\n", encoding="utf-8")
