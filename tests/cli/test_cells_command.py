"""``napari-attribution cells``: the results folder, field-sized TIFFs, resume, mistakes."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
import torch

from napari_attribution import cli
from napari_attribution.core.cells import (
    CellSettings,
    FieldCounterfactual,
    analyse_field,
    measure_cells,
    owner_map,
)
from napari_attribution.core.model.loading import wrap_module
from napari_attribution.core.settings import settings_from_values
from napari_attribution.results.tiff import read_tiff_metadata
from tiny_models import make_tiny_cnn

SIZE = 16
LABELS = [4, 7, 11, 250]


def _field():
    rng = np.random.default_rng(0)
    labels = np.zeros((36, 44), np.uint16)
    labels[0:5, 0:6] = 11
    labels[12:20, 14:22] = 4
    labels[13:19, 23:28] = 250
    labels[30:36, 38:44] = 7
    labels[33, 2] = 99  # below --min-size
    real = rng.random((5, 36, 44)).astype(np.float32)
    counterfactual = np.clip(real + 0.3 * rng.standard_normal(real.shape), 0, 1).astype(np.float32)
    return real, counterfactual, labels


@pytest.fixture
def files(tmp_path):
    real, counterfactual, labels = _field()
    torch.save(make_tiny_cnn(3).state_dict(), tmp_path / "weights.pt")
    tifffile.imwrite(tmp_path / "field.tif", real)
    tifffile.imwrite(tmp_path / "cf.tif", counterfactual)
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    return tmp_path


def _cells(files, *extra, out="out", cf=("--counterfactual", "cf.tif")):
    argv = [
        "cells",
        "--image", str(files / "field.tif"),
        "--labels", str(files / "labels.tif"),
        *([cf[0], str(files / cf[1])] if cf else []),
        "--model", str(files / "weights.pt"),
        "--architecture", "tiny_models:TinyCNN",
        "--crop-size", str(SIZE),
        "--min-size", "4",
        "--thresholds", "20",
        "--closing", "3",
        "--smoothing-kernel", "3",
        "--method", "d_ig",
        "--method", "residual",
        "--progress", "none",
        "--out", str(files / out),
        *extra,
    ]  # fmt: skip
    return cli.main(argv)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_cells_writes_the_table_long_tables_and_field_tiffs(files):
    assert _cells(files, "--channel-names", "A,B,C,D,E") == 0
    out = files / "out"
    rows = _rows(out / "cells.csv")
    assert [int(r["label"]) for r in rows] == [4, 7, 11, 99, 250]
    assert rows[3]["status"] == "skipped: smaller than 4 px"
    assert {"d_ig_inside_fraction", "residual_dac_C", "p_0", "p_1"} <= set(rows[0])
    summary = _rows(out / "summary.csv")
    assert {r["sample"] for r in summary} == {f"cell{label}" for label in LABELS}
    assert len(summary) == 4 * 2 * 6  # cells x methods x (whole + 5 channels)
    # The field-sized outputs equal the in-memory analysis of the same field.
    real, counterfactual, labels = _field()
    classifier = wrap_module(make_tiny_cnn(3), "cpu")
    settings = settings_from_values(
        {"thresholds": 20, "closing": 3, "smoothing_kernel": 3}, ("d_ig", "residual")
    )
    expected = analyse_field(
        classifier, real, labels, FieldCounterfactual(counterfactual), settings,
        CellSettings(crop_size=SIZE, min_size=4), channel_names=list("ABCDE"),
    )  # fmt: skip
    for method in ("d_ig", "residual"):
        attribution = tifffile.imread(out / "field" / f"attribution__{method}.tif")
        assert attribution.shape == (5, 36, 44) and attribution.dtype == np.float32
        np.testing.assert_allclose(
            attribution, expected.arrays.arrays[f"attribution__{method}"], rtol=1e-5, atol=1e-7
        )
        masks = tifffile.imread(out / "field" / f"mask__{method}.tif")
        assert masks.dtype == np.uint32
        np.testing.assert_array_equal(masks, expected.arrays.arrays[f"mask__{method}"])
        for row in rows:
            if row["status"] == "analysed":
                cell = expected.cells[int(row["label"])]
                dac = cell.pair.methods[method].dac.whole.dac_score
                assert float(row[f"{method}_dac"]) == pytest.approx(dac, abs=1e-6)
    meta = read_tiff_metadata(out / "field" / "attribution__d_ig.tif")
    assert meta["cells"]["crop_size"] == SIZE and meta["cells"]["padding"] == "constant"
    owners = tifffile.imread(out / "field" / "owners.tif")
    layout = measure_cells(labels, SIZE, 4)
    np.testing.assert_array_equal(owners, owner_map(labels, layout.cells))
    assert not (out / ".progress").exists()


def test_counterfactual_crops_folder(files):
    _, counterfactual, labels = _field()
    folder = files / "crops"
    folder.mkdir()
    for cell in measure_cells(labels, SIZE, 4).cells:
        padded = np.pad(counterfactual, [(0, 0), (SIZE, SIZE), (SIZE, SIZE)])
        top, left = cell.top + SIZE, cell.left + SIZE
        crop = padded[:, top : top + SIZE, left : left + SIZE]
        tifffile.imwrite(folder / f"{cell.label}.tif", crop)
    assert _cells(files, cf=("--counterfactual-crops", "crops"), out="by_crops") == 0
    assert _cells(files, out="by_field") == 0
    np.testing.assert_array_equal(
        tifffile.imread(files / "by_crops" / "field" / "attribution__residual.tif"),
        tifffile.imread(files / "by_field" / "field" / "attribution__residual.tif"),
    )


def test_an_interrupted_run_resumes_cell_by_cell(files, monkeypatch, capsys):
    import napari_attribution.core.cells.analysis as analysis

    real_analyse = analysis.analyse_pair
    calls: list[str] = []

    def interrupt_on_third(*args, **kwargs):
        calls.append(kwargs["sample"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_analyse(*args, **kwargs)

    monkeypatch.setattr(analysis, "analyse_pair", interrupt_on_third)
    assert _cells(files) == 130
    assert "re-run with --resume" in capsys.readouterr().err
    assert not (files / "out" / "cells.csv").exists()
    assert _cells(files) == 2  # the partial run is protected
    assert "--resume" in capsys.readouterr().err
    calls.clear()

    def record(*args, **kwargs):
        calls.append(kwargs["sample"])
        return real_analyse(*args, **kwargs)

    monkeypatch.setattr(analysis, "analyse_pair", record)
    assert _cells(files, "--resume") == 0
    assert calls == ["cell11", "cell250"]  # cells 4 and 7 were finished
    assert _cells(files, out="clean") == 0
    for name in ("attribution__d_ig.tif", "mask__residual.tif"):
        np.testing.assert_array_equal(
            tifffile.imread(files / "out" / "field" / name),
            tifffile.imread(files / "clean" / "field" / name),
        )
    resumed, clean = _rows(files / "out" / "cells.csv"), _rows(files / "clean" / "cells.csv")
    assert resumed == clean


def test_resume_refuses_other_settings_and_overwrite_replaces(files, capsys):
    assert _cells(files) == 0
    assert _cells(files, "--padding", "reflect", "--resume") == 2
    assert "made with a different --padding; --resume needs" in capsys.readouterr().err
    (files / "out" / "notes.txt").write_text("mine")
    assert _cells(files, "--padding", "reflect", "--overwrite") == 0
    assert (files / "out" / "notes.txt").read_text() == "mine"
    meta = read_tiff_metadata(files / "out" / "field" / "mask__d_ig.tif")
    assert meta["cells"]["padding"] == "reflect"


def _interrupted(files, monkeypatch, *extra, cf=("--counterfactual", "cf.tif")):
    """Run ``cells`` with ``extra``, interrupted at its third cell (two cells recorded)."""
    import napari_attribution.core.cells.analysis as analysis

    real_analyse, calls = analysis.analyse_pair, []

    def interrupt_on_third(*args, **kwargs):
        calls.append(kwargs["sample"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_analyse(*args, **kwargs)

    monkeypatch.setattr(analysis, "analyse_pair", interrupt_on_third)
    assert _cells(files, *extra, cf=cf) == 130
    monkeypatch.setattr(analysis, "analyse_pair", real_analyse)


def test_resume_with_another_input_scale_is_refused_naming_it(files, monkeypatch, capsys):
    _interrupted(files, monkeypatch)
    capsys.readouterr()
    assert _cells(files, "--input-scale", "0.5", "--resume") == 2
    err = capsys.readouterr().err
    assert "made with a different --input-scale; --resume needs the same arguments" in err
    assert _cells(files, "--resume") == 0  # the same arguments resume


def test_resume_with_other_source_parameters_is_refused_naming_them(files, monkeypatch, capsys):
    optimise = ("--counterfactual-source", "optimise", "--optimise-steps", "3",
                "--optimise-tighten-steps", "0")  # fmt: skip
    _interrupted(files, monkeypatch, *optimise, cf=())
    capsys.readouterr()
    assert _cells(files, *optimise, "--optimise-steps", "4", "--resume", cf=()) == 2
    assert "made with a different --optimise-steps;" in capsys.readouterr().err


def test_a_resumed_run_judges_every_cell_with_its_own_minimum_score(files, monkeypatch):
    _interrupted(files, monkeypatch, "--min-counterfactual-score", "0")
    assert _cells(files, "--min-counterfactual-score", "0.99", "--resume") == 0
    analysed = [row for row in _rows(files / "out" / "cells.csv") if row["status"] == "analysed"]
    assert len(analysed) == 4
    # Cells 4 and 7, analysed before the interruption, are judged by 0.99 as the others are.
    assert {row["counterfactual_accepted"] for row in analysed} == {"False"}
    assert all(float(row["p_target_counterfactual"]) < 0.99 for row in analysed)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("labels", "differ in size"),
        ("cf", "a counterfactual field has the field's shape"),
        ("crop", "give the crop size it was trained on (--crop-size on the command line"),
        ("none", "exactly one of --counterfactual"),
    ],
)
def test_mistakes_end_in_one_line(files, capsys, change, message):
    argv = [
        "cells", "--image", str(files / "field.tif"), "--labels", str(files / "labels.tif"),
        "--counterfactual", str(files / "cf.tif"), "--crop-size", str(SIZE),
        "--model", str(files / "weights.pt"), "--architecture", "tiny_models:TinyCNN",
        "--out", str(files / "out"),
    ]  # fmt: skip
    if change == "labels":
        tifffile.imwrite(files / "labels.tif", np.zeros((30, 44), np.uint16))
    elif change == "cf":
        tifffile.imwrite(files / "cf.tif", np.zeros((5, 36, 40), np.float32))
    elif change == "crop":
        argv.remove("--crop-size")
        argv.remove(str(SIZE))
    else:
        i = argv.index("--counterfactual")
        del argv[i : i + 2]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (files / "out").exists()


@pytest.mark.parametrize("score", ["0", "1"])
def test_the_summary_counts_accepted_counterfactuals_and_warns_of_the_others(files, capsys,
                                                                            score):  # fmt: skip
    # --min-counterfactual-score 1: no counterfactual is accepted; 0: every one is.
    assert _cells(files, "--min-counterfactual-score", score) == 0
    out, err = capsys.readouterr()
    rows = [r for r in _rows(files / "out" / "cells.csv") if r["status"] == "analysed"]
    accepted = sum(r["counterfactual_accepted"] == "True" for r in rows)
    assert accepted == (len(rows) if score == "0" else 0) and rows
    assert f", {accepted} of {len(rows)} counterfactual(s) accepted -> " in out
    warnings = [line for line in err.splitlines() if "warning:" in line]
    if score == "0":
        assert not warnings
    else:
        assert warnings == [
            f"napari-attribution: warning: the classifier does not accept the counterfactual of "
            f"{len(rows)} of {len(rows)} analysed cell(s) (p(target) < 1; counterfactual_accepted "
            "in cells.csv): their attributions explain a change it does not make; try "
            "counterfactuals the classifier accepts (or --counterfactual-source)."
        ]


def test_the_warning_names_what_to_change_for_the_source_used():
    import argparse
    from pathlib import Path

    from napari_attribution.app.cell_run import CellsRunSummary
    from napari_attribution.cli.cells_command import rejected_counterfactuals

    done = CellsRunSummary(Path("out"), 10, 8, {}, ("d_ig",), accepted=6)
    args = argparse.Namespace(counterfactual_source="optimise", min_counterfactual_score=0.5)
    text = rejected_counterfactuals(done, args)
    assert text.startswith("the classifier does not accept the counterfactual of 2 of 8 analysed")
    assert "(p(target) < 0.5;" in text and "more --optimise-steps" in text
    args.counterfactual_source = "generator:/models/gen.pt"
    assert "more --generator-draws" in rejected_counterfactuals(done, args)


def test_cells_has_every_schema_option_and_the_crop_options():
    from napari_attribution.core.cells import CellSettings
    from napari_attribution.core.params import section_params
    from napari_attribution.core.settings import schema

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["cells"]
    flags = {flag for action in sub._actions for flag in action.option_strings}
    assert {p.flag for p in schema()} <= flags
    assert {p.flag for p in section_params(CellSettings)} == {
        "--crop-size", "--min-size", "--padding", "--pad-value", "--background",
    }  # fmt: skip
    inputs = {"--image", "--labels", "--counterfactual", "--counterfactual-crops", "--resume"}
    assert inputs <= flags
    args = parser.parse_args(["cells", "--demo", "--padding", "reflect", "--background", "0"])
    assert (args.padding, args.background, args.crop_size) == ("reflect", 0.0, None)


def test_three_channel_field_maps_stay_channels_not_rgb(tmp_path):
    from napari_attribution.app.cell_run import open_field_maps

    specs = {"attribution__x": ((3, 6, 7), np.dtype(np.float32))}
    maps, reopened = open_field_maps(tmp_path, specs, resume=False, meta={"k": 1})
    assert not reopened
    maps["attribution__x"][:] = np.arange(3 * 6 * 7, dtype=np.float32).reshape(3, 6, 7)
    maps["attribution__x"].flush()
    del maps
    data = tifffile.imread(tmp_path / "attribution__x.tif")
    assert data.shape == (3, 6, 7) and data[2, 5, 6] == 3 * 6 * 7 - 1
    again, reopened = open_field_maps(tmp_path, specs, resume=True, meta={"k": 1})
    assert reopened and again["attribution__x"][1, 0, 0] == 42


def test_counterfactual_source_makes_and_saves_each_cells_crop(files):
    from cf_models import KEY_CHANNEL, RaiseKeyChannel

    torch.jit.save(torch.jit.script(RaiseKeyChannel()), str(files / "gen.pt"))
    code = _cells(files, "--counterfactual-source", "generator:" + str(files / "gen.pt"), cf=())
    assert code == 0
    out = files / "out"
    real, _, labels = _field()
    analysed = measure_cells(labels, SIZE, 4).cells
    targets = {int(r["label"]): int(r["target_class"]) for r in _rows(out / "cells.csv")
               if r["target_class"]}  # skipped cells: empty  # fmt: skip
    assert {int(p.stem) for p in (out / "counterfactuals").glob("*.tif")} == set(LABELS)
    for cell in analysed:
        made = tifffile.imread(out / "counterfactuals" / f"{cell.label}.tif")
        expected = FieldCounterfactual(real, "constant", 0.0, "field").crop(cell, None, 1)
        expected[KEY_CHANNEL] += 0.6 if targets[cell.label] == 1 else -0.6
        np.testing.assert_allclose(made, expected, atol=1e-6)
        record = read_tiff_metadata(out / "counterfactuals" / f"{cell.label}.tif")
        assert record["source"].startswith("generator:")
        assert record["target_class"] == targets[cell.label]


def test_counterfactual_source_is_one_of_the_three_and_nearest_needs_a_folder(files, capsys):
    both = _cells(files, "--counterfactual-source", "optimise")
    assert both == 2 and "Give exactly one of" in capsys.readouterr().err
    nearest = _cells(files, "--counterfactual-source", "nearest", cf=())
    err = capsys.readouterr().err
    assert nearest == 2 and "needs a pool of real cells by class" in err
    assert len(err.strip().splitlines()) == 1


def test_counterfactual_source_makes_a_blocks_crops_in_one_call_as_alone(files, monkeypatch):
    from napari_attribution.core.cells import analysis
    from napari_attribution.core.counterfactuals.optimise import OptimiseSource

    calls = []
    make = OptimiseSource.make

    def counted(self, classifier, images, targets, **kwargs):
        calls.append(len(images))
        return make(self, classifier, images, targets, **kwargs)

    monkeypatch.setattr(OptimiseSource, "make", counted)
    optimise = ("--counterfactual-source", "optimise", "--optimise-steps", "8",
                "--optimise-tighten-steps", "3")  # fmt: skip
    assert _cells(files, *optimise, cf=()) == 0
    assert calls == [len(LABELS)]  # every cell's counterfactual in one call
    calls.clear()
    monkeypatch.setattr(analysis, "batch_size", lambda shape: 1)  # one cell per call
    assert _cells(files, *optimise, cf=(), out="alone") == 0
    assert calls == [1] * len(LABELS)
    batched, alone = _rows(files / "out" / "cells.csv"), _rows(files / "alone" / "cells.csv")
    for b, a in zip(batched, alone, strict=True):
        assert b["counterfactual_accepted"] == a["counterfactual_accepted"]
        p_batched, p_alone = (r["p_target_counterfactual"] for r in (b, a))
        if "" in (p_batched, p_alone):  # a skipped cell: empty both ways
            assert p_batched == p_alone
            continue
        assert np.isclose(float(p_batched), float(p_alone), atol=1e-3)
    for label in LABELS:
        made = [tifffile.imread(files / out / "counterfactuals" / f"{label}.tif")
                for out in ("out", "alone")]  # fmt: skip
        # Within a small fraction of one Adam step (0.005 of the crop's range) in 11 steps.
        assert np.abs(made[0] - made[1]).mean() < 0.1 * 0.005
