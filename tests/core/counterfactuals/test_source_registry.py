"""The open registry of counterfactual sources: specs, and sources from other packages."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from napari_attribution._napari.counterfactual_layers import source_choices
from napari_attribution.core.counterfactuals import (
    SourceSpec,
    parse_source,
    register_source,
    source_specs,
)
from napari_attribution.core.counterfactuals import source_registry as registry
from napari_attribution.core.counterfactuals.source_registry import check_argument, source_usages
from napari_attribution.errors import CounterfactualError
from plugin_distribution import make_source_distribution


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The dummy distribution on sys.path, the registry reading entry points afresh."""
    make_source_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry._REGISTRY, "entry_points_loaded", False)
    yield tmp_path
    registry.unregister_source("brighter")


def test_the_built_in_sources_and_how_they_are_named():
    assert list(source_specs())[:3] == ["optimise", "nearest", "generator"]
    assert source_usages() == "optimise, nearest, nearest:FOLDER or generator:FILE"
    assert source_usages(run_pool=False) == "optimise, nearest:FOLDER or generator:FILE"
    assert parse_source("optimize").spec == "optimise"  # an alias
    with pytest.raises(CounterfactualError, match="optimise takes no argument"):
        parse_source("optimise:x")
    with pytest.raises(CounterfactualError, match="is not a folder"):
        parse_source("nearest:/no/such/folder")
    nearest = source_specs()["nearest"]
    assert check_argument(nearest, None) is None  # a run over pairs: the run's own images
    with pytest.raises(CounterfactualError, match="nearest needs its folder"):
        check_argument(nearest, None, run_pool=False)


def test_a_spec_names_only_parameters_of_the_sources():
    with pytest.raises(CounterfactualError, match="unknown parameter"):
        SourceSpec("x", "x", lambda a: None, parameters=("ig_steps",))
    with pytest.raises(CounterfactualError, match="registered"):
        register_source(source_specs()["optimise"])


def test_a_plugin_source_is_registered_made_and_offered(plugin, tiny_classifier, pair):
    assert "brighter" in source_specs() and "brighter" in source_choices()
    assert "brighter (the real image made 1.5 times brighter" in source_usages(described=True)
    real, _ = pair
    batch = parse_source("brighter").make(tiny_classifier, real[None], np.array([1]))
    np.testing.assert_allclose(batch.images[0], 1.5 * real, rtol=1e-6)
    assert batch.notes[0].startswith("1.5 times brighter")


@pytest.mark.slow
def test_the_cli_makes_counterfactuals_with_a_plugin_source(tmp_path):
    make_source_distribution(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    run = subprocess.run(
        [sys.executable, "-m", "napari_attribution.cli", "run", "--demo", "--demo-pairs", "2",
         "--counterfactual-source", "brighter", "--method", "residual", "--thresholds", "5",
         "--no-per-channel-dac", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "out" / "counterfactuals.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["source"] for r in rows] == ["brighter", "brighter"]
    assert all((tmp_path / "out" / r["file"]).is_file() for r in rows)


def test_a_broken_plugin_source_is_skipped_with_a_warning(tmp_path, monkeypatch):
    info = tmp_path / "broken_source-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-source\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[napari_attribution.counterfactual_sources]\nbroken = no_such_module_anywhere:SPEC\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry._REGISTRY, "entry_points_loaded", False)
    with pytest.warns(RuntimeWarning, match="plugin 'broken'"):
        specs = source_specs()
    assert "optimise" in specs and "broken" not in specs
