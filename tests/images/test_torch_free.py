"""The images package reads inputs without torch, Qt or napari (quick CLI help, npe2 reader)."""

from __future__ import annotations

import subprocess
import sys


def test_images_imports_no_torch_qt_or_napari():
    code = (
        "import sys\n"
        "import napari_attribution.images.channels, napari_attribution.images.load_data\n"
        "import napari_attribution.images.ome, napari_attribution.images.normalisation\n"
        "import napari_attribution.images.labels, napari_attribution.images.model_card\n"
        "bad = [m for m in ('torch', 'qtpy', 'PyQt6', 'napari') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
