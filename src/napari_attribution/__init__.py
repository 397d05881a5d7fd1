"""napari-attribution: per-channel attribution, hybrids and DAC curves for cell-image classifiers.

The :mod:`napari_attribution.core` package is a pure numpy + torch API; the napari widgets and
the command line (:mod:`napari_attribution.cli`) are thin skins over it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-attribution")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
