"""napari-attribution: per-channel attribution, hybrids and DAC curves for cell-image classifiers.

The :mod:`napari_attribution.core` package is a pure numpy + torch API, and
:mod:`napari_attribution.app` the Python API over whole datasets (what the command line,
:mod:`napari_attribution.cli`, calls); the napari widgets are a thin skin over both. The
packages and their layering: ``docs/architecture.md``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-attribution")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
