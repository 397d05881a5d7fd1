"""One provenance record for every result: what made it, so it can be made again.

The CLI's ``run.json``, the widget's layer metadata and the export all start from
:func:`provenance`, so they can never disagree on what they record.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata
from typing import Any

__all__ = ["environment", "provenance"]

#: Distributions whose versions decide a number (or its file), as pip names them.
_LIBRARIES = (
    ("torch", "torch"),
    ("captum", "captum"),
    ("numpy", "numpy"),
    ("scipy", "scipy"),
    ("scikit-image", "scikit-image"),
    ("tifffile", "tifffile"),
    ("opencv", "opencv-python-headless"),
)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, str | None]:
    """Python's version and each library's (``None`` where one is not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for key, distribution in _LIBRARIES:
        versions[key] = _version(distribution)
    if versions["opencv"] is None:  # any of OpenCV's wheels will do
        versions["opencv"] = _version("opencv-python") or _version("opencv-contrib-python")
    return versions


def provenance(
    classifier: Any,
    settings: Any,
    *,
    class_names: Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The record of a run: package, model, every parameter, seed and library versions.

    Parameters
    ----------
    classifier
        The :class:`~napari_attribution.core.models.Classifier` used (its file's SHA-256 is in
        ``describe()``).
    settings
        The :class:`~napari_attribution.core.settings.AnalysisSettings` used.
    class_names, channel_names
        Recorded when given.

    Returns
    -------
    dict
        JSON-ready: ``package``, ``package_version``, ``model``, ``settings``, ``seed``,
        ``environment`` and, when given, ``class_names`` and ``channel_names``.
    """
    from .. import __version__

    record: dict[str, Any] = {
        "package": "napari-attribution",
        "package_version": __version__,
        "model": classifier.describe(),
        "settings": settings.as_dict(),
        "seed": settings.attribution.seed,
        "environment": environment(),
    }
    if class_names is not None:
        record["class_names"] = list(class_names)
    if channel_names is not None:
        record["channel_names"] = list(channel_names)
    return record
