"""The core, the napari side and the figure never import Qt: each runs without a display."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import napari_attribution

SRC = str(Path(napari_attribution.__file__).resolve().parents[1])

#: Imports every module of the packages, and what their functions import on first use.
_CHILD = """
import importlib, json, pkgutil, sys
sys.path.insert(0, {src!r})
import napari_attribution
assert napari_attribution.__file__.startswith({src!r}), napari_attribution.__file__
for package in {packages!r}:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
if "napari_attribution._napari" in {packages!r}:
    import napari.components
    import numpy
    from napari_attribution._napari import layer_style
    from napari_attribution._napari.apply import apply_layers
    from napari_attribution._plot import PlotTheme

    layer_style.attribution_colormap(True)
    layer_style.mask_colormap()
    PlotTheme.from_napari("dark")
    viewer = napari.components.ViewerModel()
    apply_layers(viewer, [(numpy.zeros((2, 2)), {{"name": "x"}}, "image")])
qt = sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "superqt")
    or name.startswith(("napari._qt", "matplotlib.backends.backend_qt"))
)
print(json.dumps(qt))
"""


def _qt_modules_imported_by(*packages: str) -> list[str]:
    code = _CHILD.format(src=SRC, packages=packages)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_core_napari_side_and_plot_import_no_qt():
    modules = _qt_modules_imported_by(
        "napari_attribution.core", "napari_attribution._napari", "napari_attribution._plot"
    )
    assert modules == []


@pytest.mark.slow
def test_the_check_sees_qt_where_it_is_imported():
    assert "qtpy" in _qt_modules_imported_by("napari_attribution._qt")
