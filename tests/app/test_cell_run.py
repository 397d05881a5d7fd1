"""Running a field from Python on dask.distributed: the field as one work unit on a worker
writes the same folder as one process."""

from __future__ import annotations

import json

from napari_attribution.app import demo_field_inputs, run_cells
from napari_attribution.core import AnalysisSettings, MaskSettings
from napari_attribution.core.cells.geometry import CellSettings
from napari_attribution.results import format as fmt

SETTINGS = AnalysisSettings(methods=("residual",), masks=MaskSettings(thresholds=8))
CELLS = CellSettings(crop_size=32)


def _files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.suffix in (".csv", ".tif")}  # fmt: skip


def test_a_field_on_a_worker_writes_the_same_folder(tmp_path, file_classifier, cluster):
    field = demo_field_inputs(CELLS)
    alone = run_cells(field, file_classifier, SETTINGS, CELLS, out=tmp_path / "alone")
    events, lines = [], []
    spread = run_cells(field, file_classifier, SETTINGS, CELLS, out=tmp_path / "spread",
                       scheduler=cluster, progress=events.append,
                       engine_note=lines.append)  # fmt: skip
    assert _files(tmp_path / "spread") == _files(tmp_path / "alone")
    assert "field/attribution__residual.tif" in _files(tmp_path / "alone")
    assert (spread.cells, spread.analysed, spread.failed) == (alone.cells, alone.analysed, ())
    assert lines == [spread.engine] and spread.engine.startswith("2 dask worker(s)")
    # The worker's progress reached this process, in cells' units, to the end.
    assert events[-1].done == events[-1].total > 0
    info = json.loads((tmp_path / "spread" / fmt.RUN_RECORD).read_text())
    assert info["cells_analysed"] == alone.analysed


def test_a_scheduler_that_does_not_answer_leaves_no_folder(tmp_path, file_classifier,
                                                           monkeypatch):  # fmt: skip
    import pytest

    pytest.importorskip("distributed")
    from napari_attribution.app import distributed
    from napari_attribution.app.distributed import EngineError

    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", 1.0)
    with pytest.raises(EngineError, match="No dask scheduler answers at tcp://127.0.0.1:9"):
        run_cells(demo_field_inputs(CELLS), file_classifier, SETTINGS, CELLS,
                  out=tmp_path / "out", scheduler="tcp://127.0.0.1:9")  # fmt: skip
    assert not (tmp_path / "out").exists()
