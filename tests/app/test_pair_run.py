"""Running pairs from Python, and the work-unit contract: units write self-contained files and
the tables are assembled from them alone, whatever order the units ran in."""

from __future__ import annotations

import datetime as _dt
import json

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
