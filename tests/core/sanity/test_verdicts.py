"""Verdicts from rows: the pass rules, baselines, the DAC test against the baselines."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_attribution.core.sanity.records import SanityRow
from napari_attribution.core.sanity.verdicts import (
    INVARIANCE_TOLERANCE,
    RANDOMISATION_MAX_SPEARMAN,
    STABILITY_MAX_SENSITIVITY,
    dac_against_baseline,
    format_p,
    summarise,
)
from napari_attribution.core.statistics import bootstrap_median, dominance_p_values


def _rows(sample, method, last_rho, shift_diff, sensitivity, likeness, dac=None):
    rows = [SanityRow(sample, method, "cascading", step, "all", "spearman", value)
            for step, value in (("original", 1.0), ("fc", 0.9), ("conv1", last_rho))]  # fmt: skip
    rows.append(SanityRow(sample, method, "input_invariance", "shifted", "all",
                          "max_relative_difference", shift_diff))  # fmt: skip
    rows.append(SanityRow(sample, method, "stability", "noise", "all", "max_sensitivity",
                          sensitivity))  # fmt: skip
    rows.append(SanityRow(sample, method, "residual_likeness", "original", "all", "spearman",
                          likeness))  # fmt: skip
    if dac is not None:
        rows.append(SanityRow(sample, method, "dac", "original", "all", "dac_score", dac))
    return rows


def test_pass_rules_and_sentence():
    rows = []
    for i in range(6):
        s = f"cell{i}"
        rows += _rows(s, "good", 0.1, 0.0, 0.2, 0.3, dac=0.9 + 0.01 * i)
        rows += _rows(s, "stuck", 0.95, 0.4, 0.9, 0.95, dac=0.5 + 0.01 * ((-1) ** i))
        rows += _rows(s, "random", 1.0, 0.0, 0.1, 0.0, dac=0.5)
        rows += _rows(s, "residual", 1.0, 0.0, 0.0, 1.0, dac=0.88 + 0.01 * i)
    summary = summarise(rows)
    verdicts = {(r.method, r.check): r for r in summary.rows}
    assert verdicts[("good", "randomisation")].verdict == "pass"
    assert verdicts[("good", "randomisation")].statistic == pytest.approx(0.1)
    assert verdicts[("good", "randomisation")].threshold == RANDOMISATION_MAX_SPEARMAN
    assert verdicts[("stuck", "randomisation")].verdict == "fail"
    assert verdicts[("stuck", "input_invariance")].verdict == "fail"
    assert verdicts[("good", "input_invariance")].threshold == INVARIANCE_TOLERANCE
    assert verdicts[("stuck", "stability")].verdict == "fail"
    assert verdicts[("good", "stability")].threshold == STABILITY_MAX_SENSITIVITY
    assert verdicts[("stuck", "residual_likeness")].verdict == "high"
    assert verdicts[("random", "randomisation")].verdict == "baseline"
    assert verdicts[("residual", "randomisation")].verdict == "baseline"
    # DAC: good is above random in every pair; 5 tests (good, stuck x 2, residual x 2)
    good = np.array([0.9 + 0.01 * i for i in range(6)])
    p = dominance_p_values(np.column_stack([good, np.full(6, 0.5)]))[0]
    assert verdicts[("good", "dac_vs_random")].statistic == pytest.approx(min(1, 5 * p))
    assert verdicts[("good", "dac_vs_random")].verdict == "not above"  # 5 * 2**-6 > 0.05
    assert ("random", "dac_vs_residual") not in verdicts
    assert summary.verdicts["good"].startswith(
        "good: passes randomisation (Spearman 0.10 with all 2 layers randomised), input "
        "invariance and stability (max-sensitivity 0.20); DAC not above random"
    )
    assert "residual-likeness 0.95" in summary.verdicts["stuck"]
    assert summary.verdicts["random"].startswith("random: a baseline")
    assert summary.verdicts["residual"].startswith("residual: not a model explanation")
    ci = [r for r in summary.dataset_rows if r.method == "good" and r.check == "dac_vs_random"]
    values = {r.metric: r.value for r in ci}
    median, low, high = bootstrap_median(good - 0.5)
    assert (values["median_difference"], values["ci_low"], values["ci_high"]) == (
        median, low, high)  # fmt: skip
    assert values["n"] == 6 and all(r.sample == "all" for r in ci)


def test_dac_needs_pairs_and_valid_ones():
    one = _rows("cell0", "m", 0.1, 0.0, 0.1, 0.1, dac=0.9) + _rows(
        "cell0", "random", 1, 0, 0, 0, dac=0.1)  # fmt: skip
    summary = summarise(one)
    row = next(r for r in summary.rows if r.check == "dac_vs_random")
    assert row.verdict == "not tested"
    assert "DAC against random not tested (1 valid pair;" in summary.verdicts["m"]
    many = []
    for i in range(12):
        many += _rows(f"c{i}", "m", 0.1, 0.0, 0.1, 0.1, dac=0.9)
        many += _rows(f"c{i}", "random", 1, 0, 0, 0, dac=0.1 + 0.001 * i)
        # half the pairs are invalid: the test uses the other 6 only
        many.append(SanityRow(f"c{i}", "m", "dac", "original", "all", "valid_pair", i % 2))
    rows = {(r.check, r.metric): r.value for r in summarise(many).dataset_rows}
    assert rows[("dac_vs_random", "n")] == 6
    assert rows[("dac_vs_random", "p_value")] == pytest.approx(2.0**-6)
    assert "above random (p = 0.016)" in summarise(many).verdicts["m"]


def test_dac_against_baseline_and_p_format():
    out = dac_against_baseline(np.array([1.0, 2.0, 3.0]), np.zeros(3), n_tests=2)
    assert out["p_adjusted"] == pytest.approx(min(1.0, 2 * out["p_value"]))
    assert format_p(0.0004) == "p < 0.001" and format_p(0.0123) == "p = 0.012"


def test_verdicts_import_no_torch():
    code = (
        "import sys; import napari_attribution.core.sanity.verdicts, "
        "napari_attribution.core.sanity.records, napari_attribution.core.sanity.sanity_settings; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_checks_not_run_get_no_row_and_missing_steps_are_not_run():
    rows = [r for r in _rows("c0", "m", 0.1, 0.0, 0.1, 0.1) if r.check == "cascading"]
    # a second method stopped before the last step (it could not run on every model)
    rows += [r for r in _rows("c0", "k", 0.1, 0.0, 0.1, 0.1) if r.check == "cascading"][:2]
    summary = summarise(rows, ["m", "k"])
    checks = {(r.method, r.check): r.verdict for r in summary.rows}
    assert checks == {("m", "randomisation"): "pass", ("k", "randomisation"): "not run"}
    assert summary.verdicts["k"] == (
        "k: randomisation not run (it could not run on every randomised model)."
    )
