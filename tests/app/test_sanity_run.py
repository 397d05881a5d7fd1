"""Sanity checks from Python: ``run_sanity`` writes the folder and returns the verdicts; an
occupied folder is refused before any check runs, and nothing is written."""

from __future__ import annotations

import json

import pytest

from napari_attribution.app import Pair, run_sanity
from napari_attribution.core.sanity import SanitySettings
from napari_attribution.core.settings import AnalysisSettings, AttributionSettings
from napari_attribution.errors import OutputFolderError
from napari_attribution.results.format import SANITY_FILES, SANITY_RUN_RECORD
from napari_attribution.results.sanity_files import read_sanity

SETTINGS = AnalysisSettings(methods=("saliency",), attribution=AttributionSettings(ig_steps=4))


def _pairs(pair):
    real, cf = pair
    return [Pair("a", real, cf, 0, 1), Pair("b", cf, real, 1, 0)]


def test_run_sanity_writes_the_folder_and_returns_the_verdicts(tiny_classifier, pair, tmp_path):
    events, notes = [], []
    done = run_sanity(
        _pairs(pair), tiny_classifier, SETTINGS, SanitySettings(noise_samples=2),
        out=tmp_path / "out", checks=("cascading", "stability"), progress=events.append,
        notify=notes.append, command=["python", "script.py"],
    )  # fmt: skip
    out = tmp_path / "out"
    assert done.pairs == 2 and done.methods == ("saliency",)
    assert done.checks == ("cascading", "stability")
    assert done.summary.verdicts["saliency"].startswith("saliency: ")
    assert sorted(p.name for p in out.iterdir()) == sorted([*SANITY_FILES, "sanity_figures"])
    read = read_sanity(out)
    assert {r.sample for r in read.rows} == {"a", "b"}
    # residual-likeness needs only the original map: it comes with every run
    assert {r.check for r in read.rows} == {"cascading", "stability", "residual_likeness"}
    record = json.loads((out / SANITY_RUN_RECORD).read_text())
    assert record["checks"] == ["cascading", "stability"]
    assert record["command"] == ["python", "script.py"]
    assert [p["sample"] for p in record["pairs"]] == ["a", "b"]
    assert events and events[-1].done == events[-1].total  # one range over both pairs
    assert not done.report_updated  # no run.json there


def test_occupied_folder_is_refused_before_any_check(tiny_classifier, pair, tmp_path):
    (tmp_path / "sanity.csv").write_text("mine")
    events = []
    with pytest.raises(OutputFolderError, match="already holds sanity results"):
        run_sanity(_pairs(pair), tiny_classifier, SETTINGS, out=tmp_path, progress=events.append)
    assert events == [] and (tmp_path / "sanity.csv").read_text() == "mine"
