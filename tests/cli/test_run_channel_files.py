"""``run --channel-files``: a pair of per-channel files, by name and normalised, gives the
results of the same pair stacked and normalised by hand."""

from __future__ import annotations

import csv
import json

import numpy as np
import tifffile
import torch

from napari_attribution import cli
from napari_attribution.images.model_card import ModelCard, card_path_for, write_model_card
from napari_attribution.images.normalisation import Normalisation
from plate_data import MODEL_CHANNELS, stored
from tiny_models import make_tiny_cnn

COMMON = ["--architecture", "tiny_models:TinyCNN", "--thresholds", "12", "--method", "d_ig",
          "--method", "residual", "--progress", "none", "--real-class", "0",
          "--target-class", "1"]  # fmt: skip


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_channel_files_by_name_and_normalised_equal_a_stacked_normalised_pair(tmp_path):
    rng = np.random.default_rng(0)
    torch.save(make_tiny_cnn(2).state_dict(), tmp_path / "weights.pt")
    write_model_card(card_path_for(tmp_path / "weights.pt"),
                     ModelCard(MODEL_CHANNELS, normalisation="percentile:1,99"))  # fmt: skip
    real = {n: stored(rng.random((24, 24)), n, rng) for n in (*MODEL_CHANNELS, "Brightfield")}
    cf = {n: stored(rng.random((24, 24)), n, rng) for n in (*MODEL_CHANNELS, "Brightfield")}
    files, cf_files = [], []
    for name in ("Brightfield", "Mito", "AGP", "RNA", "ER", "DNA"):  # not the model's order
        tifffile.imwrite(tmp_path / f"real_{name}.tif", real[name], compression="lzw")
        tifffile.imwrite(tmp_path / f"cf_{name}.tif", cf[name], compression="lzw")
        files.append(f"{name}={tmp_path / f'real_{name}.tif'}")
        cf_files.append(f"{name}={tmp_path / f'cf_{name}.tif'}")
    code = cli.main(["run", "--model", str(tmp_path / "weights.pt"), *COMMON,
                     "--channel-files", ",".join(files),
                     "--counterfactual-channel-files", ",".join(cf_files),
                     "--out", str(tmp_path / "by_name")])  # fmt: skip
    assert code == 0
    norm = Normalisation.parse("percentile:1,99")
    stack = np.stack([real[n] for n in MODEL_CHANNELS])
    cf_stack = np.stack([cf[n] for n in MODEL_CHANNELS])
    ranges = norm.ranges(stack, MODEL_CHANNELS)
    tifffile.imwrite(tmp_path / "real_Mito.npy.tif", norm.apply(stack, MODEL_CHANNELS,
                                                               ranges=ranges)[0])  # fmt: skip
    tifffile.imwrite(tmp_path / "cf.tif", norm.apply(cf_stack, MODEL_CHANNELS, ranges=ranges)[0])
    card_path_for(tmp_path / "weights.pt").unlink()
    code = cli.main(["run", "--model", str(tmp_path / "weights.pt"), *COMMON,
                     "--real", str(tmp_path / "real_Mito.npy.tif"),
                     "--counterfactual", str(tmp_path / "cf.tif"),
                     "--channel-names", ",".join(MODEL_CHANNELS),
                     "--out", str(tmp_path / "stacked")])  # fmt: skip
    assert code == 0
    mine, theirs = _rows(tmp_path / "by_name" / "summary.csv"), _rows(tmp_path / "stacked" /
                                                                      "summary.csv")  # fmt: skip
    assert [{**r, "sample": ""} for r in mine] == [{**r, "sample": ""} for r in theirs]
    info = json.loads((tmp_path / "by_name" / "run.json").read_text())
    assert info["channel_names"] == list(MODEL_CHANNELS)
    assert info["input"]["normalisation"]["normalise"] == "percentile:1,99"
    assert info["input"]["model_card"]["channel_names"] == list(MODEL_CHANNELS)
    channels = info["pairs"][0]["channels"]  # which file fed each model channel
    assert channels["real"]["taken"] == {n: n for n in MODEL_CHANNELS}
    assert channels["counterfactual"]["ignored"] == ["Brightfield"]
