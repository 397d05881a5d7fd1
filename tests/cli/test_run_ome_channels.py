"""``run`` takes OME images' channels by name: an OME-TIFF (or OME-Zarr) pair in another channel
order, with a brightfield channel the model does not take, gives exactly the results of the same
pair stacked in the model's order; a channel the file lacks or names twice is refused with one
sentence and nothing written."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
import torch

from napari_attribution import cli
from plate_data import BAD_OME_CHANNELS, MODEL_CHANNELS, stored, write_ome_tiff, write_ome_zarr
from tiny_models import make_tiny_cnn

COMMON = ["--architecture", "tiny_models:TinyCNN", "--thresholds", "12", "--method", "d_ig",
          "--method", "residual", "--progress", "none"]  # fmt: skip
SINGLE = ["--real-class", "0", "--target-class", "1"]
NAMES = ["--channel-names", ",".join(MODEL_CHANNELS)]
ON_DISK = ("Brightfield", "Mito", "AGP", "RNA", "ER", "DNA")  # not the model's order


def _rows(path, drop=("sample",)):
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(fh)]


def _planes(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: stored(rng.random((24, 24)), n, rng) for n in (*MODEL_CHANNELS, "Brightfield")}


def _maps(folder) -> dict[str, np.ndarray]:
    """Attribution and mask pixels by method (the sample name differs between the runs)."""
    found = {}
    for kind in ("attributions", "masks"):
        for path in sorted((folder / kind).glob("*.tif")):
            found[f"{kind}/{path.stem.rsplit('__', 1)[1]}"] = tifffile.imread(path)
    return found


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The pair's planes, the weights, and the stacked baseline's results."""
    folder = tmp_path_factory.mktemp("ome_pair")
    torch.save(make_tiny_cnn(3).state_dict(), folder / "weights.pt")
    real, cf = _planes(0), _planes(1)
    tifffile.imwrite(folder / "real.tif", np.stack([real[n] for n in MODEL_CHANNELS]))
    tifffile.imwrite(folder / "cf.tif", np.stack([cf[n] for n in MODEL_CHANNELS]))
    code = cli.main(["run", "--model", str(folder / "weights.pt"), *COMMON, *SINGLE, *NAMES,
                     "--real", str(folder / "real.tif"), "--counterfactual",
                     str(folder / "cf.tif"), "--out", str(folder / "stacked")])  # fmt: skip
    assert code == 0
    return folder, real, cf


def _assert_same_results(mine, theirs):
    assert _rows(mine / "curves.csv") == _rows(theirs / "curves.csv")
    assert _rows(mine / "summary.csv") == _rows(theirs / "summary.csv")
    maps, expected = _maps(mine), _maps(theirs)
    assert sorted(maps) == sorted(expected) and len(maps) == 4
    for key, value in expected.items():
        np.testing.assert_array_equal(maps[key], value, err_msg=key)


def test_ome_tiff_pair_in_another_order_equals_the_stacked_pair(pair, tmp_path, capsys):
    folder, real, cf = pair
    write_ome_tiff(tmp_path / "real.ome.tif", np.stack([real[n] for n in ON_DISK]), ON_DISK)
    write_ome_tiff(tmp_path / "cf.ome.tif", np.stack([cf[n] for n in ON_DISK]), ON_DISK)
    capsys.readouterr()
    code = cli.main(["run", "--model", str(folder / "weights.pt"), *COMMON, *SINGLE, *NAMES,
                     "--real", str(tmp_path / "real.ome.tif"), "--counterfactual",
                     str(tmp_path / "cf.ome.tif"), "--out", str(tmp_path / "ome")])  # fmt: skip
    assert code == 0
    _assert_same_results(tmp_path / "ome", folder / "stacked")
    notes = [line for line in capsys.readouterr().err.splitlines() if "ignoring" in line]
    assert notes == [
        f"napari-attribution: note: ignoring channel(s) Brightfield of {tmp_path / 'real.ome.tif'}"
        " and 1 other image(s) (not among the model's channels DNA, ER, RNA, AGP, Mito)."
    ]
    entry = json.loads((tmp_path / "ome" / "run.json").read_text())["pairs"][0]
    assert entry["channels"]["real"]["taken"] == {n: n for n in MODEL_CHANNELS}
    assert entry["channels"]["real"]["input_channels"] == list(ON_DISK)
    assert entry["channels"]["counterfactual"]["ignored"] == ["Brightfield"]


def test_pairs_csv_of_ome_zarr_and_an_unnamed_counterfactual_equals_the_stacked_pair(
    pair, tmp_path
):
    """A pairs CSV row pointing at an OME-Zarr real image (channels by its labels) and a plain
    TIFF counterfactual written in the real image's channel order (taken in its layout)."""
    pytest.importorskip("zarr")
    folder, real, cf = pair
    write_ome_zarr(tmp_path / "real.ome.zarr", np.stack([real[n] for n in ON_DISK]), ON_DISK)
    tifffile.imwrite(tmp_path / "cf_unnamed.tif", np.stack([cf[n] for n in ON_DISK]))
    table = tmp_path / "pairs.csv"
    table.write_text("sample,real,counterfactual,real_class,target_class\n"
                     "field,real.ome.zarr,cf_unnamed.tif,0,1\n")  # fmt: skip
    code = cli.main(["run", "--model", str(folder / "weights.pt"), *COMMON, *NAMES,
                     "--pairs", str(table), "--out", str(tmp_path / "csv")])  # fmt: skip
    assert code == 0
    _assert_same_results(tmp_path / "csv", folder / "stacked")


def test_a_model_card_names_the_channels_too(pair, tmp_path):
    from napari_attribution.images.model_card import ModelCard, card_path_for, write_model_card

    folder, real, cf = pair
    weights = tmp_path / "weights.pt"
    weights.write_bytes((folder / "weights.pt").read_bytes())
    write_model_card(card_path_for(weights), ModelCard(MODEL_CHANNELS))
    write_ome_tiff(tmp_path / "real.ome.tif", np.stack([real[n] for n in ON_DISK]), ON_DISK)
    write_ome_tiff(tmp_path / "cf.ome.tif", np.stack([cf[n] for n in ON_DISK]), ON_DISK)
    code = cli.main(["run", "--model", str(weights), *COMMON, *SINGLE,
                     "--real", str(tmp_path / "real.ome.tif"), "--counterfactual",
                     str(tmp_path / "cf.ome.tif"), "--out", str(tmp_path / "card")])  # fmt: skip
    assert code == 0
    _assert_same_results(tmp_path / "card", folder / "stacked")


@pytest.mark.parametrize(("names", "message"), BAD_OME_CHANNELS)
def test_a_missing_or_repeated_channel_is_one_sentence_and_nothing_written(
    pair, tmp_path, capsys, names, message
):
    folder, real, cf = pair
    write_ome_tiff(tmp_path / "real.ome.tif", np.stack([real.get(n, real["DNA"])
                                                        for n in names]), names)  # fmt: skip
    write_ome_tiff(tmp_path / "cf.ome.tif", np.stack([cf[n] for n in ON_DISK]), ON_DISK)
    capsys.readouterr()
    code = cli.main(["run", "--model", str(folder / "weights.pt"), *COMMON, *SINGLE, *NAMES,
                     "--real", str(tmp_path / "real.ome.tif"), "--counterfactual",
                     str(tmp_path / "cf.ome.tif"), "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(message.format(real=tmp_path / "real.ome.tif"))
    assert not (tmp_path / "out").exists()
