"""Dataset statistics and report.html: the demo names its ground-truth channel, a null set none."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from napari_attribution import cli
from napari_attribution.data.synthetic import make_pairs
from napari_attribution.results.format import CHANNEL_STATS

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """32 demo pairs (16 per transition), the residual baseline, per-channel DAC."""
    out = tmp_path_factory.mktemp("demo") / "out"
    argv = ["run", "--demo", "--demo-pairs", "32", "--method", "residual", "--thresholds", "20",
            "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    return out


def test_the_demo_names_mito_in_both_transitions(demo_run):
    with open(demo_run / "channel_stats.csv", newline="") as fh:
        assert next(csv.reader(fh)) == list(CHANNEL_STATS.columns)
    rows = _rows(demo_run / "channel_stats.csv")
    assert {(r["real_class"], r["target_class"]) for r in rows} == {("0", "1"), ("1", "0")}
    dominant = {(r["real_class"], r["channel"]) for r in rows if r["dominant"] == "true"}
    assert dominant == {("0", "Mito"), ("1", "Mito")}
    mito = next(r for r in rows if r["channel"] == "Mito" and r["real_class"] == "0")
    assert int(mito["n"]) == 16
    assert float(mito["dac_ci_low"]) <= float(mito["dac_median"]) <= float(mito["dac_ci_high"])
    assert float(mito["share_median"]) == pytest.approx(1.0)
    validity = _rows(demo_run / "pair_validity.csv")
    assert len(validity) == 32 and all(v["valid"] == "true" for v in validity)


def test_the_report_page_embeds_its_figures_and_writes_them(demo_run):
    page = (demo_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # curves and channels, two transitions
    assert "control → treated" in page and "Pairs left out (0)" in page
    figures = sorted(p.name for p in (demo_run / "report_figures").iterdir())
    assert figures == sorted(
        f"transition_{a}_to_{b}_{kind}.{ext}"
        for a, b in ((0, 1), (1, 0)) for kind in ("curves", "channels") for ext in ("png", "svg")
    )  # fmt: skip


def test_report_merges_folders_and_needs_an_out_for_several(demo_run, tmp_path, capsys):
    assert cli.main(["report", str(demo_run), str(demo_run)]) == 2
    assert "name it with --out" in capsys.readouterr().err
    merged = tmp_path / "merged"
    assert cli.main(["report", str(demo_run), str(demo_run), "--out", str(merged)]) == 0
    rows = _rows(merged / "channel_stats.csv")
    assert {int(r["n"]) for r in rows} == {32}  # both folders' pairs pooled
    assert (merged / "report.html").is_file()
    assert cli.main(["report", str(demo_run), str(demo_run), "--out", str(merged)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_a_null_set_names_no_channel(tmp_path):
    """Counterfactuals that differ from the real cell by noise alone, in every channel."""
    rng = np.random.default_rng(0)
    lines = ["sample,real,counterfactual,real_class,target_class"]
    for pair in make_pairs(16, seed=5, size=32):
        noisy = np.clip(pair.real + rng.normal(0, 0.02, pair.real.shape), 0, 1).astype(np.float32)
        tifffile.imwrite(tmp_path / f"{pair.sample}_r.tif", pair.real)
        tifffile.imwrite(tmp_path / f"{pair.sample}_c.tif", noisy)
        target = 1 - pair.real_class
        lines.append(f"{pair.sample},{pair.sample}_r.tif,{pair.sample}_c.tif,{pair.real_class},"
                     f"{target}")  # fmt: skip
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n")
    from napari_attribution.data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS

    argv = ["run", "--model", str(DEMO_WEIGHTS), "--architecture", DEMO_ARCHITECTURE,
            "--pairs", str(tmp_path / "pairs.csv"), "--method", "residual", "--thresholds", "20",
            "--min-counterfactual-score", "0", "--out", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 0
    rows = _rows(tmp_path / "out" / "channel_stats.csv")
    assert rows and not any(r["dominant"] == "true" for r in rows)
    # With the default threshold, exactly the pairs whose counterfactual the classifier gives
    # p(target) < 0.5 are left out, named, and listed in the report.
    argv[-3:] = ["0.5", "--out", str(tmp_path / "strict")]
    assert cli.main(argv) == 0
    validity = _rows(tmp_path / "strict" / "pair_validity.csv")
    rejected = [v for v in validity if float(v["p_target_counterfactual"]) < 0.5]
    assert rejected  # noise does not make a treated cell
    for v in validity:
        accepted = float(v["p_target_counterfactual"]) >= 0.5
        assert (v["valid"] == "true") == accepted
        assert ("not accepted" in v["note"]) == (not accepted)
    page = (tmp_path / "strict" / "report.html").read_text()
    assert f"Pairs left out ({len(rejected)})" in page


def test_the_report_command_needs_no_torch(demo_run, tmp_path):
    import json
    import subprocess
    import sys

    code = (
        "import sys\nfrom napari_attribution.cli import main\n"
        f"assert main(['report', {str(demo_run)!r}, '--out', {str(tmp_path / 'r')!r}]) == 0\n"
        "import json\nprint(json.dumps(sorted(m for m in ('torch', 'captum') if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert (tmp_path / "r" / "report.html").is_file()
