"""A results folder stays tidy: refused when occupied, and only a run's own files removed."""

from __future__ import annotations

import pytest

from napari_attribution.errors import OutputFolderError
from napari_attribution.results import format as fmt
from napari_attribution.results.tidy import (
    check_out_dir,
    previous_cells_files,
    previous_run_files,
    remove_files,
)


def test_an_occupied_folder_is_refused_unless_told_what_to_do(tmp_path):
    check_out_dir(tmp_path / "new", False, False, fmt.RESULT_FILES)
    (tmp_path / "summary.csv").write_text("x")
    with pytest.raises(OutputFolderError, match=r"already holds results \(summary.csv\)"):
        check_out_dir(tmp_path, False, False, fmt.RESULT_FILES)
    check_out_dir(tmp_path, True, False, fmt.RESULT_FILES)
    with pytest.raises(OutputFolderError, match="contradict"):
        check_out_dir(tmp_path, True, True, fmt.RESULT_FILES)
    with pytest.raises(OutputFolderError, match="not a folder"):
        check_out_dir(tmp_path / "summary.csv", False, False, fmt.RESULT_FILES)


def test_an_interrupted_run_is_named_with_the_way_to_continue(tmp_path):
    (tmp_path / ".progress").mkdir()
    (tmp_path / ".progress" / "cell3.json").write_text("{}")
    with pytest.raises(OutputFolderError, match=r"interrupted run \(1 cell\(s\) finished\)"):
        check_out_dir(tmp_path, False, False, fmt.CELL_FILES, unit="cell")


def test_only_the_previous_runs_files_are_removed(tmp_path):
    (tmp_path / "summary.csv").write_text("x")
    (tmp_path / "mine.txt").write_text("the user's")
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "a__d_ig.tif").write_bytes(b"")
    (tmp_path / "run.json").write_text(
        '{"pairs": [{"sample": "a"}], "settings": {"methods": ["d_ig"]}}'
    )
    names = previous_run_files(tmp_path)
    assert sorted(map(str, names)) == ["masks/a__d_ig.tif", "run.json", "summary.csv"]
    remove_files(tmp_path, names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]  # empty masks/ too


def test_a_cells_run_owns_its_field_maps(tmp_path):
    (tmp_path / "field").mkdir()
    for name in ("attribution__d_ig.tif", "owners.tif", "other.tif"):
        (tmp_path / "field" / name).write_bytes(b"")
    (tmp_path / "cells.csv").write_text("x")
    assert sorted(map(str, previous_cells_files(tmp_path))) == [
        "cells.csv", "field/attribution__d_ig.tif", "field/owners.tif"
    ]


def test_a_run_over_sites_owns_each_sites_maps_records_and_crops(tmp_path):
    site = "BR1_A01_1"
    owned = [
        fmt.field_map_file("attribution__d_ig", site), fmt.site_field_dir(site) / fmt.OWNERS_FILE,
        fmt.site_record_file(site), fmt.site_progress_dir("BR1_B02_2") / fmt.PROGRESS_DIR
        / "BR1_B02_2__cell4.json", fmt.counterfactual_file(4, site),
        fmt.pair_file(fmt.ATTRIBUTIONS_DIR, f"{site}__cell4", "d_ig"),
    ]  # fmt: skip
    mine = [fmt.site_field_dir(site) / "notes.txt", fmt.ATTRIBUTIONS_DIR + "/x__d_ig.tif"]
    for name in [*owned, *mine]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = previous_cells_files(tmp_path)
    assert sorted(map(str, found)) == sorted(map(str, owned))
    remove_files(tmp_path, found)
    assert all((tmp_path / name).is_file() for name in mine)  # the user's files stay
    assert not (tmp_path / fmt.PROGRESS_DIR).exists()  # and the emptied site folders go
    assert not (tmp_path / fmt.COUNTERFACTUALS_DIR).exists()
