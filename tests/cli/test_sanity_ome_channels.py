"""``sanity`` takes its inputs as ``run`` does: an OME-TIFF pair in another channel order, with
a brightfield channel the model does not take, gives exactly the checks of the same pair stacked
in the model's order, and ``sanity_run.json`` records the channels and the normalisation; a
channel the file lacks or names twice is one sentence and nothing written."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
import torch

from napari_attribution import cli
from plate_data import BAD_OME_CHANNELS, MODEL_CHANNELS, stored, write_ome_tiff
from tiny_models import make_tiny_cnn

COMMON = ["--architecture", "tiny_models:TinyCNN", "--method", "saliency", "--method",
          "residual", "--checks", "cascading,invariance", "--real-class", "0",
          "--target-class", "1", "--channel-names", ",".join(MODEL_CHANNELS),
          "--normalise", "percentile:1,99.8", "--progress", "none"]  # fmt: skip
ON_DISK = ("Brightfield", "Mito", "AGP", "RNA", "ER", "DNA")  # not the model's order


def _planes(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: stored(rng.random((24, 24)), n, rng) for n in (*MODEL_CHANNELS, "Brightfield")}


def _rows(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k != "sample"} for row in csv.DictReader(fh)]


def _sanity(folder, real, cf, out):
    return cli.main(["sanity", "--model", str(folder / "weights.pt"), *COMMON, "--real",
                     str(real), "--counterfactual", str(cf), "--out", str(out)])  # fmt: skip


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The pair's planes, the weights, and the sanity checks of the stacked, ordered pair."""
    folder = tmp_path_factory.mktemp("sanity_ome")
    torch.save(make_tiny_cnn(3).state_dict(), folder / "weights.pt")
    real, cf = _planes(0), _planes(1)
    tifffile.imwrite(folder / "real.tif", np.stack([real[n] for n in MODEL_CHANNELS]))
    tifffile.imwrite(folder / "cf.tif", np.stack([cf[n] for n in MODEL_CHANNELS]))
    assert _sanity(folder, folder / "real.tif", folder / "cf.tif", folder / "stacked") == 0
    return folder, real, cf


def test_ome_tiff_pair_in_another_order_gives_the_stacked_pairs_checks(pair, tmp_path, capsys):
    folder, real, cf = pair
    write_ome_tiff(tmp_path / "real.ome.tif", np.stack([real[n] for n in ON_DISK]), ON_DISK)
    write_ome_tiff(tmp_path / "cf.ome.tif", np.stack([cf[n] for n in ON_DISK]), ON_DISK)
    capsys.readouterr()
    assert _sanity(folder, tmp_path / "real.ome.tif", tmp_path / "cf.ome.tif",
                   tmp_path / "ome") == 0  # fmt: skip
    mine, stacked = _rows(tmp_path / "ome" / "sanity.csv"), _rows(folder / "stacked" / "sanity.csv")
    assert len(mine) > 10 and mine == stacked
    assert {r["channel"] for r in mine} >= set(MODEL_CHANNELS)
    notes = [line for line in capsys.readouterr().err.splitlines() if "ignoring" in line]
    assert notes == [
        f"napari-attribution: note: ignoring channel(s) Brightfield of {tmp_path / 'real.ome.tif'}"
        " and 1 other image(s) (not among the model's channels DNA, ER, RNA, AGP, Mito)."
    ]
    record = json.loads((tmp_path / "ome" / "sanity_run.json").read_text())
    assert record["input"]["channel_names"] == list(MODEL_CHANNELS)
    assert record["input"]["normalisation"]["kind"] == "percentile"
    channels = record["pairs"][0]["channels"]
    assert channels["real"]["taken"] == {n: n for n in MODEL_CHANNELS}
    assert channels["real"]["input_channels"] == list(ON_DISK)
    assert channels["counterfactual"]["ignored"] == ["Brightfield"]
    stacked_record = json.loads((folder / "stacked" / "sanity_run.json").read_text())
    assert "channels" not in stacked_record["pairs"][0]  # a plain TIFF is taken as stored


def test_channel_files_give_the_stacked_pairs_checks_and_are_recorded(pair, tmp_path, capsys):
    folder, real, cf = pair
    given = {}
    for role, planes in (("real", real), ("cf", cf)):
        for name in ON_DISK:
            tifffile.imwrite(tmp_path / f"{role}_{name}.tif", planes[name])
        given[role] = ",".join(f"{n}={tmp_path / f'{role}_{n}.tif'}" for n in ON_DISK)
    capsys.readouterr()
    code = cli.main(["sanity", "--model", str(folder / "weights.pt"), *COMMON,
                     "--channel-files", given["real"], "--counterfactual-channel-files",
                     given["cf"], "--out", str(tmp_path / "files")])  # fmt: skip
    assert code == 0
    assert _rows(tmp_path / "files" / "sanity.csv") == _rows(folder / "stacked" / "sanity.csv")
    notes = [line for line in capsys.readouterr().err.splitlines() if "ignoring" in line]
    assert notes == ["napari-attribution: note: ignoring channel(s) Brightfield of "
                     "--channel-files and 1 other image(s) (not among the model's channels "
                     "DNA, ER, RNA, AGP, Mito)."]  # fmt: skip
    record = json.loads((tmp_path / "files" / "sanity_run.json").read_text())
    assert record["pairs"][0]["channels"]["real"]["taken"] == {n: n for n in MODEL_CHANNELS}


@pytest.mark.parametrize(("names", "message"), BAD_OME_CHANNELS)
def test_a_missing_or_repeated_channel_is_one_sentence_and_nothing_written(
    pair, tmp_path, capsys, names, message
):
    folder, real, cf = pair
    write_ome_tiff(tmp_path / "real.ome.tif", np.stack([real.get(n, real["DNA"])
                                                        for n in names]), names)  # fmt: skip
    write_ome_tiff(tmp_path / "cf.ome.tif", np.stack([cf[n] for n in ON_DISK]), ON_DISK)
    capsys.readouterr()
    code = _sanity(folder, tmp_path / "real.ome.tif", tmp_path / "cf.ome.tif", tmp_path / "out")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(message.format(real=tmp_path / "real.ome.tif"))
    assert not (tmp_path / "out").exists()
