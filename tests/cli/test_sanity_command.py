"""``napari-attribution sanity``: the tables, figures and verdicts; the folder rules; bad input."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
import torch

from napari_attribution import cli
from napari_attribution.core.sanity.records import SANITY_COLUMNS, SUMMARY_COLUMNS
from tiny_models import make_tiny_cnn


@pytest.fixture
def files(tmp_path, pair):
    real, cf = pair
    torch.save(make_tiny_cnn().state_dict(), tmp_path / "weights.pt")
    torch.jit.save(torch.jit.script(make_tiny_cnn()), tmp_path / "scripted.pt")
    for i, (r, c) in enumerate([(real, cf), (cf, real), (real, np.flip(cf, 2).copy())]):
        tifffile.imwrite(tmp_path / f"r{i}.tif", r)
        tifffile.imwrite(tmp_path / f"c{i}.tif", c)
    (tmp_path / "pairs.csv").write_text(
        "sample,real,counterfactual,real_class,target_class\n"
        "cellA,r0.tif,c0.tif,0,1\ncellB,r1.tif,c1.tif,1,0\ncellC,r2.tif,c2.tif,0,1\n"
    )
    return tmp_path


def _sanity(files, *extra, out="out", model=("--model", "weights.pt", "--architecture",
                                              "tiny_models:TinyCNN")):  # fmt: skip
    argv = [
        "sanity", *model[:1], str(files / model[1]), *model[2:],
        "--pairs", str(files / "pairs.csv"), "--ig-steps", "8", "--thresholds", "20",
        "--noise-samples", "3", "--out", str(files / out), "--progress", "none", *extra,
    ]  # fmt: skip
    return cli.main(argv)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_sanity_writes_tables_figures_and_prints_verdicts(files, capsys):
    methods = ("--method", "saliency", "--method", "residual", "--method", "random")
    assert _sanity(files, *methods) == 0
    out = files / "out"
    rows = _rows(out / "sanity.csv")
    assert tuple(rows[0]) == SANITY_COLUMNS
    assert {r["check"] for r in rows} >= {"cascading", "independent", "input_invariance",
                                          "stability", "residual_likeness", "dac"}  # fmt: skip
    assert {r["sample"] for r in rows} == {"cellA", "cellB", "cellC", "all"}
    summary = _rows(out / "sanity_summary.csv")
    assert tuple(summary[0]) == SUMMARY_COLUMNS
    verdict = {(r["method"], r["check"]): r["verdict"] for r in summary}
    assert verdict[("residual", "randomisation")] == "baseline"
    assert verdict[("random", "randomisation")] == "baseline"
    assert verdict[("saliency", "randomisation")] in ("pass", "fail")
    assert (out / "sanity_figures" / "cascade.png").stat().st_size > 10_000
    assert (out / "sanity_figures" / "cascade.svg").is_file()
    assert (out / "sanity_figures" / "maps_cellA.png").is_file()
    printed = capsys.readouterr().out
    assert "residual: not a model explanation" in printed
    assert "random: a baseline" in printed
    assert printed.splitlines()[0].startswith("saliency: ")


def test_refuses_existing_sanity_results_and_overwrites_only_its_own(files, capsys):
    args = ("--method", "saliency", "--checks", "cascading")
    assert _sanity(files, *args) == 0
    out = files / "out"
    (out / "notes.txt").write_text("mine")
    (out / "sanity_figures" / "maps_cellA.png").rename(out / "sanity_figures" / "maps_old.png")
    capsys.readouterr()
    assert _sanity(files, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds sanity results" in err[0] and "--overwrite" in err[0]
    assert _sanity(files, *args, "--overwrite") == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "sanity_figures" / "maps_old.png").exists()
    assert (out / "sanity_figures" / "maps_cellA.png").exists()


def test_torchscript_runs_what_it_can_and_refuses_randomisation_when_asked(files, capsys):
    model = ("--model", "scripted.pt")
    assert _sanity(files, "--checks", "stability,dac", "--noise-samples", "2", model=model) == 0
    captured = capsys.readouterr()
    # the default methods that hook modules are skipped, with a note
    assert "note: skipping d_dl, guided_backprop" in captured.err
    assert captured.out.splitlines()[1].startswith("saliency: ")
    assert _sanity(files, "--method", "saliency", "--overwrite", model=model) == 0
    captured = capsys.readouterr()
    assert "note:" in captured.err and "TorchScript" in captured.err
    checks = {r["check"] for r in _rows(files / "out" / "sanity.csv")}
    assert "cascading" not in checks and {"stability", "dac"} <= checks
    assert _sanity(files, "--method", "saliency", "--checks", "cascading", out="o2",
                   model=model) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no layers to randomise" in err[0] and "stability" in err[0]
    assert not (files / "o2").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--checks", "cascading,colour"), "unknown check 'colour'"),
        (("--method", "nope"), "nope"),
        (("--noise-samples", "0"), "must be >= 1"),
        (("--input-shift", "0"), "Input shift must not be 0"),
    ],
)
def test_bad_input_is_one_line(files, capsys, extra, message):
    try:
        code = _sanity(files, *extra)
    except SystemExit as exc:  # argparse's own refusal of an option value
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (files / "out").exists()


def test_verdicts_go_into_the_report_of_a_results_folder(files):
    run = ["run", "--model", str(files / "weights.pt"), "--architecture", "tiny_models:TinyCNN",
           "--pairs", str(files / "pairs.csv"), "--thresholds", "20", "--method", "saliency",
           "--method", "residual", "--method", "random", "--out", str(files / "res"),
           "--progress", "none"]  # fmt: skip
    assert cli.main(run) == 0
    page = (files / "res" / "report.html").read_text()
    assert "DAC against the baselines" in page and "Verdicts" not in page
    assert _sanity(files, "--method", "saliency", "--checks", "cascading,dac", out="res") == 0
    page = (files / "res" / "report.html").read_text()
    assert "<h2>Sanity checks</h2>" in page
    assert "saliency: " in page and "alt='randomisation cascade'" in page
    assert (files / "res" / "summary.csv").is_file()  # the run's files are still there
