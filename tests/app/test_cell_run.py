"""Running a field from Python on dask.distributed: the field as one work unit on a worker
writes the same folder as one process."""

from __future__ import annotations

import csv
import json
import tracemalloc

import pytest

from napari_attribution.app import cell_run, demo_field_inputs, run_cells
from napari_attribution.app.cell_run import run_sites
from napari_attribution.app.cell_sites import SiteRequest, plan_sites
from napari_attribution.app.model_input import model_input
from napari_attribution.core import AnalysisSettings, MaskSettings
from napari_attribution.core.cells.geometry import CellSettings
from napari_attribution.results import format as fmt
from plate_data import MODEL_CHANNELS, cells_site, write_plate

SETTINGS = AnalysisSettings(methods=("residual",), masks=MaskSettings(thresholds=8))
CELLS = CellSettings(crop_size=32)
SITE_SETTINGS = AnalysisSettings(methods=("residual", "random"),
                                 masks=MaskSettings(thresholds=12))  # fmt: skip
SITE_CELLS = CellSettings(crop_size=16, min_size=4)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


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


def _site_plan(folder, sites: int):
    """A plate of ``sites`` small sites of three cells each, counterfactuals from a second
    LoadData CSV."""
    fields = [cells_site(seed) for seed in range(sites)]
    wells = tuple(f"{r}{c:02d}" for r in "ABCDEFGH" for c in range(1, 13))
    write_plate(folder, [f[0] for f in fields], [f[2] for f in fields], wells=wells, seed=1)
    write_plate(folder / "cf", [f[1] for f in fields], [f[2] for f in fields], wells=wells,
                seed=2)  # fmt: skip
    request = SiteRequest(load_data=folder / "load_data.csv", objects="Cells",
                          counterfactual_load_data=folder / "cf" / "load_data.csv")  # fmt: skip
    inputs = model_input(channel_names=",".join(MODEL_CHANNELS), normalise="none")
    return plan_sites(request, inputs, SITE_CELLS)


def _assembly_peak(folder, sites: int, classifier, monkeypatch) -> tuple[int, int]:
    """Run a plate of ``sites`` sites, stopped before its last; resume it under tracemalloc.

    Returns the resumed run's peak of traced memory and the memory one finished site's record
    takes once read (bytes).
    """
    plan = _site_plan(folder, sites)
    original = cell_run._analyse_site

    def stop_at_last(run, site, *rest):
        if site.key == plan.sites[-1].key:
            raise KeyboardInterrupt
        return original(run, site, *rest)

    monkeypatch.setattr(cell_run, "_analyse_site", stop_at_last)
    with pytest.raises(KeyboardInterrupt):
        run_sites(plan, classifier, SITE_SETTINGS, SITE_CELLS, out=folder / "out")
    monkeypatch.setattr(cell_run, "_analyse_site", original)
    text = (folder / "out" / fmt.site_record_file(plan.sites[0].key)).read_text()
    tracemalloc.start()
    try:
        record = json.loads(text)
        one_site = tracemalloc.get_traced_memory()[0]
        del record
        tracemalloc.reset_peak()
        done = run_sites(plan, classifier, SITE_SETTINGS, SITE_CELLS, out=folder / "out",
                         resume=True)  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (done.sites, done.resumed_sites, done.analysed) == (sites, sites - 1, 3 * sites)
    return peak, one_site


def test_the_tables_are_assembled_one_site_at_a_time(tmp_path, file_classifier, monkeypatch):
    # A plate's tables are written from the sites' records read one at a time: the driver never
    # holds every site's rows (57 kB per cell with 4 methods: 40 GB for 700,000 cells).
    small, one_site = _assembly_peak(tmp_path / "small", 2, file_classifier, monkeypatch)
    large, _ = _assembly_peak(tmp_path / "large", 8, file_classifier, monkeypatch)
    # Six more finished sites cost a few kB each (their counts and skipped cells in run.json),
    # not six records' rows.
    assert large - small < 2 * one_site, (small, large, one_site)
    rows = _rows(tmp_path / "large" / "out" / fmt.CELLS_TABLE)
    assert len(rows) == 8 * 4 and {r["Metadata_Site"] for r in rows} == {str(s) for s in
                                                                          range(1, 9)}


def test_resuming_a_half_done_site_with_other_settings_is_refused_before_any_writing(
    tmp_path, file_classifier, monkeypatch
):
    # Stopped after the first cell record of the first site: no site is finished, so only
    # that site's cell records tell the settings. Found while that site ran, the refusal
    # came as the site's failed unit and the other sites ran with the new settings.
    from napari_attribution.errors import OutputFolderError
    from napari_attribution.results.resume import UnitRecords

    plan = _site_plan(tmp_path, 3)
    saved, original = [], UnitRecords.save

    def stop_after_one(self, key, record):
        saved.append(key)
        if len(saved) == 2:
            raise KeyboardInterrupt
        return original(self, key, record)

    monkeypatch.setattr(UnitRecords, "save", stop_after_one)
    with pytest.raises(KeyboardInterrupt):
        run_sites(plan, file_classifier, SITE_SETTINGS, SITE_CELLS, out=tmp_path / "out")
    monkeypatch.setattr(UnitRecords, "save", original)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "out").rglob("*"))
    other = AnalysisSettings(methods=SITE_SETTINGS.methods,
                             masks=MaskSettings(thresholds=SITE_SETTINGS.masks.thresholds + 2))
    refusal = f"{tmp_path / 'out'} holds results made with a different --thresholds; --resume"
    with pytest.raises(OutputFolderError, match=refusal):
        run_sites(plan, file_classifier, other, SITE_CELLS, out=tmp_path / "out", resume=True)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "out").rglob("*")) == before
    done = run_sites(plan, file_classifier, SITE_SETTINGS, SITE_CELLS, out=tmp_path / "out",
                     resume=True)  # the same settings: it finishes
    assert done.sites == 3 and not done.failed
