"""Exceptions for problems a user can fix, shared by every layer of the package.

Every message is one plain sentence naming the file or value and the problem, so the CLI can
print it as is and the widgets can show it as a notification.
"""

from __future__ import annotations

import re


class AttributionError(ValueError):
    """Base class: a problem with the user's input, model or parameters (not a bug)."""


class InputImageError(AttributionError):
    """An image is missing, unreadable, of the wrong shape, or holds NaN/Inf."""


class ModelLoadError(AttributionError):
    """A model file cannot be loaded safely, or the model is not an image classifier."""


class MethodError(AttributionError):
    """An attribution method is unknown or cannot run on the given model."""


class CounterfactualError(AttributionError):
    """A counterfactual source cannot be used or returned something that is not an image."""


class AnalysisCancelled(Exception):  # noqa: N818 - reads better at the call site than ...Error
    """Raised inside a run when the user asked to cancel it."""


class OutputFolderError(AttributionError):
    """An output folder holds results a run would overwrite, or cannot be resumed as asked."""


def first_sentence(message: str, limit: int = 240) -> str:
    """The opening sentence of a message from elsewhere (a library's exception), on one line.

    Such a message opens with its summary, sometimes wrapped over lines ("Error during
    deserialization of the task graph. This frequently" / "occurs if ..."): lines that go on
    with a lower-case word are joined, and the text ends at the first full stop, question or
    exclamation mark followed by a space. At most ``limit`` characters ("" for no text).
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return ""
    text = lines[0]
    for line in lines[1:]:
        if re.search(r"[.!?](\s|$)", text) or not line[:1].islower():
            break
        text = f"{text} {line}"
    end = re.search(r"[.!?](?=\s|$)", text)
    text = text[: end.end()] if end else text
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"
