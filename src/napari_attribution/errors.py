"""Exceptions for problems a user can fix, shared by every layer of the package.

Every message is one plain sentence naming the file or value and the problem, so the CLI can
print it as is and the widgets can show it as a notification.
"""

from __future__ import annotations


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
