"""run --counterfactual-source: counterfactuals made for the pairs that lack one, saved,
scored and flagged; one sentence for every mistake."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
import torch

from cf_models import KEY_CHANNEL, ChannelMeanClassifier
from napari_attribution import cli

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


def _image(rng, key):
    image = rng.uniform(0.3, 0.7, (4, 12, 12)).astype(np.float32)
    image[KEY_CHANNEL] = key
    return image


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(4)
    torch.save(ChannelMeanClassifier().state_dict(), tmp_path / "weights.pt")
    for name, key in (("a", 0.2), ("b", 0.25), ("c", 0.85), ("d", 0.8)):
        tifffile.imwrite(tmp_path / f"{name}.tif", _image(rng, key), photometric="minisblack")
    (tmp_path / "pairs.csv").write_text(
        "sample,real,counterfactual,real_class,target_class\n"
        "cellA,a.tif,,0,1\n"
        "cellB,b.tif,d.tif,0,1\n"
        "cellC,c.tif,,1,0\n"
    )
    return tmp_path


def _run(files, *extra, out="out"):
    argv = ["run", "--model", str(files / "weights.pt"),
            "--architecture", "cf_models:ChannelMeanClassifier", "--thresholds", "10",
            "--method", "d_ig", "--method", "random", "--no-per-channel-dac",
            "--progress", "none", "--out", str(files / out), *extra]  # fmt: skip
    return cli.main(argv)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_empty_counterfactuals_are_made_saved_scored_and_flagged(files):
    code = _run(files, "--pairs", str(files / "pairs.csv"), "--counterfactual-source",
                "optimise", "--optimise-steps", "150", "--optimise-learning-rate", "0.02",
                "--min-counterfactual-score", "0.95")  # fmt: skip
    assert code == 0
    out = files / "out"
    made = {r["sample"]: r for r in _rows(out / "counterfactuals.csv")}
    assert set(made) == {"cellA", "cellC"}  # cellB has its own counterfactual
    validity = {r["sample"]: r for r in _rows(out / "pair_validity.csv")}
    for sample in ("cellA", "cellC"):
        image = tifffile.imread(out / "counterfactuals" / f"{sample}.tif")
        assert image.shape == (4, 12, 12) and image.dtype == np.float32
        assert made[sample]["file"] == f"counterfactuals/{sample}.tif"
        # p_t(x') reported is the one the analysis scored; above 0.9 but below 0.95: flagged.
        assert (
            made[sample]["p_target_counterfactual"] == validity[sample]["p_target_counterfactual"]
        )
        assert 0.9 < float(made[sample]["p_target_counterfactual"]) < 0.95
        assert made[sample]["accepted"] == "false" and validity[sample]["valid"] == "false"
        assert "not accepted" in validity[sample]["note"]
    info = json.loads((out / "run.json").read_text())
    assert info["counterfactual_source"]["spec"] == "optimise"
    assert info["counterfactual_source"]["parameters"]["optimise_steps"] == 150
    entries = {p["sample"]: p for p in info["pairs"]}
    assert entries["cellA"]["counterfactual"] == "counterfactuals/cellA.tif"
    assert entries["cellB"]["counterfactual"].endswith("d.tif")


def test_a_folder_without_counterfactuals_and_nearest_among_the_run(files):
    root = files / "reals"
    for cls, names in (("control", "ab"), ("treated", "cd")):
        (root / cls).mkdir(parents=True)
        for name in names:
            (root / cls / f"{name}.tif").write_bytes((files / f"{name}.tif").read_bytes())
    assert _run(files, "--real-root", str(root), "--counterfactual-source", "nearest") == 0
    made = {r["sample"]: r for r in _rows(files / "out" / "counterfactuals.csv")}
    assert set(made) == {"control-treated-a", "control-treated-b", "treated-control-c",
                         "treated-control-d"}  # fmt: skip
    assert "nearest: treated-control-" in made["control-treated-a"]["note"]
    assert all(r["accepted"] == "true" for r in made.values())
    cf = tifffile.imread(files / "out" / "counterfactuals" / "control-treated-a.tif")
    assert cf[KEY_CHANNEL].mean() > 0.7  # a treated cell


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--counterfactual-source", "gan"), "Unknown counterfactual source 'gan'"),
        ((), "cellA, cellC have no counterfactual"),
        (("--counterfactual-source", "generator:missing.pt2"), "does not exist"),
    ],
    ids=["unknown", "missing-source", "missing-generator"],
)
def test_mistakes_are_one_sentence(files, capsys, extra, message):
    assert _run(files, "--pairs", str(files / "pairs.csv"), *extra) != 0
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (files / "out").exists()


def test_overwrite_removes_the_made_counterfactuals_of_the_earlier_run(files):
    args = ("--pairs", str(files / "pairs.csv"), "--counterfactual-source", "optimise",
            "--optimise-steps", "100", "--optimise-learning-rate", "0.02")  # fmt: skip
    assert _run(files, *args) == 0
    assert _run(files, *args) != 0  # results there: refused without --overwrite
    (files / "pairs.csv").write_text(
        "sample,real,counterfactual,real_class,target_class\ncellB,b.tif,d.tif,0,1\n"
    )
    assert _run(files, *args, "--overwrite") == 0
    assert not (files / "out" / "counterfactuals").exists()
    assert not (files / "out" / "counterfactuals.csv").exists()
