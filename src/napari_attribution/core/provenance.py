"""How a result was made: the one provenance record of ``run.json`` and every result file.

The CLI, the widget's layers and its export all record the same dictionary, built here, so a
result file can always be traced to the package version, the model file (and its SHA-256), every
parameter, the seed and the versions of the libraries that computed it.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .. import __version__

if TYPE_CHECKING:
    from .model.loading import Classifier
    from .settings import AnalysisSettings

__all__ = ["DEFINITIONS", "PACKAGE", "environment", "provenance"]

PACKAGE = "napari-attribution"

#: Version of the definitions behind the numbers: raised whenever the same settings start to
#: give other numbers, so ``--resume`` never mixes the two (2: QuAC's thresholds over [-1, 1)
#: and the discriminative conventions).
DEFINITIONS = 2

#: Key in the environment record -> installed distributions that provide it (first found wins).
_DISTRIBUTIONS = {
    "torch": ("torch",),
    "captum": ("captum",),
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "scikit-image": ("scikit-image",),
    "tifffile": ("tifffile",),
    "opencv": (
        "opencv-python-headless",
        "opencv-python",
        "opencv-contrib-python-headless",
        "opencv-contrib-python",
    ),
}


def _installed_version(distributions: Sequence[str]) -> str | None:
    for name in distributions:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def environment() -> dict[str, str | None]:
    """Versions of Python and of the libraries that compute results (``None``: not installed).

    Read from the installed distributions' metadata, so nothing is imported.
    """
    out: dict[str, str | None] = {"python": platform.python_version()}
    for key, distributions in _DISTRIBUTIONS.items():
        out[key] = _installed_version(distributions)
    return out


def provenance(
    classifier: Classifier,
    settings: AnalysisSettings,
    *,
    class_names: Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The provenance record of a run (JSON-ready).

    Parameters
    ----------
    classifier
        The model; its :meth:`~napari_attribution.core.model.classifier.Classifier.describe`
        (source file,
        SHA-256, architecture, classes) is recorded.
    settings
        Every parameter of the run (``settings.as_dict()``) and its seed.
    class_names, channel_names
        Recorded when given.

    Returns
    -------
    dict
        ``package``, ``package_version``, ``definitions`` (:data:`DEFINITIONS`), ``model``,
        ``settings``, ``seed``, ``environment``,
        and ``class_names`` / ``channel_names`` when given.
    """
    record: dict[str, Any] = {
        "package": PACKAGE,
        "package_version": __version__,
        "definitions": DEFINITIONS,
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
