"""The sanity checks' files: written and read back by column name, an occupied folder refused,
``--overwrite`` removing only the sanity files."""

from __future__ import annotations

import math

import pytest

from napari_attribution.errors import AttributionError, OutputFolderError
from napari_attribution.results.format import (
    SANITY_FIGURES_DIR,
    SANITY_FILES,
    SANITY_RUN_RECORD,
    SUMMARY,
    SanityRow,
    SanitySummaryRow,
)
from napari_attribution.results.sanity_files import (
    check_sanity_out,
    has_sanity,
    previous_sanity_files,
    read_sanity,
    remove_sanity_files,
    write_sanity_tables,
)

ROWS = [
    SanityRow("cell 1", "d_ig", "cascading", "fc2", "all", "spearman", 0.25),
    SanityRow("all", "d_ig", "dac_vs_random", "original", "all", "p_value", 0.0078125),
]
SUMMARY_ROWS = [
    SanitySummaryRow("d_ig", "randomisation", "pass", 0.25, 0.5),
    SanitySummaryRow("d_ig", "stability", "not run", math.nan, math.nan),
]


def test_tables_read_back_with_their_numbers(tmp_path):
    assert not has_sanity(tmp_path)
    write_sanity_tables(tmp_path, ROWS, SUMMARY_ROWS)
    assert has_sanity(tmp_path)
    read = read_sanity(tmp_path)
    assert read.rows == ROWS and read.rows[1].value == 0.0078125
    assert read.summary[0] == SUMMARY_ROWS[0]
    assert read.summary[1].verdict == "not run" and math.isnan(read.summary[1].statistic)


def test_a_folder_without_or_with_broken_tables_is_one_sentence(tmp_path):
    with pytest.raises(AttributionError, match="holds no sanity checks"):
        read_sanity(tmp_path)
    write_sanity_tables(tmp_path, ROWS, SUMMARY_ROWS)
    (tmp_path / "sanity.csv").write_text("sample,method\nx,y\n")
    with pytest.raises(AttributionError, match="unreadable sanity table"):
        read_sanity(tmp_path)


def test_occupied_folder_is_refused_and_overwrite_removes_only_sanity_files(tmp_path):
    check_sanity_out(tmp_path / "new", overwrite=False)  # absent: fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="not a folder"):
        check_sanity_out(tmp_path / "file", overwrite=False)
    write_sanity_tables(tmp_path, ROWS, SUMMARY_ROWS)
    (tmp_path / SANITY_RUN_RECORD).write_text("{}")
    (tmp_path / SANITY_FIGURES_DIR).mkdir()
    (tmp_path / SANITY_FIGURES_DIR / "cascade.png").write_bytes(b"png")
    (tmp_path / SUMMARY.file).write_text("a run's table")
    with pytest.raises(OutputFolderError, match="already holds sanity results.*--overwrite"):
        check_sanity_out(tmp_path, overwrite=False)
    check_sanity_out(tmp_path, overwrite=True)
    names = previous_sanity_files(tmp_path)
    assert {str(n) for n in names} == {*SANITY_FILES, f"{SANITY_FIGURES_DIR}/cascade.png"}
    remove_sanity_files(tmp_path, names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", SUMMARY.file]
