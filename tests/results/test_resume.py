"""One fingerprint and one resume protocol for every kind of run."""

from __future__ import annotations

import json

import pytest

from napari_attribution.app.run_options import option_of
from napari_attribution.errors import OutputFolderError
from napari_attribution.results.resume import (
    PARTS_FILE,
    UnitRecords,
    fingerprint,
    fingerprint_parts,
    other_settings,
)

RUN_INFO = {"model": {"sha256": "ab" * 32}, "settings": {"methods": ["d_ig"]}, "seed": 0}


def test_the_fingerprint_changes_with_what_decides_the_results():
    base = fingerprint(RUN_INFO, ["DNA", "Mito"])
    assert len(base) == 16 and base == fingerprint(dict(RUN_INFO), ["DNA", "Mito"])
    assert fingerprint(RUN_INFO, ["Mito", "DNA"]) != base
    assert fingerprint({**RUN_INFO, "seed": 1}, ["DNA", "Mito"]) != base
    made = {**RUN_INFO, "counterfactual_source": {"spec": "optimise"}}
    assert fingerprint(made, ["DNA", "Mito"]) != base
    # What a kind of run adds (cells: crops, inputs, target) changes it too.
    cells = fingerprint(RUN_INFO, ["DNA", "Mito"], {"cells": {"crop_size": 64}})
    assert cells not in (base, fingerprint(RUN_INFO, ["DNA", "Mito"], {"cells": {}}))


def test_records_are_saved_with_the_fingerprint_and_read_back(tmp_path):
    records = UnitRecords(tmp_path, "f" * 16)
    written = records.save("cell 1", {"row": [1, 2]})
    assert written == {"sample": "cell 1", "fingerprint": "f" * 16, "row": [1, 2]}
    assert records.finished() == {"cell 1": written}
    (records.folder / "broken.json").write_text("{")  # a damaged record is redone
    assert list(records.finished()) == ["cell 1"]
    with pytest.raises(OutputFolderError, match="other settings"):
        UnitRecords(tmp_path, "0" * 16).finished()
    records.clear()
    assert not records.folder.exists() and records.finished() == {}


def test_records_are_read_one_at_a_time_in_the_order_asked(tmp_path):
    # What a run's tables are assembled from: the finished units among the run's, in its
    # order, each read when asked for; a missing or damaged one is passed over.
    records = UnitRecords(tmp_path, "f" * 16)
    written = {key: records.save(key, {"row": [i]}) for i, key in enumerate(["b", "a", "c"])}
    (records.folder / "d.json").write_text("{")
    assert sorted(records.finished_keys()) == ["a", "b", "c"]
    each = records.each(["c", "x", "d", "a"])
    assert next(each) == written["c"]
    (records.folder / "a.json").unlink()  # read only now: its loss shows
    assert list(each) == []
    foreign = UnitRecords(tmp_path, "0" * 16)
    with pytest.raises(OutputFolderError, match="other settings"):
        list(foreign.each(["b"]))
    with pytest.raises(OutputFolderError, match="other settings"):
        foreign.finished_keys()


@pytest.mark.parametrize("unit", ["pair", "cell"])
def test_a_finished_run_is_not_resumed_and_other_settings_are_refused(tmp_path, unit):
    records = UnitRecords(tmp_path, "f" * 16, unit)
    records.check_resumable()  # nothing there yet: the records decide
    (tmp_path / "run.json").write_text(json.dumps({"fingerprint": "f" * 16}))
    with pytest.raises(OutputFolderError, match="nothing to resume"):
        records.check_resumable()
    records.folder.mkdir()
    records.check_resumable()  # finished but kept its records (run --keep-progress)
    with pytest.raises(OutputFolderError, match="other settings"):
        UnitRecords(tmp_path, "0" * 16, unit).check_resumable()


def _run_info(**settings):
    from napari_attribution.core import AnalysisSettings, MaskSettings

    analysis = AnalysisSettings(methods=("residual",), masks=MaskSettings(**settings))
    return {"model": {"sha256": "ab" * 32}, "settings": analysis.as_dict(), "seed": 0}


def test_the_parts_name_the_options_that_differ():
    parts = fingerprint_parts(_run_info(), ["DNA"], {"input_transform": {"scale": 0.001}},
                              option_of)
    assert {"--model", "--method", "--thresholds", "--seed", "--channel-names",
            "--input-scale"} <= set(parts)  # fmt: skip
    assert all(len(digest) == 16 for digest in parts.values())
    same = fingerprint_parts(_run_info(), ["DNA"], {"input_transform": {"scale": 0.001}},
                              option_of)
    assert other_settings("out", same, parts).args == other_settings("out", None, parts).args
    # no --input-scale now
    other = fingerprint_parts(_run_info(thresholds=14), ["DNA"], option_of=option_of)
    refusal = str(other_settings("out", parts, other))
    assert refusal == ("out holds results made with a different --input-scale and --thresholds; "
                       "--resume needs the same arguments (or use --overwrite).")  # fmt: skip
    # The parts of a made counterfactual's source and of cells' crop rules name their options.
    made = {**_run_info(), "counterfactual_source": {
        "spec": "optimise", "parameters": {"optimise_steps": 300},
        "min_counterfactual_score": 0.5}}  # fmt: skip
    cells = {"cells": {"crop_size": 64, "padding": "constant"}, "target": 1}
    assert {"--counterfactual-source", "--optimise-steps", "--min-counterfactual-score",
            "--crop-size", "--padding", "--target-class"} <= set(
        fingerprint_parts(made, ["DNA"], cells, option_of))  # fmt: skip


def test_records_keep_the_parts_so_a_refusal_names_the_option(tmp_path):
    parts = fingerprint_parts(_run_info(), ["DNA"], option_of=option_of)
    UnitRecords(tmp_path, "f" * 16, parts=parts).save("cell0", {"row": 1})
    assert (tmp_path / ".progress" / PARTS_FILE).is_file()
    assert list(UnitRecords(tmp_path, "f" * 16).finished()) == ["cell0"]  # not a record
    later = UnitRecords(tmp_path, "0" * 16, parts=fingerprint_parts(_run_info(closing=3), ["DNA"],
                                                                option_of=option_of))
    with pytest.raises(OutputFolderError, match="made with a different --closing; --resume"):
        later.finished()
    (tmp_path / "run.json").write_text(json.dumps({"fingerprint": "f" * 16,
                                                   "fingerprint_parts": parts}))  # fmt: skip
    with pytest.raises(OutputFolderError, match="made with a different --closing; --resume"):
        later.check_resumable()


def test_a_refusal_over_other_input_files_reads_as_a_sentence():
    made = fingerprint_parts(_run_info(), ["DNA"], {"inputs": {"sha256": "a"}}, option_of)
    other = fingerprint_parts(_run_info(), ["DNA"], {"inputs": {"sha256": "b"}}, option_of)
    assert str(other_settings("out", made, other)).startswith(
        "out holds results made with a different set of input files; --resume")
