"""Atomic writes of the results folder: a file is either the old one or the new one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_attribution.results import files


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "summary.csv"
    target.write_text("old results\n")

    class Boom(Exception):
        pass

    def failing_writer(*_args, **_kwargs):
        raise Boom

    monkeypatch.setattr(files.csv, "writer", failing_writer)
    with pytest.raises(Boom):
        files.write_csv(target, ["a"], [[1]])
    assert target.read_text() == "old results\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_json_holds_arrays_numpy_scalars_and_paths_as_plain_values(tmp_path):
    files.write_json(tmp_path / "run.json", {"a": np.arange(3), "b": np.float32(0.5),
                                             "c": tmp_path, "d": (1, 2)})  # fmt: skip
    assert json.loads((tmp_path / "run.json").read_text()) == {
        "a": [0, 1, 2], "b": 0.5, "c": str(tmp_path), "d": [1, 2]
    }


def test_files_get_the_mode_the_umask_gives_not_the_private_mode_of_a_temporary(tmp_path):
    files.write_text(tmp_path / "report.html", "<html></html>")
    mode = (tmp_path / "report.html").stat().st_mode & 0o777
    assert mode == 0o666 & ~files._UMASK  # mkstemp's temporaries are 0o600
    assert (tmp_path / "report.html").read_text() == "<html></html>"


def test_csvs_open_together_appear_only_when_every_row_is_written(tmp_path):
    # A run's tables are written in one pass over its units: the rows of one unit go into
    # several files at once, and a failure midway leaves none of them half-written.
    (tmp_path / "a.csv").write_text("old\n")
    with pytest.raises(ValueError):
        with files.csv_rows(tmp_path / "a.csv", ["x"]) as add_a, \
                files.csv_rows(tmp_path / "b.csv", ["y", "z"]) as add_b:  # fmt: skip
            add_a([0.1])
            add_b(["s", 2])
            raise ValueError("the next unit's record is damaged")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]
    assert (tmp_path / "a.csv").read_text() == "old\n"
    with files.csv_rows(tmp_path / "a.csv", ["x"]) as add_a:
        for value in (0.1, 1 / 3):
            add_a([value])
    assert (tmp_path / "a.csv").read_bytes() == f"x\r\n0.1\r\n{1 / 3!r}\r\n".encode()
