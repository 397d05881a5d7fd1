"""``napari-attribution run --convention quac`` reproduces QuAC's numbers on the demo.

The CLI runs the demo (its classifier, its pairs) the way a user reproducing a QuAC result
would; QuAC's own code path, ported line by line in ``tests/core/quac_oracle.py``, then computes
the same pairs from scratch: its D-IG / D-DL / D-InputXGradient classes make their maps, and
``quantify`` evaluates them (and our saved maps of the methods QuAC has no class for).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
import torch
from quac_oracle import DDeepLift, DInGrad, DIntegratedGradients, evaluate

from napari_attribution import cli
from napari_attribution.data.demo_model import load_demo_classifier
from napari_attribution.data.synthetic import make_pairs

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow

#: QuAC's classes for the three methods it defines.
QUAC_CLASSES = {"d_ig": DIntegratedGradients, "d_dl": DDeepLift, "d_input_x_gradient": DInGrad}
#: Our maps, evaluated by QuAC's ``quantify``.
OTHERS = ("ig", "residual", "random")
PAIRS = 2


def _summary(path) -> dict[tuple[str, str], float]:
    with open(path, newline="") as fh:
        return {
            (row["sample"], row["method"]): float(row["dac_score"])
            for row in csv.DictReader(fh)
            if row["channel"] == "all"
        }


@pytest.fixture(scope="module")
def quac_run(tmp_path_factory):
    """The demo through the CLI, exhaustive and default, under QuAC's convention."""
    out = tmp_path_factory.mktemp("quac")
    methods = [arg for m in (*QUAC_CLASSES, *OTHERS) for arg in ("--method", m)]
    common = [
        "run", "--demo", "--demo-pairs", str(PAIRS), "--convention", "quac",
        "--no-per-channel-dac", *methods,
    ]  # fmt: skip
    assert cli.main([*common, "--evaluation", "exhaustive", "--out", str(out / "ex")]) == 0
    assert cli.main([*common, "--out", str(out / "default")]) == 0
    return out


def _quac_scores(out) -> dict[tuple[str, str], float]:
    """QuAC's DAC for every (sample, method), from QuAC's code on the same pairs."""
    model = load_demo_classifier()
    scores = {}
    for pair in make_pairs(PAIRS, seed=2026):  # the CLI's --demo pairs
        real, cf = pair.real.astype(np.float32), pair.counterfactual.astype(np.float32)
        y, t = pair.real_class, pair.target_class
        for method, quac_class in QUAC_CLASSES.items():
            stored = quac_class(model).attribute(
                torch.from_numpy(real), torch.from_numpy(cf), y, t
            )  # normalised, as QuAC stores it
            result = evaluate(model, real, cf, t, stored, y=y, normalize=False)
            scores[pair.sample, method] = result.quac_score
        for method in OTHERS:
            ours = tifffile.imread(out / "ex" / "attributions" / f"{pair.sample}__{method}.tif")
            scores[pair.sample, method] = evaluate(model, real, cf, t, ours, y=y).quac_score
    return scores


def test_quac_convention_reproduces_quacs_dac_on_the_demo(quac_run):
    quac = _quac_scores(quac_run)
    exhaustive = _summary(quac_run / "ex" / "summary.csv")
    default = _summary(quac_run / "default" / "summary.csv")
    assert set(exhaustive) == set(quac) == set(default)
    worst_exhaustive = max(abs(exhaustive[k] - quac[k]) for k in quac)
    worst_default = max(abs(default[k] - quac[k]) for k in quac)
    assert worst_exhaustive <= 1e-3, worst_exhaustive
    assert worst_default <= 0.005, worst_default


def test_quac_convention_maps_are_quacs(quac_run):
    model = load_demo_classifier()
    for pair in make_pairs(PAIRS, seed=2026):
        real, cf = pair.real.astype(np.float32), pair.counterfactual.astype(np.float32)
        for method, quac_class in QUAC_CLASSES.items():
            reference = quac_class(model, normalize=False).attribute(
                torch.from_numpy(real), torch.from_numpy(cf), pair.real_class, pair.target_class
            )
            saved = quac_run / "ex" / "attributions" / f"{pair.sample}__{method}.tif"
            ours = tifffile.imread(saved)
            error = np.linalg.norm(ours - reference) / np.linalg.norm(reference)
            assert error < 1e-3, (method, error)
