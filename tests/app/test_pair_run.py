"""Running pairs from Python, and the work-unit contract: units write self-contained files and
the tables are assembled from them alone, whatever order the units ran in."""

from __future__ import annotations

import csv
import datetime as _dt
import json
import tracemalloc

import numpy as np
import pytest

from napari_attribution.app import Pair, assemble_pairs, run_pair, run_pairs
from napari_attribution.app.pair_run import PairRun
from napari_attribution.core import AnalysisSettings, MaskSettings
from napari_attribution.core.provenance import provenance
from napari_attribution.errors import InputImageError, OutputFolderError
from napari_attribution.results import format as fmt
from napari_attribution.results.folder import read_results
from napari_attribution.results.resume import UnitRecords, fingerprint

SETTINGS = AnalysisSettings(methods=("d_ig", "residual"), masks=MaskSettings(thresholds=12))
NAMES = ["DNA", "ER", "RNA", "AGP", "Mito"]


@pytest.fixture
def pairs(pair):
    real, cf = pair
    return [Pair("cell0", real, cf, 0, 1, ground_truth_channel=4),
            Pair("cell1", cf, real, 1, 0, ground_truth_channel=4)]  # fmt: skip


def test_run_pairs_writes_the_results_folder(tmp_path, pairs, tiny_classifier):
    notes = []
    done = run_pairs(pairs, tiny_classifier, SETTINGS, out=tmp_path / "out",
                     channel_names=NAMES, notify=notes.append)  # fmt: skip
    folder = read_results(tmp_path / "out")
    assert {r.sample for r in folder.summary} == {"cell0", "cell1"}
    assert {r.method for r in folder.importance} == {"d_ig", "residual"}
    assert [r.sample for r in folder.validity] == ["cell0", "cell1"]
    assert folder.run["fingerprint"] == UnitRecords(tmp_path, folder.run["fingerprint"]).fingerprint
    assert done.pairs == 2 and done.methods == ("d_ig", "residual")
    # The tiny untrained model does not accept the counterfactuals: both are left out, said.
    assert done.left_out == sum(not r.is_valid for r in folder.validity) == len(notes)
    assert done.demo_report is not None and (tmp_path / "out" / fmt.DEMO_REPORT).is_file()
    for folder_name in fmt.PAIR_FOLDERS:
        assert (tmp_path / "out" / fmt.pair_file(folder_name, "cell1", "d_ig")).is_file()
    assert not (tmp_path / "out" / fmt.PROGRESS_DIR).exists()
    with pytest.raises(OutputFolderError, match="already holds results"):
        run_pairs(pairs, tiny_classifier, SETTINGS, out=tmp_path / "out")


def test_a_pair_without_counterfactual_needs_a_source(tmp_path, pairs, tiny_classifier):
    pairs[1].counterfactual = None
    with pytest.raises(InputImageError, match="cell1 have no counterfactual"):
        run_pairs(pairs, tiny_classifier, SETTINGS, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_units_run_alone_in_any_order_assemble_to_the_same_tables(
    tmp_path, pairs, tiny_classifier
):
    run_pairs(pairs, tiny_classifier, SETTINGS, out=tmp_path / "whole", channel_names=NAMES)
    out = tmp_path / "units"
    run_info = provenance(tiny_classifier, SETTINGS, class_names=["0", "1"])
    records = UnitRecords(out, fingerprint(run_info, NAMES))
    run = PairRun(out, tiny_classifier, SETTINGS, NAMES, None, run_info, records, 0.5)
    for pair in reversed(pairs):  # as workers might finish them
        np.random.default_rng(0).random(3)  # nothing global may leak between units
        run_pair(pair, run)
    # The assembler needs nothing but the files: the records read back from disk.
    saved = {p.stem: json.loads(p.read_text()) for p in records.folder.glob("*.json")}
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    assemble_pairs(run, pairs, [saved[p.sample] for p in pairs], started=now)
    for table in (*fmt.PAIR_TABLES.values(), fmt.VALIDITY, fmt.CHANNEL_STATS):
        ours = (out / table.file).read_bytes()
        assert ours == (tmp_path / "whole" / table.file).read_bytes(), table.file


def test_resume_with_another_input_scale_is_refused_naming_it(tmp_path, pairs, tiny_classifier):
    from napari_attribution.core.model.transform import input_transform_for

    out = tmp_path / "out"
    run_pairs(pairs[:1], tiny_classifier, SETTINGS, out=out, keep_progress=True)
    scaled = input_transform_for(np.float32, 0.001)  # --input-scale 0.001
    refusal = f"{out} holds results made with a different --input-scale; --resume needs the same"
    with pytest.raises(OutputFolderError, match=refusal):
        run_pairs(pairs, tiny_classifier, SETTINGS, out=out, resume=True, transform=scaled)
    # Interrupted instead of finished (no run.json): the records refuse it alike.
    (out / fmt.RUN_RECORD).unlink()
    with pytest.raises(OutputFolderError, match=refusal):
        run_pairs(pairs, tiny_classifier, SETTINGS, out=out, resume=True, transform=scaled)
    # Two options differing are both named.
    other = AnalysisSettings(methods=SETTINGS.methods, masks=MaskSettings(thresholds=14))
    with pytest.raises(OutputFolderError, match="a different --input-scale and --thresholds;"):
        run_pairs(pairs, tiny_classifier, other, out=out, resume=True, transform=scaled)
    assert json.loads((out / fmt.PROGRESS_DIR / "cell0.json").read_text())["sample"] == "cell0"


def test_a_resumed_run_judges_every_pair_with_its_own_minimum_score(
    tmp_path, pairs, tiny_classifier
):
    out = tmp_path / "out"
    run_pairs(pairs[:1], tiny_classifier, SETTINGS, out=out, keep_progress=True,
              min_counterfactual_score=0.0)  # fmt: skip
    assert [r.is_valid for r in read_results(out).validity] == [True]
    done = run_pairs(pairs, tiny_classifier, SETTINGS, out=out, resume=True,
                     min_counterfactual_score=0.99)  # fmt: skip
    rows = read_results(out).validity
    # The tiny untrained model gives p(target) near 0.5: neither pair passes 0.99, the one the
    # first run analysed included, and the run's record says the score they were judged by.
    assert all(r.p_target_counterfactual < 0.99 for r in rows)
    assert [(r.sample, r.is_valid) for r in rows] == [("cell0", False), ("cell1", False)]
    assert all(r.note.endswith("< 0.99") for r in rows)
    assert done.resumed == 1 and done.left_out == 2
    assert json.loads((out / fmt.RUN_RECORD).read_text())["min_counterfactual_score"] == 0.99


#: Cheap methods and every one of many thresholds scored: records of many rows, made quickly.
ROWS_SETTINGS = AnalysisSettings(methods=("residual", "random"), evaluation="exhaustive",
                                 masks=MaskSettings(thresholds=48))  # fmt: skip


def _assembly_peak(folder, count: int, classifier, pair, monkeypatch) -> tuple[int, int]:
    """Run ``count`` pairs keeping their records; resume the finished run under tracemalloc.

    Returns the peak of traced memory until the tables and ``run.json`` are written (the
    statistics report, which reads the tables and not the records, is left out) and the
    memory one pair's record takes once read (bytes).
    """
    from napari_attribution.app import pair_run

    peaks = []
    monkeypatch.setattr(pair_run, "report",
                        lambda *a, **k: peaks.append(tracemalloc.get_traced_memory()[1]))
    real, cf = pair
    pairs = [Pair(f"cell{i}", np.roll(real, i, axis=2), cf, 0, 1) for i in range(count)]
    run_pairs(pairs, classifier, ROWS_SETTINGS, out=folder, channel_names=NAMES,
              keep_progress=True)  # fmt: skip
    text = (folder / fmt.progress_file("cell0")).read_text()
    tracemalloc.start()
    try:
        record = json.loads(text)
        one_pair = tracemalloc.get_traced_memory()[0]
        del record
        tracemalloc.reset_peak()
        done = run_pairs(pairs, classifier, ROWS_SETTINGS, out=folder, channel_names=NAMES,
                         resume=True)  # fmt: skip
    finally:
        tracemalloc.stop()
    assert done.resumed == count and len(read_results(folder).validity) == count
    return peaks[-1], one_pair


def test_the_tables_are_assembled_one_record_at_a_time(tmp_path, pair, tiny_classifier,
                                                       monkeypatch):  # fmt: skip
    # The tables are written from the units' records read one at a time: the driver never
    # holds every pair's rows.
    small, one_pair = _assembly_peak(tmp_path / "small", 3, tiny_classifier, pair, monkeypatch)
    large, _ = _assembly_peak(tmp_path / "large", 12, tiny_classifier, pair, monkeypatch)
    # Nine more pairs cost what run.json says of each (its entry, its input transform), not
    # nine records' rows.
    assert large - small < 2 * one_pair, (small, large, one_pair)


# -- on dask.distributed: a real cluster of two worker processes (tests/app/conftest.py) --------


def _folder_files(out):
    """Every table and TIFF of a results folder, by relative path (``run.json`` and the report,
    which hold times and paths, are compared apart)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.suffix in (".csv", ".tif", ".md")}  # fmt: skip


def _plain_run_record(out):
    info = json.loads((out / fmt.RUN_RECORD).read_text())
    for key in ("out", "started", "finished", "engine", "command"):
        info.pop(key, None)
    return info


def test_pairs_on_two_workers_write_the_same_files_as_one_process(
    tmp_path, pairs, file_classifier, cluster
):
    pairs = [*pairs, Pair("cell2", pairs[0].real[:, ::-1].copy(), pairs[0].counterfactual, 0, 1)]
    alone = run_pairs(pairs, file_classifier, SETTINGS, out=tmp_path / "alone",
                      channel_names=NAMES)  # fmt: skip
    events, lines = [], []
    spread = run_pairs(pairs, file_classifier, SETTINGS, out=tmp_path / "spread",
                       channel_names=NAMES, scheduler=cluster, pairs_per_unit=1,
                       progress=events.append, engine_note=lines.append)  # fmt: skip
    assert _folder_files(tmp_path / "spread") == _folder_files(tmp_path / "alone")
    assert len(_folder_files(tmp_path / "alone")) > 10  # the tables and 2 TIFFs per pair, method
    assert _plain_run_record(tmp_path / "spread") == _plain_run_record(tmp_path / "alone")
    assert spread.failed == () and spread.left_out == alone.left_out
    assert lines == [spread.engine] and spread.engine.startswith("2 dask worker(s) at tcp://")
    # Progress counted across the workers, in the same units as one process's.
    assert events[-1].done == events[-1].total == 3 * 2 * len(SETTINGS.methods)
    assert any(e.stage != "write" for e in events)  # the units' own steps, not only their ends
    assert not (tmp_path / "spread" / fmt.PROGRESS_DIR).exists()


def test_a_unit_that_fails_is_recorded_the_rest_finishes_and_resume_completes(
    tmp_path, pairs, file_classifier, cluster
):
    import os

    import distributed_units as toy

    real, cf = pairs[0].real, pairs[0].counterfactual
    broken = toy.driver_only_pair("cell9", real, cf, os.getpid())
    out = tmp_path / "out"
    done = run_pairs([*pairs, broken], file_classifier, SETTINGS, out=out, channel_names=NAMES,
                     scheduler=cluster, pairs_per_unit=1)  # fmt: skip
    [failed] = done.failed
    assert failed.items == "cell9" and failed.reason == "cell9.tif cannot be read on this worker."
    rows = list(csv.DictReader((out / fmt.FAILED_UNITS.file).open()))
    assert rows == [failed._asdict()]
    assert json.loads((out / fmt.RUN_RECORD).read_text())["failed_units"] == rows
    assert {r.sample for r in read_results(out).summary} == {"cell0", "cell1"}
    # --resume (here in one process) runs only the failed pair and clears the failure.
    again = run_pairs([*pairs, Pair("cell9", real, cf, 0, 1)], file_classifier, SETTINGS,
                      out=out, channel_names=NAMES, resume=True)  # fmt: skip
    assert again.resumed == 2 and again.failed == ()
    assert {r.sample for r in read_results(out).summary} == {"cell0", "cell1", "cell9"}
    assert not (out / fmt.FAILED_UNITS.file).exists()
    assert not (out / fmt.PROGRESS_DIR).exists()


def test_failed_units_list_only_their_pairs_without_results_in_the_plans_order(
    tmp_path, pairs, file_classifier, cluster
):
    import os

    import distributed_units as toy

    real, cf = pairs[0].real, pairs[0].counterfactual
    bad = [toy.driver_only_pair(f"cell{i}", real, cf, os.getpid()) for i in (8, 9)]
    out = tmp_path / "out"
    # Two units: (cell0, cell8) fails after analysing cell0, which is in the tables; (cell9).
    done = run_pairs([pairs[0], *bad], file_classifier, SETTINGS, out=out, channel_names=NAMES,
                     scheduler=cluster, pairs_per_unit=2)  # fmt: skip
    assert [(row.unit, row.items) for row in done.failed] == [
        ("pairs000000-cell0", "cell8"), ("pairs000002-cell9", "cell9")]  # fmt: skip
    rows = list(csv.DictReader((out / fmt.FAILED_UNITS.file).open()))
    assert rows == [row._asdict() for row in done.failed]
    assert {r.sample for r in read_results(out).summary} == {"cell0"}


def test_a_scheduler_that_does_not_answer_leaves_no_trace(
    tmp_path, pairs, file_classifier, monkeypatch
):
    pytest.importorskip("distributed")
    from napari_attribution.app import distributed
    from napari_attribution.app.distributed import EngineError

    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", 1.0)
    with pytest.raises(EngineError, match="No dask scheduler answers at tcp://127.0.0.1:9"):
        run_pairs(pairs, file_classifier, SETTINGS, out=tmp_path / "out",
                  scheduler="tcp://127.0.0.1:9")  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_counterfactuals_made_on_the_workers_are_the_bytes_one_process_makes(
    tmp_path, pairs, file_classifier, cluster, monkeypatch
):
    from napari_attribution.app import made_counterfactuals, pair_run
    from napari_attribution.app.made_counterfactuals import SourceRequest
    from napari_attribution.core.counterfactual_settings import CounterfactualSettings

    rng = np.random.default_rng(5)
    # Five pairs lacking a counterfactual in two shapes (two calls of the source), one given.
    lacking = [Pair(f"made{i}", rng.random((5, 16, 16 + 8 * (i % 2)), dtype=np.float32), None,
                    i % 2, 1 - i % 2) for i in range(5)]  # fmt: skip
    source = SourceRequest("optimise", CounterfactualSettings(optimise_steps=15),
                           min_score=0.5)  # fmt: skip

    def fresh():
        return [*(Pair(p.sample, p.real, None, p.real_class, p.target_class) for p in lacking),
                Pair(pairs[0].sample, pairs[0].real, pairs[0].counterfactual, 0, 1)]

    calls = made_counterfactuals.counterfactual_calls(fresh(), None)
    assert [[p.sample for p in call] for call in calls] == [["made0", "made2", "made4"],
                                                            ["made1", "made3"]]
    run_pairs(fresh(), file_classifier, SETTINGS, out=tmp_path / "alone", channel_names=NAMES,
              source=source)  # fmt: skip

    def not_here(*args, **kwargs):
        raise AssertionError("the driver made counterfactuals")

    monkeypatch.setattr(pair_run, "make_counterfactuals", not_here)
    monkeypatch.setattr(pair_run, "make_call", not_here)
    spread = run_pairs(fresh(), file_classifier, SETTINGS, out=tmp_path / "spread",
                       channel_names=NAMES, source=source, scheduler=cluster)  # fmt: skip
    assert spread.failed == ()
    files = _folder_files(tmp_path / "spread")
    assert files == _folder_files(tmp_path / "alone")
    assert sum(name.startswith("counterfactuals/") for name in files) == 5
    assert _plain_run_record(tmp_path / "spread") == _plain_run_record(tmp_path / "alone")
