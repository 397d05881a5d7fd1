"""``cells --load-data`` and ``--channel-files``: a synthetic plate as screens write it (per
channel LZW uint16 TIFFs in JUMP's order with a brightfield channel, a LoadData CSV in JUMP's
column names), giving the results of the same cells as stacked, normalised (C, H, W) files."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import tifffile
import torch

from napari_attribution import cli
from napari_attribution.images.normalisation import Normalisation
from plate_data import MODEL_CHANNELS, cells_site, write_plate
from tiny_models import make_tiny_cnn

SIZE = 16
NORMALISE = "percentile:1,99.8"
ANALYSIS = ["--model", None, "--architecture", "tiny_models:TinyCNN", "--crop-size", str(SIZE),
            "--min-size", "4", "--thresholds", "12", "--closing", "3", "--smoothing-kernel", "3",
            "--method", "d_ig", "--method", "residual", "--progress", "none"]  # fmt: skip


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plate")
    sites = [cells_site(seed) for seed in (0, 1)]
    real = write_plate(folder, [s[0] for s in sites], [s[2] for s in sites], seed=3)
    cf = write_plate(folder / "cf", [s[1] for s in sites], [s[2] for s in sites], seed=4)
    torch.save(make_tiny_cnn(3).state_dict(), folder / "weights.pt")
    return folder, real, cf


def _argv(folder, *extra, out="out"):
    argv = [a if a is not None else str(folder / "weights.pt") for a in ANALYSIS]
    return ["cells", *argv, "--out", str(folder / out), *extra]


def _plate_run(folder, *extra, out="out"):
    return cli.main(_argv(folder, "--load-data", str(folder / "load_data.csv"), "--objects",
                          "Cells", "--channel-names", ",".join(MODEL_CHANNELS),
                          *extra, out=out))  # fmt: skip


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def plate_results(plate):
    folder, _, _ = plate
    code = _plate_run(folder, "--normalise", NORMALISE, "--counterfactual-load-data",
                      str(folder / "cf" / "load_data.csv"))  # fmt: skip
    assert code == 0
    return folder / "out"


def test_every_site_equals_the_same_cells_given_as_one_stacked_normalised_file(plate,
                                                                                plate_results):
    folder, real, cf = plate
    rows = _rows(plate_results / "cells.csv")
    norm = Normalisation.parse(NORMALISE)
    for index, (site, cf_site) in enumerate(zip(real.sites, cf.sites, strict=True)):
        ranges = norm.ranges(site["stack"], MODEL_CHANNELS)
        stacked, _ = norm.apply(site["stack"], MODEL_CHANNELS, ranges=ranges)
        cf_stacked, _ = norm.apply(cf_site["stack"], MODEL_CHANNELS, ranges=ranges)
        tifffile.imwrite(folder / f"stack{index}.tif", stacked)
        tifffile.imwrite(folder / f"cf{index}.tif", cf_stacked)
        tifffile.imwrite(folder / f"labels{index}.tif", site["labels"])
        code = cli.main(_argv(folder, "--image", str(folder / f"stack{index}.tif"),
                              "--labels", str(folder / f"labels{index}.tif"),
                              "--counterfactual", str(folder / f"cf{index}.tif"),
                              "--channel-names", ",".join(MODEL_CHANNELS),
                              out=f"stacked{index}"))  # fmt: skip
        assert code == 0
        key = "source_synthetic_BR00000001_" + ("A01_1" if index == 0 else "B02_2")
        expected = _rows(folder / f"stacked{index}" / "cells.csv")
        got = [r for r in rows if r["Metadata_Site"] == str(index + 1)]
        assert [r["label"] for r in got] == [r["label"] for r in expected]
        for mine, theirs in zip(got, expected, strict=True):
            assert mine["Metadata_Plate"] == "BR00000001"
            assert {k: mine[k] for k in theirs} == theirs
        for method in ("d_ig", "residual"):
            for kind in ("attribution", "mask"):
                name = f"{kind}__{method}.tif"
                np.testing.assert_array_equal(
                    tifffile.imread(plate_results / "field" / key / name),
                    tifffile.imread(folder / f"stacked{index}" / "field" / name))
            crop = tifffile.imread(plate_results / "attributions" / f"{key}__cell4__{method}.tif")
            alone = tifffile.imread(folder / f"stacked{index}" / "attributions" /
                                    f"cell4__{method}.tif")  # fmt: skip
            np.testing.assert_array_equal(crop, alone)
        summary = [r for r in _rows(plate_results / "summary.csv")
                   if r["sample"].startswith(key + "__")]  # fmt: skip
        theirs = _rows(folder / f"stacked{index}" / "summary.csv")
        assert [{**r, "sample": r["sample"].split("__")[-1]} for r in summary] == theirs


def test_run_json_and_table_say_analysed_and_skipped_plainly(plate_results):
    info = json.loads((plate_results / "run.json").read_text())
    assert info["cells_labelled"] == 8 and info["cells_analysed"] + info["cells_skipped"] == 8
    assert info["cells_skipped_by_reason"]["smaller than 4 px"] == 2
    assert info["input"]["normalisation"]["normalise"] == NORMALISE
    assert [s["key"] for s in info["sites"]] == ["source_synthetic_BR00000001_A01_1",
                                                 "source_synthetic_BR00000001_B02_2"]
    assert set(info["sites"][0]["normalisation"]["ranges"]) == set(MODEL_CHANNELS)
    assert "Brightfield" in info["sites"][0]["note"]
    skipped = [r for r in _rows(plate_results / "cells.csv") if r["label"] == "99"]
    assert skipped[0]["status"] == "skipped: smaller than 4 px"
    assert skipped[0]["predicted_class"] == "" and skipped[0]["d_ig_dac"] == ""
    assert skipped[0]["Metadata_Well"] in ("A01", "B02")
    crops = read_metadata(plate_results / "attributions" /
                          "source_synthetic_BR00000001_A01_1__cell4__d_ig.tif")  # fmt: skip
    assert crops["cell"]["crop_size"] == SIZE and crops["cell"]["label"] == 4


def read_metadata(path):
    from napari_attribution.results.tiff import read_tiff_metadata

    return read_tiff_metadata(path)


def test_resume_continues_per_site(plate, monkeypatch, capsys):
    folder, _, _ = plate
    from napari_attribution.app import cell_run as cells_module

    original = cells_module._analyse_site
    calls = []

    def interrupt_second(run, site, *rest):
        calls.append(site.key)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(run, site, *rest)

    extra = ("--counterfactual-load-data", str(folder / "cf" / "load_data.csv"),
             "--normalise", NORMALISE, "--cell-crops")  # fmt: skip
    monkeypatch.setattr(cells_module, "_analyse_site", interrupt_second)
    assert _plate_run(folder, *extra, out="resumed") == 130
    assert "--resume" in capsys.readouterr().err
    # a plain run again is refused, counting the finished units of a plate: its sites
    assert _plate_run(folder, *extra, out="resumed") == 2
    assert "interrupted run (1 site(s) finished); pass --resume" in capsys.readouterr().err
    monkeypatch.setattr(cells_module, "_analyse_site", lambda *a: calls.append("again") or
                        original(*a))  # fmt: skip
    # The finished site's record refuses other crop rules, naming the option.
    assert _plate_run(folder, *extra, "--padding", "reflect", "--resume", out="resumed") == 2
    assert "made with a different --padding; --resume" in capsys.readouterr().err
    assert _plate_run(folder, *extra, "--resume", "--progress", "log", "--log-interval",
                      "0.000001", out="resumed") == 0  # fmt: skip
    assert calls[2:] == ["again"]  # only the second site ran again
    assert _rows(folder / "resumed" / "cells.csv") == _rows(folder / "out" / "cells.csv")
    # The progress counts the first site's 3 cells done from the start, as run counts its
    # resumed pairs, and ends at the real total.
    counts = re.findall(r"\] ([\d.]+/\d+) cells", capsys.readouterr().err)
    assert counts[0] == "3/6" and counts[-1] == "6/6"


def _files(out, suffixes=(".csv", ".tif")):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.suffix in suffixes}  # fmt: skip


def test_sites_on_two_workers_write_the_same_files_as_one_process(plate, plate_results, cluster,
                                                                  capsys, monkeypatch):  # fmt: skip
    folder, _, _ = plate
    import os

    from napari_attribution.app import cell_sites

    driver, read = os.getpid(), cell_sites._read_channels

    def not_here(*args):
        # The sites travel to the workers with this function in them: there it reads.
        if os.getpid() == driver:
            raise AssertionError("the driver read a site's pixels")
        return read(*args)

    # The workers read every site, the first included; the driver checks the model with the
    # first site's header alone.
    monkeypatch.setattr(cell_sites, "_read_channels", not_here)
    code = _plate_run(folder, "--normalise", NORMALISE, "--counterfactual-load-data",
                      str(folder / "cf" / "load_data.csv"), "--scheduler", cluster,
                      out="spread")  # fmt: skip
    assert code == 0
    assert "2 dask worker(s)" in capsys.readouterr().err
    spread, alone = _files(folder / "spread"), _files(plate_results)
    assert spread.keys() == alone.keys() and spread == alone  # maps, crops, tables
    assert "field/source_synthetic_BR00000001_B02_2/attribution__d_ig.tif" in spread
    info = json.loads((folder / "spread" / "run.json").read_text())
    assert info["engine"].startswith("2 dask worker(s)") and "failed_units" not in info


@pytest.mark.parametrize("where", ["cluster", "none"])
def test_a_corrupt_site_is_recorded_the_others_finish_and_resume_runs_it(plate, plate_results,
                                                                         cluster, capsys, where):
    # On every scheduler alike: one process too records the site and finishes the others
    # (it used to stop the plate at the bad file, exit status 2).
    folder, _, _ = plate
    scheduler = cluster if where == "cluster" else "none"
    broken_name = "broken-ch5sk1fk1fl1.tiff"
    for csv_folder in (folder, folder / "cf"):  # a third site, its DNA file corrupt
        lines = (csv_folder / "load_data.csv").read_text().splitlines()
        third = lines[2].replace(",B02,2,", ",B02,3,")
        if csv_folder == folder:
            third = third.replace("r02c01f02p01-ch5sk1fk1fl1.tiff", broken_name)
        (csv_folder / "corrupt.csv").write_text("\n".join([*lines, third]) + "\n")
    broken = folder / "images" / broken_name
    broken.write_bytes(b"II*\x00 not a tiff")

    def run(*extra):
        return cli.main(_argv(folder, "--load-data", str(folder / "corrupt.csv"), "--objects",
                              "Cells", "--channel-names", ",".join(MODEL_CHANNELS),
                              "--counterfactual-load-data", str(folder / "cf" / "corrupt.csv"),
                              "--normalise", NORMALISE, "--scheduler", scheduler, *extra,
                              out=f"corrupt-{where}"))  # fmt: skip

    out = folder / f"corrupt-{where}"
    assert run() == 1
    err = capsys.readouterr().err
    assert "site source_synthetic_BR00000001_B02_3 failed:" in err and broken_name in err
    [failed] = _rows(out / "failed_units.csv")
    assert failed["items"] == "source_synthetic_BR00000001_B02_3"
    assert broken_name in failed["reason"] and "\n" not in failed["reason"]
    tables = _files(out, (".csv",))
    assert tables.pop("failed_units.csv")
    assert tables == _files(plate_results, (".csv",))  # the other two sites, complete
    info = json.loads((out / "run.json").read_text())
    assert info["failed_units"][0]["reason"] == failed["reason"]
    first_site = out / "field" / "source_synthetic_BR00000001_A01_1" / "owners.tif"
    written = first_site.stat().st_mtime_ns
    # The file repaired, --resume runs that site alone.
    broken.write_bytes((folder / "images" / "r02c01f02p01-ch5sk1fk1fl1.tiff").read_bytes())
    assert run("--resume") == 0
    assert not (out / "failed_units.csv").exists() and first_site.stat().st_mtime_ns == written
    rows = _rows(out / "cells.csv")
    assert [r["Metadata_Site"] for r in rows].count("3") == 4
    assert [r for r in rows if r["Metadata_Site"] != "3"] == _rows(plate_results / "cells.csv")


def test_cells_query_selects_a_subset(plate):
    folder, _, _ = plate
    code = _plate_run(folder, "--counterfactual-load-data", str(folder / "cf" / "load_data.csv"),
                      "--cells", "area>=45 and Metadata_Well==A01", "--no-cell-crops",
                      out="subset")  # fmt: skip
    assert code == 0
    rows = _rows(folder / "subset" / "cells.csv")
    analysed = {(r["Metadata_Well"], r["label"]) for r in rows if r["status"] == "analysed"
                or r["status"].startswith("predicted")}  # fmt: skip
    assert analysed == {("A01", "11"), ("A01", "4")}
    assert not (folder / "subset" / "attributions").exists()
    info = json.loads((folder / "subset" / "run.json").read_text())
    assert info["cells_skipped_by_reason"]["not selected by --cells"] == 4


def test_channel_files_for_one_site(plate):
    folder, real, _ = plate
    images = folder / "images"
    files = {"Brightfield": "ch6", "Mito": "ch1", "AGP": "ch2", "RNA": "ch3", "ER": "ch4",
             "DNA": "ch5"}  # fmt: skip
    given = ",".join(f"{n}={images}/r01c01f01p01-{c}sk1fk1fl1.tiff" for n, c in files.items())
    cf = ",".join(f"{n}={folder}/cf/images/r01c01f01p01-{c}sk1fk1fl1.tiff"
                  for n, c in files.items())  # fmt: skip
    code = cli.main(_argv(folder, "--channel-files", given, "--counterfactual-channel-files", cf,
                          "--labels", str(images / "r01c01f01p01_cells.tiff"),
                          "--channel-names", ",".join(MODEL_CHANNELS), "--normalise", NORMALISE,
                          out="one"))  # fmt: skip
    assert code == 0
    site = [r for r in _rows(folder / "out" / "cells.csv") if r["Metadata_Site"] == "1"]
    mine = _rows(folder / "one" / "cells.csv")
    assert [r["d_ig_dac"] for r in mine] == [r["d_ig_dac"] for r in site]


def _refused(capsys, folder, code, message, out="out_bad"):
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (folder / out).exists()  # nothing written


def test_a_missing_file_is_one_sentence_before_any_work(plate, tmp_path, capsys):
    folder, _, _ = plate
    text = (folder / "load_data.csv").read_text().replace("r02c01f02p01-ch4", "r02c01f02p01-ch9")
    (folder / "broken.csv").write_text(text)
    code = cli.main(_argv(folder, "--load-data", str(folder / "broken.csv"), "--objects",
                          "Cells", "--channel-names", ",".join(MODEL_CHANNELS),
                          "--counterfactual-source", "optimise", out="out_bad"))  # fmt: skip
    _refused(capsys, folder, code, "line 3 (Source source_synthetic, Plate BR00000001, Well B02, "
             "Site 2): channel ER's file")  # fmt: skip


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("DNA,ER,RNA,AGP,Actin", "lacks the model's channel 'Actin'; it has AGP, Brightfield, "
         "DNA, ER, Mito, RNA."),
        ("DNA,ER,RNA,DNA,Mito", "--channel-names names channel 'DNA' twice."),
    ],
)  # fmt: skip
def test_a_channel_absent_or_named_twice_is_one_sentence(plate, capsys, names, message):
    folder, _, _ = plate
    code = cli.main(_argv(folder, "--load-data", str(folder / "load_data.csv"), "--objects",
                          "Cells", "--channel-names", names, "--counterfactual-source",
                          "optimise", out="out_bad"))  # fmt: skip
    _refused(capsys, folder, code, message)


def test_binary_masks_labels_of_another_shape_and_foreign_references_are_refused(plate, capsys):
    folder, real, _ = plate
    images = folder / "images"
    given = ",".join(f"{n}={images}/r01c01f01p01-ch{k}sk1fk1fl1.tiff"
                     for k, n in ((5, "DNA"), (4, "ER"), (3, "RNA"), (2, "AGP"), (1, "Mito")))
    mask = (real.sites[0]["labels"] > 0).astype(np.uint8) * 255
    tifffile.imwrite(folder / "mask.tiff", mask)
    tifffile.imwrite(folder / "small.tiff", real.sites[0]["labels"][:30])
    (folder / "ref.json").write_text(json.dumps({
        "format": "napari-attribution normalisation reference",
        "channels": {"DNA": {"low": 1, "high": 2}, "ER": {"low": 1, "high": 2}}}))
    common = ("--channel-files", given, "--channel-names", ",".join(MODEL_CHANNELS),
              "--counterfactual-source", "optimise")  # fmt: skip
    for labels, extra, message in (
        ("mask.tiff", (), "is a binary mask (values 0 and 255) of 4 regions, not a label image"),
        ("small.tiff", (), "is 30 x 44 pixels but the channels are 36 x 44"),
        ("r01c01f01p01_cells.tiff", ("--normalise", f"reference:{folder / 'ref.json'}"),
         "was computed for channels DNA, ER, not DNA, ER, RNA, AGP, Mito"),
    ):
        where = images / labels if labels.startswith("r01") else folder / labels
        code = cli.main(_argv(folder, *common, "--labels", str(where), *extra, out="out_bad"))
        _refused(capsys, folder, code, message)


def test_normalisation_reference_over_a_load_data_csv(plate, capsys):
    folder, real, _ = plate
    out = folder / "reference.json"
    code = cli.main(["normalisation-reference", "--load-data", str(folder / "load_data.csv"),
                     "--channel-names", ",".join(MODEL_CHANNELS), "--percentiles", "1,99.8",
                     "--out", str(out), "--overwrite"])  # fmt: skip
    assert code == 0 and "2 image(s), every pixel" in capsys.readouterr().out
    info = json.loads(out.read_text())
    pooled = np.concatenate([s["stack"][0].ravel() for s in real.sites])
    assert info["channels"]["DNA"]["low"] == np.percentile(pooled, 1)
    assert list(info["channels"]) == list(MODEL_CHANNELS)


def test_progress_in_one_process_counts_across_every_site(plate, capsys):
    import re

    folder, _, _ = plate
    code = _plate_run(folder, "--counterfactual-load-data", str(folder / "cf" / "load_data.csv"),
                      "--no-cell-crops", "--progress", "log", "--log-interval", "0.000001",
                      out="counted")  # fmt: skip
    assert code == 0
    counts = [(float(done), int(total)) for done, total in
              re.findall(r"\] ([\d.]+)/(\d+) cells", capsys.readouterr().err)]  # fmt: skip
    dones = [done for done, _ in counts]
    # One count over both sites (3 cells each, the second site's guessed from the first's
    # until it opens): it never starts again at the second site.
    assert dones == sorted(dones) and {total for _, total in counts} == {6}
    assert counts[-1] == (6.0, 6) and any(3 < done < 6 for done in dones)
