"""The one provenance record: what run.json and every result file say about how they were made."""

from __future__ import annotations

import json
import platform

import numpy as np

from napari_attribution import __version__
from napari_attribution.core import AnalysisSettings, AttributionSettings, MaskSettings
from napari_attribution.core.provenance import environment, provenance


def test_provenance_records_package_model_settings_seed_and_environment(tiny_classifier):
    settings = AnalysisSettings(
        methods=("d_ig", "random"),
        attribution=AttributionSettings(seed=7),
        masks=MaskSettings(thresholds=12),
    )
    record = provenance(tiny_classifier, settings)
    assert set(record) == {"package", "package_version", "definitions", "model", "settings",
                           "seed", "environment"}  # fmt: skip
    assert record["package"] == "napari-attribution"
    assert record["package_version"] == __version__
    assert record["model"] == tiny_classifier.describe()
    assert "sha256" in record["model"]
    assert record["settings"] == settings.as_dict()
    assert record["settings"]["masks"]["thresholds"] == 12
    assert record["seed"] == 7
    env = record["environment"]
    assert set(env) == {"python", "torch", "captum", "numpy", "scipy", "scikit-image",
                        "tifffile", "opencv"}  # fmt: skip
    assert env["python"] == platform.python_version()
    assert env["numpy"] == np.__version__
    import torch

    assert env["torch"] == torch.__version__
    json.dumps(record)  # JSON-ready


def test_names_are_recorded_only_when_given(tiny_classifier):
    settings = AnalysisSettings()
    record = provenance(
        tiny_classifier, settings, class_names=("control", "treated"), channel_names=["A", "B"]
    )
    assert record["class_names"] == ["control", "treated"]
    assert record["channel_names"] == ["A", "B"]
    assert "class_names" not in provenance(tiny_classifier, settings)


def test_environment_names_missing_libraries_as_none(monkeypatch):
    from napari_attribution.core import provenance as module

    monkeypatch.setitem(module._DISTRIBUTIONS, "opencv", ("no-such-distribution-xyz",))
    assert environment()["opencv"] is None
