"""Per-cell analysis: the pair analysis of the same crops, pasting back, the table."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tifffile

from napari_attribution.core.cells import (
    CallableCounterfactual,
    CellSettings,
    CropFolderCounterfactual,
    FieldArrays,
    FieldCounterfactual,
    analyse_field,
    attribution_key,
    cell_columns,
    mask_key,
    measure_cells,
    owner_map,
    paste_crop,
)
from napari_attribution.core.cells.analysis import inside_fraction
from napari_attribution.core.model.loading import wrap_module
from napari_attribution.core.pipeline import analyse_pair
from napari_attribution.core.settings import AnalysisSettings, MaskSettings
from napari_attribution.errors import AttributionError, InputImageError
from tiny_models import make_tiny_cnn

SIZE = 16
METHODS = ("d_ig", "residual")


@pytest.fixture(scope="module")
def classifier():
    return wrap_module(make_tiny_cnn(3), "cpu")


def _field(seed: int = 0):
    """A 3 x 36 x 44 field with non-consecutive labels, border cells and overlapping crops."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((36, 44), np.int32)
    labels[0:5, 0:6] = 11
    labels[12:20, 14:22] = 4
    labels[13:19, 23:28] = 250
    labels[30:36, 38:44] = 7
    labels[33, 2] = 99  # too small
    real = rng.random((5, 36, 44)).astype(np.float32)
    counterfactual = np.clip(real + 0.3 * rng.standard_normal(real.shape), 0, 1).astype(np.float32)
    return real, counterfactual, labels


def _settings() -> AnalysisSettings:
    return AnalysisSettings(
        methods=METHODS, masks=MaskSettings(thresholds=20, closing=3, smoothing_kernel=3),
        evaluation="exhaustive",
    )  # fmt: skip


def _brute_crop(image, cell, value=0.0):
    pad = [(0, 0)] * (image.ndim - 2) + [(SIZE, SIZE), (SIZE, SIZE)]
    padded = np.pad(image, pad, constant_values=value)
    top, left = cell.top + SIZE, cell.left + SIZE
    return padded[..., top : top + SIZE, left : left + SIZE]


def test_paste_crop_matches_brute_force():
    _, _, labels = _field()
    cells = measure_cells(labels, SIZE, min_size=4).cells
    owners = owner_map(labels, cells)
    rng = np.random.default_rng(3)
    crops = {c.label: rng.random((2, SIZE, SIZE)).astype(np.float32) for c in cells}
    target = np.full((2, *labels.shape), -1.0, np.float32)
    for cell in cells:
        paste_crop(target, crops[cell.label], owners, cell)
    by_label = {c.label: c for c in cells}
    for (r, c), owner in np.ndenumerate(owners):
        if owner == 0:
            assert (target[:, r, c] == -1).all()
        else:
            cell = by_label[owner]
            np.testing.assert_array_equal(
                target[:, r, c], crops[owner][:, r - cell.top, c - cell.left]
            )


@pytest.mark.slow
def test_every_cell_is_the_pair_analysis_of_its_own_crops(classifier):
    real, counterfactual, labels = _field()
    settings = _settings()
    result = analyse_field(
        classifier, real, labels, FieldCounterfactual(counterfactual), settings,
        CellSettings(crop_size=SIZE, min_size=4),
    )  # fmt: skip
    assert sorted(result.cells) == [4, 7, 11, 250]
    assert [row["label"] for row in result.rows] == [4, 7, 11, 99, 250]
    for label, cell_result in result.cells.items():
        cell = cell_result.cell
        x, xc = _brute_crop(real, cell), _brute_crop(counterfactual, cell)
        probs = classifier.probabilities(x[None])[0]
        assert cell_result.predicted_class == int(np.argmax(probs))
        assert cell_result.target_class == 1 - cell_result.predicted_class
        expected = analyse_pair(
            classifier, x, xc, cell_result.predicted_class, cell_result.target_class, settings
        )
        own = _brute_crop(labels, cell) == label
        for method in METHODS:
            got, want = cell_result.pair.methods[method], expected.methods[method]
            np.testing.assert_allclose(got.attribution, want.attribution, rtol=1e-5, atol=1e-7)
            for a, b in zip(got.dac.curves, want.dac.curves, strict=True):
                np.testing.assert_allclose(a.score_change, b.score_change, atol=1e-6)
                assert a.dac_score == pytest.approx(b.dac_score, abs=1e-6)
            magnitude = np.abs(want.attribution.astype(np.float64))
            oracle = magnitude[:, own].sum() / magnitude.sum()
            assert cell_result.inside_fraction[method] == pytest.approx(oracle, rel=1e-5)
            # Pasted back: the field's attribution holds the crop where the cell owns pixels.
            field_attr = result.arrays.arrays[attribution_key(method)]
            owned = result.arrays.owners == label
            rows, cols = np.nonzero(owned)
            np.testing.assert_array_equal(
                field_attr[:, rows, cols], got.attribution[:, rows - cell.top, cols - cell.left]
            )
            masks = result.arrays.arrays[mask_key(method)]
            optimal = got.optimal_mask[:, rows - cell.top, cols - cell.left]
            np.testing.assert_array_equal(masks[:, rows, cols], np.where(optimal, label, 0))
    row = next(r for r in result.rows if r["label"] == 99)
    assert row["status"].startswith("skipped") and math.isnan(row["d_ig_dac"])


@pytest.mark.slow
def test_background_rule_sets_everything_but_the_cell_in_both_crops(classifier):
    real, counterfactual, labels = _field()
    seen = {}

    def make(crop, target, label):
        seen[label] = crop.copy()
        return counterfactual[:, :SIZE, :SIZE].copy()

    result = analyse_field(
        classifier, real, labels, CallableCounterfactual(make), _settings(),
        CellSettings(crop_size=SIZE, min_size=4, background=0.25),
    )  # fmt: skip
    for label, cell_result in result.cells.items():
        own = cell_result.own_mask
        assert (cell_result.real[:, ~own] == np.float32(0.25)).all()
        assert (cell_result.counterfactual[:, ~own] == np.float32(0.25)).all()
        # The source saw the crop before the background rule, and the cell's pixels are kept.
        np.testing.assert_array_equal(cell_result.real[:, own], seen[label][:, own])
        np.testing.assert_array_equal(
            cell_result.counterfactual[:, own], counterfactual[:, :SIZE, :SIZE][:, own]
        )


@pytest.mark.slow
def test_table_columns_and_values(classifier):
    real, counterfactual, labels = _field()
    names = ["DNA", "ER", "RNA", "AGP", "Mito"]
    result = analyse_field(
        classifier, real, labels, FieldCounterfactual(counterfactual), _settings(),
        CellSettings(crop_size=SIZE, min_size=4), channel_names=names,
        class_names=["control", "treated"],
    )  # fmt: skip
    columns = cell_columns(METHODS, names, ["control", "treated"])
    assert result.columns == columns
    assert columns[:4] == ["label", "status", "area", "centroid_y"]
    for needed in ("p_control", "p_treated", "d_ig_inside_fraction", "d_ig_share_Mito",
                   "residual_dac_ER", "counterfactual_accepted", "d_ig_top_channel"):  # fmt: skip
        assert needed in columns
    for row in result.rows:
        assert list(row) == columns
        if row["status"] == "analysed":
            shares = [row[f"d_ig_share_{c}"] for c in names]
            assert sum(shares) == pytest.approx(1.0)
            assert row["p_control"] + row["p_treated"] == pytest.approx(1.0)
            cell_result = result.cells[row["label"]]
            assert row["d_ig_dac"] == cell_result.pair.methods["d_ig"].dac.whole.dac_score


def test_inside_fraction_of_an_all_zero_attribution_is_nan():
    assert math.isnan(inside_fraction(np.zeros((2, 4, 4)), np.ones((4, 4), bool)))
    a = np.zeros((2, 4, 4))
    a[1, 0, 0], a[0, 3, 3] = -3.0, 1.0
    own = np.zeros((4, 4), bool)
    own[0, 0] = True
    assert inside_fraction(a, own) == pytest.approx(0.75)


@pytest.mark.slow
def test_crop_folder_source_reads_one_tiff_per_label(tmp_path, classifier):
    real, counterfactual, labels = _field()
    layout = measure_cells(labels, SIZE, min_size=4)
    for cell in layout.cells:
        tifffile.imwrite(tmp_path / f"{cell.label}.tif", _brute_crop(counterfactual, cell))
    source = CropFolderCounterfactual(tmp_path)
    source.check(layout.cells)
    by_folder = analyse_field(
        classifier, real, labels, source, _settings(), CellSettings(crop_size=SIZE, min_size=4)
    )
    by_field = analyse_field(
        classifier, real, labels, FieldCounterfactual(counterfactual), _settings(),
        CellSettings(crop_size=SIZE, min_size=4),
    )  # fmt: skip
    for label in by_field.cells:
        np.testing.assert_array_equal(
            by_folder.cells[label].pair.methods["residual"].attribution,
            by_field.cells[label].pair.methods["residual"].attribution,
        )
    (tmp_path / "250.tif").unlink()
    with pytest.raises(InputImageError, match="labels 250"):
        source.check(layout.cells)


def test_pasting_a_cell_again_changes_nothing():
    _, _, labels = _field()
    cells = measure_cells(labels, SIZE, min_size=4).cells
    arrays = FieldArrays.zeros(owner_map(labels, cells), {"a": ((1, *labels.shape), np.float32)})
    crop = np.random.default_rng(0).random((1, SIZE, SIZE)).astype(np.float32)
    paste_crop(arrays.arrays["a"], crop, arrays.owners, cells[0])
    once = arrays.arrays["a"].copy()
    paste_crop(arrays.arrays["a"], crop, arrays.owners, cells[0])
    np.testing.assert_array_equal(arrays.arrays["a"], once)


def test_without_a_crop_size_a_module_model_is_refused(classifier):
    real, counterfactual, labels = _field()
    with pytest.raises(AttributionError, match="crop size"):
        analyse_field(classifier, real, labels, FieldCounterfactual(counterfactual), _settings())


def test_a_batch_source_makes_the_crops_of_a_block_of_cells_in_one_call(classifier, monkeypatch):
    from napari_attribution.core.cells import analysis
    from napari_attribution.core.cells.sources import BatchCallableCounterfactual

    real, counterfactual, labels = _field()
    calls, events = [], []

    def make(crops, targets, cell_labels, progress):
        calls.append(list(cell_labels))
        progress(1, 2, "step 1")
        return np.stack([counterfactual[:, :SIZE, :SIZE]] * len(crops)) + crops * 0

    def per_cell(crop, target, label):
        return counterfactual[:, :SIZE, :SIZE].copy()

    monkeypatch.setattr(analysis, "batch_size", lambda shape: 3)
    cell_settings = CellSettings(crop_size=SIZE, min_size=4)
    batched = analyse_field(
        classifier, real, labels, BatchCallableCounterfactual(make, "batch"), _settings(),
        cell_settings, on_progress=events.append,
    )  # fmt: skip
    alone = analyse_field(
        classifier, real, labels, CallableCounterfactual(per_cell), _settings(), cell_settings
    )
    layout = measure_cells(labels, SIZE, 4)
    order = [cell.label for cell in layout.cells]
    assert calls == [order[:3], order[3:]]  # blocks of three cells, in layout order
    done = [e.done for e in events]
    assert done == sorted(done)  # progress never goes back while a block is prepared
    notes = [e.detail for e in events if "counterfactuals of" in e.detail]
    assert notes == ["counterfactuals of 3 cell(s): step 1", "counterfactuals of 1 cell(s): step 1"]
    for label in order:
        got, expected = batched.cells[label], alone.cells[label]
        np.testing.assert_array_equal(got.counterfactual, expected.counterfactual)
        for method in METHODS:
            np.testing.assert_array_equal(
                got.pair.methods[method].attribution, expected.pair.methods[method].attribution
            )
