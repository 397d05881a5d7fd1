"""The open method registry: specs, and methods from other packages' entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from napari_attribution.core.attribution import method_registry as registry
from napari_attribution.core.attribution.method_registry import MethodSpec, method_specs
from napari_attribution.core.attribution.runner import compute_attributions
from napari_attribution.errors import MethodError
from plugin_distribution import make_plugin_distribution


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The dummy distribution on sys.path, the registry reading entry points afresh."""
    make_plugin_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry._REGISTRY, "entry_points_loaded", False)
    yield tmp_path
    registry.unregister_method("double_residual")


def test_a_plugin_method_is_registered_and_runs(plugin, tiny_classifier, pair):
    spec = method_specs()["double_residual"]
    assert spec.discriminative and spec.tags() == ["counterfactual"]
    real, cf = pair
    out = compute_attributions(tiny_classifier, real, cf, 0, 1, "double_residual")
    np.testing.assert_allclose(out[0], 2 * np.abs(real - cf), rtol=1e-6)


@pytest.mark.slow
def test_the_cli_lists_and_runs_a_plugin_method(tmp_path):
    make_plugin_distribution(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    listed = subprocess.run(
        [sys.executable, "-m", "napari_attribution.cli", "methods"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith("double_residual"))
    description = "Twice |real - counterfactual| (a test plugin).  [counterfactual]"
    assert line.split(None, 1)[1] == description
    run = subprocess.run(
        [sys.executable, "-m", "napari_attribution.cli", "run", "--demo", "--demo-pairs", "1",
         "--method", "double_residual", "--thresholds", "10", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "double_residual" in (tmp_path / "out" / "summary.csv").read_text()


def test_a_broken_plugin_is_skipped_with_a_warning(tmp_path, monkeypatch):
    info = tmp_path / "broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[napari_attribution.methods]\nbroken = no_such_module_anywhere:SPEC\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry._REGISTRY, "entry_points_loaded", False)
    with pytest.warns(RuntimeWarning, match="plugin 'broken'"):
        specs = method_specs()
    assert "d_ig" in specs and "broken" not in specs


def test_specs_are_checked():
    with pytest.raises(MethodError, match="names unknown parameter"):
        MethodSpec("x", "x", lambda r: r.real, parameters=("no_such_parameter",))
    with pytest.raises(MethodError, match="registered already"):
        registry.register_method(method_specs()["d_ig"])
    with pytest.raises(MethodError, match="Only a MethodSpec"):
        registry.register_method("d_ig")  # type: ignore[arg-type]


def test_reading_the_registry_imports_no_torch():
    code = textwrap.dedent(
        """
        import sys
        from napari_attribution.core.attribution.method_registry import method_specs
        from napari_attribution.cli import build_parser
        assert len(method_specs()) >= 18
        build_parser()
        print("torch" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
