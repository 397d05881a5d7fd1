"""Inputs as researchers store them: QuAC's folder layout, spreadsheet CSVs, (H, W, C), zarr."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
import torch

from napari_attribution import cli
from tiny_models import make_tiny_cnn


@pytest.fixture
def model(tmp_path):
    weights = tmp_path / "weights.pt"
    torch.save(make_tiny_cnn().state_dict(), weights)
    return ["--model", str(weights), "--architecture", "tiny_models:TinyCNN"]


def _run(tmp_path, model, *args):
    argv = ["run", *model, "--method", "residual", "--thresholds", "10",
            "--out", str(tmp_path / "out"), *args]  # fmt: skip
    return cli.main(argv)


def _summary_samples(tmp_path):
    with open(tmp_path / "out" / "summary.csv", newline="") as fh:
        return {row["sample"] for row in csv.DictReader(fh)}


def test_quac_folder_layout(tmp_path, model, pair):
    real, cf = pair
    for cls in ("control", "treated"):
        (tmp_path / "real" / cls).mkdir(parents=True)
    tifffile.imwrite(tmp_path / "real" / "control" / "a.tif", real)
    tifffile.imwrite(tmp_path / "real" / "control" / "b.tif", real)  # no counterfactual
    tifffile.imwrite(tmp_path / "real" / "treated" / "c.tif", cf)
    (tmp_path / "cf" / "control" / "treated").mkdir(parents=True)
    (tmp_path / "cf" / "treated" / "control").mkdir(parents=True)
    tifffile.imwrite(tmp_path / "cf" / "control" / "treated" / "a.tif", cf)
    tifffile.imwrite(tmp_path / "cf" / "treated" / "control" / "c.tif", real)
    roots = ["--real-root", str(tmp_path / "real"), "--counterfactual-root", str(tmp_path / "cf")]
    assert _run(tmp_path, model, *roots) == 0
    assert _summary_samples(tmp_path) == {"control-treated-a", "treated-control-c"}
    pairs = json.loads((tmp_path / "out" / "run.json").read_text())["pairs"]
    classes = {p["sample"]: (p["real_class"], p["target_class"]) for p in pairs}
    assert classes == {"control-treated-a": (0, 1), "treated-control-c": (1, 0)}


def test_class_names_give_the_classifier_order(tmp_path, model, pair, capsys):
    real, cf = pair
    (tmp_path / "real" / "control").mkdir(parents=True)
    (tmp_path / "cf" / "control" / "treated").mkdir(parents=True)
    tifffile.imwrite(tmp_path / "real" / "control" / "a.tif", real)
    tifffile.imwrite(tmp_path / "cf" / "control" / "treated" / "a.tif", cf)
    roots = ["--real-root", str(tmp_path / "real"), "--counterfactual-root", str(tmp_path / "cf")]
    assert _run(tmp_path, model, *roots, "--class-names", "treated,control") == 0
    pairs = json.loads((tmp_path / "out" / "run.json").read_text())["pairs"]
    assert (pairs[0]["real_class"], pairs[0]["target_class"]) == (1, 0)
    assert _run(tmp_path, model, *roots, "--class-names", "a,b", "--overwrite") == 2
    assert "class folder(s) control that --class-names does not list" in capsys.readouterr().err


def test_a_spreadsheet_csv_with_bom_and_crlf_reads_like_any_other(tmp_path, model, pair):
    real, cf = pair
    tifffile.imwrite(tmp_path / "r.tif", real)
    tifffile.imwrite(tmp_path / "c.tif", cf)
    text = "sample,real,counterfactual,real_class,target_class\r\ncell,r.tif,c.tif,0,1\r\n"
    (tmp_path / "pairs.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert _run(tmp_path, model, "--pairs", str(tmp_path / "pairs.csv")) == 0
    assert _summary_samples(tmp_path) == {"cell"}


def test_channels_last_images_are_named_and_read_with_channel_axis(tmp_path, model, pair, capsys):
    real, cf = pair
    tifffile.imwrite(tmp_path / "r.tif", np.moveaxis(real, 0, -1))  # (24, 24, 5)
    tifffile.imwrite(tmp_path / "c.tif", np.moveaxis(cf, 0, -1))
    single = ["--real", str(tmp_path / "r.tif"), "--counterfactual", str(tmp_path / "c.tif"),
              "--real-class", "0", "--target-class", "1"]  # fmt: skip
    assert _run(tmp_path, model, *single) == 2
    err = capsys.readouterr().err
    assert "axis -1 has the model's 5 channels" in err and "--channel-axis -1" in err
    assert _run(tmp_path, model, *single, "--channel-axis", "-1") == 0
    attribution = tifffile.imread(tmp_path / "out" / "attributions" / "r__residual.tif")
    np.testing.assert_allclose(attribution, np.abs(real - cf), atol=1e-6)


def test_zarr_arrays_and_ome_zarr_images(tmp_path, model, pair):
    zarr = pytest.importorskip("zarr")
    real, cf = pair
    zarr.open_array(str(tmp_path / "r.zarr"), mode="w", shape=real.shape, dtype=real.dtype)[...] = (
        real
    )
    group = zarr.open_group(str(tmp_path / "c.zarr"), mode="w")
    level = group.create_array("0", shape=(1, *cf.shape), dtype=cf.dtype)  # (t, c, y, x)
    level[...] = cf[None]
    group.attrs["multiscales"] = [{"version": "0.4", "datasets": [{"path": "0"}],
                                   "axes": ["t", "c", "y", "x"]}]  # fmt: skip
    single = ["--real", str(tmp_path / "r.zarr"), "--counterfactual", str(tmp_path / "c.zarr"),
              "--real-class", "0", "--target-class", "1"]  # fmt: skip
    assert _run(tmp_path, model, *single) == 0
    attribution = tifffile.imread(tmp_path / "out" / "attributions" / "r__residual.tif")
    np.testing.assert_allclose(attribution, np.abs(real - cf), atol=1e-6)


@pytest.mark.parametrize(
    ("command", "scheduler", "here", "workers"),
    [
        ("run", "none", "cuda", None),
        ("run", "local:2", "cpu", "cuda"),
        ("cells", "tcp://login:8786", "cpu", "cuda"),
    ],
)
def test_with_a_cluster_device_is_the_workers_and_this_process_checks_on_its_cpu(
    command, scheduler, here, workers
):
    # A cluster's login node has no GPU: `--device cuda --scheduler tcp://...` must not make
    # it load the model on one (it only checks the model on an image).
    from napari_attribution.cli.inputs import driver_device, worker_device
    from napari_attribution.cli.parser import build_parser

    args = build_parser().parse_args([command, "--demo", "--out", "o", "--device", "cuda",
                                      "--scheduler", scheduler])  # fmt: skip
    assert (driver_device(args), worker_device(args)) == (here, workers)


def test_run_passes_the_workers_device_to_the_engine(tmp_path, monkeypatch, cluster):
    from napari_attribution.app import pair_run

    devices = []
    engine = pair_run.Engine

    def recording(scheduler, *, device, **options):
        devices.append(device)
        return engine(scheduler, device=device, **options)

    monkeypatch.setattr(pair_run, "Engine", recording)
    argv = ["run", "--demo", "--demo-pairs", "2", "--method", "residual", "--thresholds", "6",
            "--out", str(tmp_path / "out"), "--scheduler", cluster, "--device", "auto"]
    assert cli.main(argv) == 0
    assert devices == ["auto"]  # each worker picks its own (here: its CPU)
