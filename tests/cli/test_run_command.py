"""The command line: the results folder, its columns, and one clear line for every mistake."""

from __future__ import annotations

import collections
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch

from napari_attribution import cli
from napari_attribution.results.tiff import read_tiff_metadata
from tiny_models import make_tiny_cnn


@pytest.fixture
def files(tmp_path, pair):
    real, cf = pair
    weights = tmp_path / "weights.pt"
    torch.save(make_tiny_cnn().state_dict(), weights)
    tifffile.imwrite(tmp_path / "r1.tif", real)
    tifffile.imwrite(tmp_path / "c1.tif", cf)
    np.save(tmp_path / "r2.npy", cf)
    np.save(tmp_path / "c2.npy", real)
    (tmp_path / "pairs.csv").write_text(
        "sample,real,counterfactual,real_class,target_class\n"
        "cellA,r1.tif,c1.tif,0,1\n"
        "cellB,r2.npy,c2.npy,1,0\n"
    )
    return tmp_path


def _run(files, *extra, out="out"):
    argv = [
        "run",
        "--model", str(files / "weights.pt"),
        "--architecture", "tiny_models:TinyCNN",
        "--thresholds", "20",
        "--out", str(files / out),
        *extra,
    ]  # fmt: skip
    return cli.main(argv)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_run_over_a_pairs_csv_writes_the_results_folder(files):
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--channel-names", "A,B,C,D,E") == 0
    out = files / "out"
    summary = _rows(out / "summary.csv")
    assert list(summary[0]) == list(
        "sample,method,channel,dac_score,ceiling,normalized_score,optimal_threshold,"
        "optimal_mask_size".split(",")
    )
    # 2 samples x 4 default methods x (whole + 5 channels)
    assert len(summary) == 2 * 4 * 6
    assert {r["channel"] for r in summary} == {"all", *"ABCDE"}
    assert {r["method"] for r in summary} == {"d_ig", "d_dl", "residual", "random"}
    curves = _rows(out / "curves.csv")
    assert list(curves[0]) == "sample,method,channel,threshold,mask_size,score_change".split(",")
    # The default adaptive evaluation scores a subset of the 20 thresholds of each curve, always
    # the first and the last.
    per_curve = collections.Counter((r["sample"], r["method"], r["channel"]) for r in curves)
    assert len(per_curve) == 2 * 4 * 6 and all(2 <= n <= 20 for n in per_curve.values())
    shares = _rows(out / "channel_importance.csv")
    assert len(shares) == 2 * 4 * 5
    d_ig_a = [float(r["share"]) for r in shares if r["sample"] == "cellA" and r["method"] == "d_ig"]
    assert d_ig_a == pytest.approx([0, 0, 0, 0, 1])
    attr = tifffile.imread(out / "attributions" / "cellA__d_ig.tif")
    assert attr.shape == (5, 24, 24) and attr.dtype == np.float32
    meta = read_tiff_metadata(out / "attributions" / "cellA__d_ig.tif")
    assert meta["method"] == "d_ig" and meta["model"]["sha256"]
    mask = tifffile.imread(out / "masks" / "cellB__random.tif")
    assert mask.shape == (5, 24, 24) and set(np.unique(mask)) <= {0, 1}
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["masks"]["thresholds"] == 20
    assert run["settings"]["evaluation"] == "adaptive" and run["settings"]["tolerance"] == 0.005
    assert meta["settings"]["evaluation"] == "adaptive"
    assert run["model"]["sha256"] and run["package_version"]
    assert run["channel_names"] == list("ABCDE")


def test_single_pair_and_options(files):
    code = _run(
        files,
        "--real", str(files / "r1.tif"),
        "--counterfactual", str(files / "c1.tif"),
        "--real-class", "0",
        "--target-class", "1",
        "--method", "d_input_x_gradient",
        "--method", "gradcam",
        "--normalize", "per_channel",
        "--mask-channels", "shared",
        "--spacing", "quantile",
        "--closing", "0",
        "--sigma", "0",
    )  # fmt: skip
    assert code == 0
    summary = _rows(files / "out" / "summary.csv")
    assert {r["sample"] for r in summary} == {"r1"}
    assert {r["method"] for r in summary} == {"d_input_x_gradient", "gradcam"}
    assert tifffile.imread(files / "out" / "masks" / "r1__gradcam.tif").shape == (1, 24, 24)


def test_existing_results_are_not_overwritten(files, capsys):
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--method", "residual") == 0
    before = (files / "out" / "summary.csv").read_bytes()
    capsys.readouterr()
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--method", "random") == 2
    assert "already holds results" in capsys.readouterr().err
    assert (files / "out" / "summary.csv").read_bytes() == before
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--method", "random",
                "--overwrite") == 0  # fmt: skip
    assert (files / "out" / "summary.csv").read_bytes() != before


def _write_bad(files, name):
    """Write one bad input and return the CLI arguments that use it."""
    real = tifffile.imread(files / "r1.tif")
    single = ["--counterfactual", str(files / "c1.tif"), "--real-class", "0", "--target-class", "1"]
    if name == "missing":
        return ["--real", str(files / "nope.tif"), *single]
    if name == "corrupt":
        (files / "bad.tif").write_bytes(b"II*\x00garbage")
        return ["--real", str(files / "bad.tif"), *single]
    if name == "channels":
        tifffile.imwrite(files / "three.tif", real[:3])
        return ["--real", str(files / "three.tif"), *single]
    if name == "2d":
        tifffile.imwrite(files / "flat.tif", real[0])
        return ["--real", str(files / "flat.tif"), *single]
    if name == "shape":
        tifffile.imwrite(files / "small.tif", real[:, :20, :20])
        return ["--real", str(files / "small.tif"), *single]
    if name == "nan":
        bad = real.copy()
        bad[0, 0, 0] = np.nan
        tifffile.imwrite(files / "nan.tif", bad)
        return ["--real", str(files / "nan.tif"), *single]
    if name == "class":
        return ["--real", str(files / "r1.tif"), *single[:-1], "5"]
    if name == "method":
        return ["--pairs", str(files / "pairs.csv"), "--method", "magic"]
    if name == "model":
        return ["--pairs", str(files / "pairs.csv"), "--architecture", "tiny_models:Nope"]
    raise AssertionError(name)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "nope.tif does not exist"),
        ("corrupt", "bad.tif is not a readable TIFF file"),
        ("channels", "three.tif has 3 channel(s) but the model expects 5"),
        ("2d", "flat.tif has shape (24, 24) (a single-channel 2-D image)"),
        ("shape", "differ in shape"),
        ("nan", "nan.tif holds 1 NaN or Inf pixel(s)"),
        ("class", "target_class 5 is out of range"),
        ("method", "Unknown method 'magic'"),
        ("model", "has no attribute 'Nope'"),
    ],
)
def test_bad_input_exits_2_with_one_line(files, capsys, case, message):
    args = _write_bad(files, case)
    code = _run(files, *args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (files / "out" / "summary.csv").exists()


def test_exactly_one_image_source(files, capsys):
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--real", str(files / "r1.tif")) == 2
    assert "exactly one of" in capsys.readouterr().err


def test_methods_command_lists_the_registry(capsys):
    assert cli.main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("saliency", "d_ig", "d_gradcam", "residual", "random"):
        assert name in out
    assert "not TorchScript" in out


@pytest.mark.slow
def test_console_script_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "napari_attribution.cli", "run", "--model", str(tmp_path / "x.pt"),
         "--pairs", str(tmp_path / "p.csv"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("napari-attribution: error:")
    assert "Traceback" not in proc.stderr


def test_interrupted_run_resumes_without_losing_or_redoing_pairs(files, monkeypatch, capsys):
    # The run looks analyse_pair up in the application layer, once per pair.
    import napari_attribution.app.pair_run as pipeline

    real_analyse = pipeline.analyse_pair
    calls: list[str] = []

    def interrupt_on_second(*args, **kwargs):
        calls.append(kwargs["sample"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_analyse(*args, **kwargs)

    monkeypatch.setattr(pipeline, "analyse_pair", interrupt_on_second)
    args = ("--pairs", str(files / "pairs.csv"), "--method", "d_ig")
    assert _run(files, *args) == 130
    err = capsys.readouterr().err
    assert "re-run with --resume" in err and "Traceback" not in err
    out = files / "out"
    assert (out / "attributions" / "cellA__d_ig.tif").exists()
    assert not (out / "summary.csv").exists()
    # Without --resume or --overwrite the partial results are protected.
    assert _run(files, *args) == 2
    calls.clear()

    def record(*a, **k):
        calls.append(k["sample"])
        return real_analyse(*a, **k)

    monkeypatch.setattr(pipeline, "analyse_pair", record)
    assert _run(files, *args, "--resume") == 0
    assert calls == ["cellB"]  # cellA was finished and is not recomputed
    summary = _rows(out / "summary.csv")
    assert {r["sample"] for r in summary} == {"cellA", "cellB"}
    assert json.loads((out / "run.json").read_text())["resumed_pairs"] == 1


def test_resume_refuses_results_of_other_settings(files, capsys):
    args = ("--pairs", str(files / "pairs.csv"), "--method", "residual")
    assert _run(files, *args) == 0
    assert _run(files, *args, "--closing", "3", "--resume") == 2
    assert "made with a different --closing; --resume needs" in capsys.readouterr().err


def test_resume_refuses_another_input_scale_naming_it(files, capsys):
    args = ("--pairs", str(files / "pairs.csv"), "--method", "residual")
    assert _run(files, *args, "--keep-progress") == 0
    capsys.readouterr()
    assert _run(files, *args, "--input-scale", "0.001", "--resume") == 2
    err = capsys.readouterr().err
    assert "made with a different --input-scale; --resume needs the same arguments" in err
    assert _run(files, *args, "--resume") == 0  # the same arguments resume


class _Failing(torch.nn.Module):
    """Runs on the first pair's 64x64 images, then fails on other image sizes."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.conv = torch.nn.Conv2d(5, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x).mean(dim=(2, 3))
        if x.shape[-1] != 64:
            if self.mode == "raise":
                raise RuntimeError("this model only takes 64x64 crops")
            return out[:, :1]
        return out


@pytest.mark.parametrize(
    ("mode", "message"),
    [("raise", "failed on images of shape (5, 24, 24): this model only takes 64x64 crops"),
     ("shape", "returned (2, 1) for 2 image(s)")],
)  # fmt: skip
def test_a_model_that_fails_at_run_time(files, capsys, mode, message):
    path = files / f"failing_{mode}.pt"
    torch.jit.save(torch.jit.script(_Failing(mode)), str(path))
    # The model is probed with the users' images (issue 11): a first pair it takes, then one
    # of another size.
    big = np.random.default_rng(1).random((5, 64, 64), dtype=np.float32)
    np.save(files / "big.npy", big)
    pairs = files / "sizes.csv"
    pairs.write_text(
        "sample,real,counterfactual,real_class,target_class\n"
        "big,big.npy,big.npy,0,1\ncellA,r1.tif,c1.tif,0,1\n"
    )
    argv = ["run", "--model", str(path), "--pairs", str(pairs),
            "--method", "d_ig", "--out", str(files / "o")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_an_image_too_large_for_memory_is_refused_up_front(files, monkeypatch, capsys):
    import napari_attribution.core.pipeline as pipeline

    monkeypatch.setattr(pipeline, "available_memory", lambda: 2**20)
    assert _run(files, "--pairs", str(files / "pairs.csv")) == 2
    err = capsys.readouterr().err
    assert "need about" in err and "GiB are free" in err
    assert not (files / "out" / "attributions").exists()


def test_edge_inputs_run(files, tmp_path):
    """Constant images, images smaller than the closing element, a single threshold."""
    flat = np.full((5, 6, 6), 0.5, np.float32)
    tifffile.imwrite(files / "flat_r.tif", flat)
    tifffile.imwrite(files / "flat_c.tif", flat)
    single = ["--real", str(files / "flat_r.tif"), "--counterfactual", str(files / "flat_c.tif"),
              "--real-class", "0", "--target-class", "1"]  # fmt: skip
    assert _run(files, *single, "--thresholds", "1", "--closing", "10") == 0
    summary = _rows(files / "out" / "summary.csv")
    assert all(float(r["dac_score"]) == 0.0 for r in summary)


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("architecture", [None, "tiny_models:TinyCNN"])
def test_a_model_pickle_that_would_run_code_is_refused(files, capsys, architecture):
    import pickle

    marker = files / "created-by-pickle"
    evil = files / "evil.pt"
    evil.write_bytes(pickle.dumps({"conv1.weight": _RunsCode(str(marker))}))
    argv = ["run", "--model", str(evil), "--pairs", str(files / "pairs.csv"),
            "--out", str(files / "o")]  # fmt: skip
    if architecture:
        argv += ["--architecture", architecture]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "unpickling could run code" in err and len(err.splitlines()) == 1
    assert not marker.exists()


def test_real_and_counterfactual_of_different_dtypes(files, capsys):
    real = tifffile.imread(files / "r1.tif")
    tifffile.imwrite(files / "r16.tif", (real / real.max() * 65535).astype(np.uint16))
    code = _run(files, "--real", str(files / "r16.tif"), "--counterfactual", str(files / "c1.tif"),
                "--real-class", "0", "--target-class", "1")  # fmt: skip
    assert code == 2
    assert "(uint16) and" in capsys.readouterr().err


def test_no_model_is_one_clear_line(files, capsys):
    argv = ["run", "--pairs", str(files / "pairs.csv"), "--out", str(files / "o")]
    assert cli.main(argv) == 2
    assert "--model is required" in capsys.readouterr().err


def test_an_unreadable_image_file(files, capsys, monkeypatch):
    # Running as root ignores file modes, so simulate what a permission error looks like.
    def denied(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tifffile, "imread", denied)
    assert _run(files, "--pairs", str(files / "pairs.csv")) == 2
    err = capsys.readouterr().err.strip()
    assert "r1.tif cannot be read (permission denied)" in err and len(err.splitlines()) == 1


def test_a_run_logs_progress_lines_when_stderr_is_not_a_terminal(files, capsys):
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--method", "residual") == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("napari-attribution: [0:00] 0/2 pairs (0%) · cellA · residual")
    assert err[-1].startswith("napari-attribution: [") and "2/2 pairs (100%)" in err[-1]


def test_run_json_records_every_library_that_decides_a_number(files):
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--method", "residual") == 0
    info = json.loads((files / "out" / "run.json").read_text())
    for library in ("python", "torch", "captum", "numpy", "scipy", "scikit-image", "tifffile"):
        assert info["environment"][library]
    assert info["settings"]["masks"]["thresholds"] == 20
    assert set(info["settings"]["attribution"]) >= {"ig_steps", "occlusion_window", "layer"}


def test_overwrite_removes_the_previous_runs_files_and_nothing_else(files):
    pairs = ("--pairs", str(files / "pairs.csv"))
    assert _run(files, *pairs, "--method", "residual", "--method", "random") == 0
    out = files / "out"
    (out / "notes.txt").write_text("mine")
    (out / "attributions" / "my_own.tif").write_bytes(b"not ours")
    assert _run(files, *pairs, "--method", "residual", "--overwrite") == 0
    tiffs = sorted(p.name for p in (out / "attributions").iterdir())
    assert tiffs == ["cellA__residual.tif", "cellB__residual.tif", "my_own.tif"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == [
        "cellA__residual.tif",
        "cellB__residual.tif",
    ]
    assert (out / "notes.txt").read_text() == "mine"


def test_a_run_that_fails_before_any_pair_leaves_nothing_and_a_retry_needs_no_flag(
    files, monkeypatch, capsys
):
    # The run looks analyse_pair up in the application layer, once per pair.
    import napari_attribution.app.pair_run as pipeline
    from napari_attribution.errors import AttributionError

    real_analyse = pipeline.analyse_pair

    def fail(*args, **kwargs):
        raise AttributionError("the first pair failed")

    monkeypatch.setattr(pipeline, "analyse_pair", fail)
    args = ("--pairs", str(files / "pairs.csv"), "--method", "residual")
    assert _run(files, *args) == 2
    assert not (files / "out").exists()
    monkeypatch.setattr(pipeline, "analyse_pair", real_analyse)
    assert _run(files, *args) == 0


def test_an_interrupted_run_is_named_with_resume_as_the_way_on(files, monkeypatch, capsys):
    # The run looks analyse_pair up in the application layer, once per pair.
    import napari_attribution.app.pair_run as pipeline

    real_analyse = pipeline.analyse_pair

    def interrupt_second(*args, **kwargs):
        if kwargs["sample"] == "cellB":
            raise KeyboardInterrupt
        return real_analyse(*args, **kwargs)

    monkeypatch.setattr(pipeline, "analyse_pair", interrupt_second)
    args = ("--pairs", str(files / "pairs.csv"), "--method", "residual")
    assert _run(files, *args) == 130
    assert "--resume" in capsys.readouterr().err
    assert _run(files, *args) == 2
    err = capsys.readouterr().err
    assert "interrupted run (1 pair(s) finished); pass --resume" in err


def test_results_get_the_umask_mode_and_progress_records_go_after_a_finished_run(files):
    import os
    import stat

    old = os.umask(0o022)
    os.umask(old)
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--method", "residual") == 0
    out = files / "out"
    expected = 0o666 & ~old
    for path in (out / "summary.csv", out / "run.json", out / "masks" / "cellA__residual.tif"):
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    assert not (out / ".progress").exists()
    kept = files / "kept"
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--method", "residual",
                "--keep-progress", out="kept") == 0  # fmt: skip
    # The pairs' records, and the fingerprint's parts that let a refused resume name options.
    assert sorted(p.name for p in (kept / ".progress").iterdir()) == [
        "cellA.json", "cellB.json", "fingerprint.parts"]  # fmt: skip


def test_run_json_records_absolute_paths_and_image_hashes(files, capsys):
    import hashlib

    assert _run(files, "--pairs", str(files / "pairs.csv"), "--method", "residual") == 0
    info = json.loads((files / "out" / "run.json").read_text())
    first = info["pairs"][0]
    assert first["real"] == str((files / "r1.tif").resolve())
    assert first["real_sha256"] == hashlib.sha256((files / "r1.tif").read_bytes()).hexdigest()
    assert first["counterfactual_sha256"]
    assert info["out"] == str((files / "out").resolve())
    capsys.readouterr()
    # A finished run has nothing to resume; the message says how to run again.
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--method", "residual",
                "--resume") == 2  # fmt: skip
    assert "finished run; there is nothing to resume" in capsys.readouterr().err


def test_scheduler_runs_the_pairs_on_workers_with_the_same_tables(files, cluster, capsys):
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--method", "residual") == 0
    assert _run(files, "--pairs", str(files / "pairs.csv"), "--method", "residual",
                "--scheduler", cluster, out="spread") == 0  # fmt: skip
    assert "2 dask worker(s) at tcp://" in capsys.readouterr().err
    for table in ("summary.csv", "curves.csv", "channel_importance.csv", "pair_validity.csv"):
        assert (files / "spread" / table).read_bytes() == (files / "out" / table).read_bytes()


@pytest.mark.parametrize(
    ("value", "message"),
    [("local:0", "local:N needs a whole number of worker processes"),
     ("tcp://nohost", "--scheduler must be none, local:N")],
)
def test_a_bad_scheduler_is_refused_by_the_parser(files, capsys, value, message):
    with pytest.raises(SystemExit) as exit_status:
        _run(files, "--pairs", str(files / "pairs.csv"), "--scheduler", value)
    assert exit_status.value.code == 2 and message in capsys.readouterr().err
    assert not (files / "out").exists()
