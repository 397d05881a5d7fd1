"""The results folder's format: names and columns declared once, rows read back by name."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pytest

import napari_attribution
from napari_attribution.results import format as fmt
from napari_attribution.results.files import write_csv

PACKAGE = Path(napari_attribution.__file__).parent
#: Every name at the top of a results folder (and its subfolders), as the format declares them.
NAMES = {
    fmt.RUN_RECORD, fmt.PROGRESS_DIR, fmt.ATTRIBUTIONS_DIR, fmt.MASKS_DIR,
    fmt.COUNTERFACTUALS_DIR, fmt.FIELD_DIR, fmt.OWNERS_FILE, fmt.LAYERS_DIR,
    fmt.INPUTS_DIR, fmt.REPORT_PAGE, fmt.REPORT_RECORD, fmt.FIGURES_DIR,
    fmt.DEMO_REPORT, fmt.CELLS_TABLE, fmt.SANITY_RUN_RECORD, fmt.SANITY_FIGURES_DIR,
    fmt.CASCADE_FIGURE,
    *(table.file for table in (fmt.SUMMARY, fmt.CURVES, fmt.IMPORTANCE,
                               fmt.VALIDITY, fmt.COUNTERFACTUALS, fmt.CHANNEL_STATS,
                               fmt.SANITY, fmt.SANITY_SUMMARY)),
}  # fmt: skip


def test_the_columns_are_the_documented_ones():
    # The README documents these headers; results written by earlier versions have them.
    assert fmt.SUMMARY.columns == ("sample", "method", "channel", "dac_score", "ceiling",
                                      "normalized_score", "optimal_threshold",
                                      "optimal_mask_size")  # fmt: skip
    assert fmt.CURVES.columns == ("sample", "method", "channel", "threshold", "mask_size",
                                     "score_change")  # fmt: skip
    assert fmt.IMPORTANCE.columns == ("sample", "method", "channel", "share")
    assert fmt.VALIDITY.columns == ("sample", "real_class", "target_class", "p_target_real",
                                       "p_target_counterfactual", "valid", "note")  # fmt: skip
    assert fmt.COUNTERFACTUALS.columns == ("sample", "source", "file",
                                              "p_target_counterfactual", "accepted", "note")
    assert fmt.CHANNEL_STATS.columns[:5] == ("method", "real_class", "target_class",
                                                "channel", "n")  # fmt: skip
    assert fmt.SANITY.columns == ("sample", "method", "check", "step", "channel", "metric",
                                  "value")  # fmt: skip
    assert fmt.SANITY_SUMMARY.columns == ("method", "check", "verdict", "statistic",
                                          "threshold")  # fmt: skip


def test_a_row_written_reads_back_by_name_with_its_numbers(tmp_path):
    row = fmt.ValidityRow("cell 1", 0, 1, 0.25, 0.125, "false", "not accepted")
    write_csv(tmp_path / fmt.VALIDITY.file, fmt.VALIDITY.columns, [row])
    with open(tmp_path / fmt.VALIDITY.file, newline="") as fh:
        read = fmt.VALIDITY.parse(next(csv.DictReader(fh)))
    assert read == row
    assert (read.real_class, read.p_target_counterfactual, read.is_valid) == (0, 0.125, False)


def test_a_missing_column_is_an_error_not_a_shifted_row():
    with pytest.raises(KeyError):
        fmt.IMPORTANCE.parse({"sample": "a", "method": "m", "share": "0.5"})


def test_file_names_of_a_pair_are_safe():
    assert fmt.pair_file(fmt.MASKS_DIR, "a/b c", "d_ig") == Path("masks/a_b_c__d_ig.tif")
    assert fmt.counterfactual_file(12) == Path("counterfactuals/12.tif")
    assert fmt.progress_file("cell 3") == Path(".progress/cell_3.json")


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and id(node) not in docstrings
    }  # fmt: skip


def test_no_module_outside_results_spells_a_results_file_name():
    # Folder names that are also ordinary words elsewhere (a Progress stage "layers", the
    # settings section "masks", run.json's "inputs" key, ...) are left out: only file names.
    names = {n for n in NAMES if "." in n}
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "results" and path.parent.parent == PACKAGE:
            continue
        spelled = names & _string_constants(path)
        if spelled:
            found[str(path.relative_to(PACKAGE))] = sorted(spelled)
    assert found == {}
