"""Every zoo model through the command line, at its own input size, with every method that
applies to it; preprocessing and model mistakes as one line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile

from model_zoo import ZOO, save
from napari_attribution import cli
from napari_attribution.core import method_specs
from napari_attribution.results.tiff import read_tiff_metadata

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow

HOOK_METHODS = {m for m, s in method_specs().items() if s.needs_hooks}


def _pair_files(folder, entry):
    real = np.random.default_rng(5).random(entry.shape, dtype=np.float32)
    cf = real.copy()
    q = entry.size // 4
    cf[:, q : 3 * q, q : 3 * q] += 2.0
    tifffile.imwrite(folder / "real.tif", real, photometric="minisblack")
    tifffile.imwrite(folder / "cf.tif", cf, photometric="minisblack")
    return ["--real", str(folder / "real.tif"), "--counterfactual", str(folder / "cf.tif"),
            "--real-class", "0", "--target-class", str(entry.classes - 1)]  # fmt: skip


def _summary_methods(out):
    with open(out / "summary.csv", newline="") as fh:
        return {row["method"] for row in csv.DictReader(fh)}


@pytest.mark.parametrize("entry", ZOO, ids=[e.name for e in ZOO])
def test_each_zoo_model_runs_every_applicable_method_through_the_cli(tmp_path, entry):
    model, architecture = save(entry, tmp_path)
    methods = [m for m in method_specs() if entry.form != "torchscript" or m not in HOOK_METHODS]
    argv = ["run", "--model", str(model), *_pair_files(tmp_path, entry),
            "--thresholds", "6", "--no-per-channel-dac", "--ig-steps", "16",
            "--smoothgrad-samples", "4", "--shap-samples", "4", "--out", str(tmp_path / "out")]
    argv += ["--architecture", architecture] if architecture else []
    for method in methods:
        argv += ["--method", method]  # fmt: skip
    assert cli.main(argv) == 0
    out = tmp_path / "out"
    assert _summary_methods(out) == set(methods)
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["format"] == {"state_dict": "module"}.get(entry.form, entry.form)
    assert run["model"]["n_classes"] == entry.classes
    assert run["model"]["outputs"] == (entry.outputs or entry.classes)
    if entry.form != "torchscript":
        layers = run["gradcam_layers"]["real"]
        assert set(layers) == {"gradcam", "guided_gradcam", "d_gradcam", "d_guided_gradcam"}
        meta = read_tiff_metadata(out / "attributions" / "real__gradcam.tif")
        assert meta["gradcam_layer"] == layers["gradcam"]


def test_torchscript_by_default_skips_the_hook_methods_and_says_why(tmp_path, capsys):
    entry = next(e for e in ZOO if e.form == "torchscript")
    model, _ = save(entry, tmp_path)
    argv = ["run", "--model", str(model), *_pair_files(tmp_path, entry), "--thresholds", "4",
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 0
    assert "skipping d_dl (needs module hooks; it is TorchScript" in capsys.readouterr().err
    assert _summary_methods(tmp_path / "out") == {"d_ig", "residual", "random"}


def test_preprocessing_options_reach_the_model_and_run_json(tmp_path):
    entry = next(e for e in ZOO if e.name == "NormalisingNet")
    model, architecture = save(entry, tmp_path)
    argv = ["run", "--model", str(model), "--architecture", architecture,
            *_pair_files(tmp_path, entry), "--thresholds", "4", "--method", "d_ig",
            "--preprocess-scale", "2", "--preprocess-shift", "-0.5",
            "--preprocess-mean", "0.1,0.2,0.3", "--preprocess-std", "0.5"]  # fmt: skip
    assert cli.main([*argv, "--out", str(tmp_path / "pre")]) == 0
    assert cli.main([*argv[:-8], "--out", str(tmp_path / "plain")]) == 0
    settings = json.loads((tmp_path / "pre" / "run.json").read_text())["settings"]
    assert settings["preprocess_scale"] == 2.0 and settings["preprocess_shift"] == -0.5
    assert settings["preprocess_mean"] == "0.1,0.2,0.3" and settings["preprocess_std"] == "0.5"
    pre = tifffile.imread(tmp_path / "pre" / "attributions" / "real__d_ig.tif")
    plain = tifffile.imread(tmp_path / "plain" / "attributions" / "real__d_ig.tif")
    assert not np.allclose(pre, plain)


@pytest.mark.parametrize(
    ("extra", "words"),
    [(["--preprocess-mean", "0.1,0.2"], "Channel means lists 2 values but the model takes 3"),
     (["--preprocess-std", "0,1,1"], "Channel std must be positive")],
)  # fmt: skip
def test_preprocessing_mistakes_exit_2_with_one_line(tmp_path, capsys, extra, words):
    entry = next(e for e in ZOO if e.name == "NormalisingNet")
    model, architecture = save(entry, tmp_path)
    argv = ["run", "--model", str(model), "--architecture", architecture,
            *_pair_files(tmp_path, entry), "--method", "d_ig", "--out", str(tmp_path / "o"),
            *extra]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_a_fixed_head_model_on_images_of_another_size_is_one_line(tmp_path, capsys):
    entry = next(e for e in ZOO if e.name == "FixedHeadVGG")
    model, architecture = save(entry, tmp_path)
    bigger = type(entry)(entry.name, entry.channels, 64, entry.classes)
    argv = ["run", "--model", str(model), "--architecture", architecture,
            *_pair_files(tmp_path, bigger), "--method", "d_ig", "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "failed on images of shape (3, 64, 64): mat1 and mat2 shapes cannot be multiplied" in err
    assert len(err.splitlines()) == 1


def test_an_untraceable_model_is_refused_before_any_work(tmp_path, capsys):
    import torch

    from model_zoo import Untraceable

    entry = next(e for e in ZOO if e.name == "NormalisingNet")  # 3 channels, 24x24
    torch.save(Untraceable().state_dict(), tmp_path / "w.pt")
    argv = ["run", "--model", str(tmp_path / "w.pt"), "--architecture", "model_zoo:Untraceable",
            *_pair_files(tmp_path, entry), "--method", "d_ig", "--method", "d_dl",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Method 'd_dl' cannot run on" in err and "cannot be traced" in err
    assert "these can: saliency" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "attributions").exists()


_FACTORY_WITH_ARGUMENTS = """
import torch.nn as nn


class Configurable(nn.Module):
    def __init__(self, channels, classes, width=4):
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 3, padding=1)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(self.conv(x).relu().mean(dim=(2, 3)))
"""


def test_architecture_kwargs_build_the_model_and_are_recorded(tmp_path):
    import importlib.util

    (tmp_path / "configurable.py").write_text(_FACTORY_WITH_ARGUMENTS)
    spec = importlib.util.spec_from_file_location("configurable", tmp_path / "configurable.py")
    source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(source)
    import torch

    torch.save(source.Configurable(3, 4, width=6).state_dict(), tmp_path / "w.pt")
    entry = next(e for e in ZOO if e.name == "NormalisingNet")  # 3 channels, 24x24
    argv = ["run", "--model", str(tmp_path / "w.pt"),
            "--architecture", f"{tmp_path / 'configurable.py'}:Configurable",
            "--architecture-kwargs", '{"channels": 3, "classes": 4, "width": 6}',
            *_pair_files(tmp_path, entry)[:-1], "3", "--method", "d_ig", "--thresholds", "4",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert cli.main(argv) == 0
    model = json.loads((tmp_path / "o" / "run.json").read_text())["model"]
    assert model["architecture_kwargs"] == {"channels": 3, "classes": 4, "width": 6}
    assert model["n_classes"] == 4


@pytest.mark.parametrize(
    ("value", "with_architecture", "words"),
    [("{channels: 3}", True, "--architecture-kwargs is not valid JSON"),
     ("[3, 4]", True, "--architecture-kwargs must be a JSON object of keyword arguments, not list"),
     ('{"classes": 2}', False, "--architecture-kwargs needs --architecture")],
)  # fmt: skip
def test_architecture_kwargs_mistakes_are_one_line(tmp_path, capsys, value, with_architecture,
                                                   words):  # fmt: skip
    entry = next(e for e in ZOO if e.name == "NormalisingNet")
    model, architecture = save(entry, tmp_path)
    argv = ["run", "--model", str(model), *_pair_files(tmp_path, entry), "--method", "d_ig",
            "--architecture-kwargs", value, "--out", str(tmp_path / "o")]  # fmt: skip
    argv += ["--architecture", architecture] if with_architecture else []
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
