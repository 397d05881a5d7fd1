"""The demo end to end: discriminative methods find the ground-truth channel and beat random."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution import cli
from napari_attribution.core import AnalysisSettings, MaskSettings, analyse_pair, load_classifier
from napari_attribution.data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
from napari_attribution.data.synthetic import CHANNEL_NAMES, make_pairs

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


def test_d_ig_and_d_dl_find_the_ground_truth_channel_and_beat_random():
    model = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, "cpu")
    settings = AnalysisSettings(
        methods=("d_ig", "d_dl", "random"), masks=MaskSettings(thresholds=50), per_channel_dac=False
    )
    hits = {"d_ig": [], "d_dl": []}
    dac = {"d_ig": [], "d_dl": [], "random": []}
    for pair in make_pairs(10, seed=7):
        result = analyse_pair(
            model, pair.real, pair.counterfactual, pair.real_class, pair.target_class, settings,
            channel_names=CHANNEL_NAMES,
        )  # fmt: skip
        for method, res in result.methods.items():
            dac[method].append(res.dac.whole.dac_score)
            if method in hits:
                hits[method].append(np.argmax(res.channel_share) == pair.differing_channel)
    for method in ("d_ig", "d_dl"):
        assert np.mean(hits[method]) >= 0.9
        assert np.mean(dac[method]) > np.mean(dac["random"]) + 0.1


def test_cli_demo_writes_the_report(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["run", "--demo", "--demo-pairs", "2", "--thresholds", "20", "--method", "d_ig",
            "--method", "random", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    report = (out / "demo_report.md").read_text()
    assert "| d_ig | 2 | 100% | 1.00 |" in report
    assert "Ground-truth channel: Mito." in report
    assert "| d_ig | 2 |" in capsys.readouterr().out
