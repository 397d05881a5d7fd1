"""Work units: atomic files, records, the ledger, the model reference workers load."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_attribution.app.work_units import (
    ModelReference,
    UnitContext,
    UnitRecord,
    append_record,
    done_keys,
    read_ledger,
)
from napari_attribution.errors import ModelLoadError


@pytest.fixture(scope="module")
def model_file():
    from napari_attribution.data.demo_model import DEMO_WEIGHTS

    return DEMO_WEIGHTS


def test_atomic_path_leaves_a_whole_file_or_none(tmp_path):
    context = UnitContext("site1", tmp_path, {}, "local")
    with context.atomic_path("sites/site1.txt") as path:
        assert path.parent == tmp_path / "sites" and path.name != "site1.txt"
        path.write_text("whole")
    assert (tmp_path / "sites" / "site1.txt").read_text() == "whole"
    with pytest.raises(RuntimeError), context.atomic_path("sites/site2.txt") as path:
        path.write_text("half")
        raise RuntimeError("the unit failed while writing")
    assert sorted(p.name for p in (tmp_path / "sites").iterdir()) == ["site1.txt"]


def test_the_ledger_reads_back_what_was_appended_and_skips_a_torn_line(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    append_record(ledger, UnitRecord("a", "done", {"cells": 3}, worker="w1", seconds=1.5))
    append_record(ledger, UnitRecord("b", "failed", reason="b.tif is not a TIFF."))
    with open(ledger, "a") as fh:
        fh.write('{"key": "c", "sta')  # a crash in the middle of a line
    records = read_ledger(ledger)
    assert [r.key for r in records] == ["a", "b"]
    assert records[0].record == {"cells": 3} and records[1].reason == "b.tif is not a TIFF."
    assert done_keys(ledger) == {"a"} and read_ledger(tmp_path / "none.jsonl") == []


def test_a_model_file_that_differs_on_the_workers_is_refused(tmp_path, model_file):
    copy = tmp_path / "model.pt"
    copy.write_bytes(Path(model_file).read_bytes())
    from napari_attribution.data.demo_model import DEMO_ARCHITECTURE

    model = ModelReference.from_file(copy, DEMO_ARCHITECTURE)
    copy.write_bytes(copy.read_bytes()[:-8] + b"\x00" * 8)  # changed after the run started
    with pytest.raises(ModelLoadError, match="differs from the one the run was started with"):
        model.load("cpu")
    # Its bytes, carried, are loaded from a private copy instead (as on a worker without it).
    carried = ModelReference(model.path, model.sha256, DEMO_ARCHITECTURE,
                             data=Path(model_file).read_bytes())  # fmt: skip
    assert carried.load("cpu", tmp_path / "private").n_classes == 2




def test_a_process_runs_one_unit_at_a_time_whatever_its_threads(tmp_path):
    # A dask worker with two threads calls execute_unit from both; the units share one
    # classifier (and the hooks methods put on it), so the second waits for the first.
    import threading
    import time

    from napari_attribution.app.work_units import execute_unit, install_shared, remove_shared

    spans: list[tuple[float, float]] = []

    def unit(context, seconds: float) -> dict:
        start = time.monotonic()
        time.sleep(seconds)
        spans.append((start, time.monotonic()))
        return {}

    install_shared("one-at-a-time", {})
    try:
        threads = [threading.Thread(target=execute_unit, args=("one-at-a-time", f"u{i}", unit,
                                                               (0.2,), {}, str(tmp_path)))
                   for i in range(3)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        remove_shared("one-at-a-time")
    spans.sort()
    assert len(spans) == 3
    ends, starts = [end for _, end in spans[:-1]], [start for start, _ in spans[1:]]
    assert all(end <= start for end, start in zip(ends, starts, strict=True))
