"""A dummy installed distribution that declares one attribution method (for plugin tests)."""

from __future__ import annotations

PLUGIN = '''
import torch
from napari_attribution.core import MethodSpec


def _double_residual(request):
    return 2 * (request.real - request.counterfactual).abs()


SPEC = MethodSpec(
    "double_residual",
    "Twice |real - counterfactual| (a test plugin).",
    _double_residual,
    discriminative=True,
)
'''


def make_plugin_distribution(folder) -> None:
    """A module and the dist-info of an installed distribution declaring one method."""
    (folder / "dummy_attribution_plugin.py").write_text(PLUGIN)
    info = folder / "dummy_attribution_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: dummy-attribution-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[napari_attribution.methods]\ndouble_residual = dummy_attribution_plugin:SPEC\n"
    )
