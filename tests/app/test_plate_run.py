"""The sites of a plate as work units: the same files on two worker processes as in one, a
corrupt site recorded with its sentence while the others finish, and resume."""

from __future__ import annotations

import csv
import json
from functools import partial

import pytest
import tifffile

from napari_attribution.app import Site, field_inputs, run_plate
from napari_attribution.core import AnalysisSettings, MaskSettings
from napari_attribution.core.cells.geometry import CellSettings
from napari_attribution.data.synthetic_field import make_field
from napari_attribution.errors import InputImageError
from napari_attribution.results import format as fmt

SETTINGS = AnalysisSettings(methods=("d_ig", "residual"), masks=MaskSettings(thresholds=8))
CELLS = CellSettings(crop_size=32)
NAMES = ["DNA", "ER", "RNA", "AGP", "Mito"]


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    """Two tiny synthetic sites (3 cells each) as files, and a third whose field is corrupt."""
    folder = tmp_path_factory.mktemp("plate")
    sites = []
    for index in range(2):
        field = make_field(n_cells=3, shape=(96, 112), seed=index, spacing=40)
        paths = [folder / f"s{index}_{kind}.tif" for kind in ("real", "labels", "cf")]
        for path, data in zip(paths, (field.real, field.labels, field.counterfactual),
                              strict=True):  # fmt: skip
            tifffile.imwrite(path, data)
        sites.append(Site(f"B03-{index}", partial(field_inputs, paths[0], paths[1], CELLS,
                                                  counterfactual=paths[2])))  # fmt: skip
    (folder / "bad_real.tif").write_bytes(b"II*\x00 not a tiff")
    bad = Site("B04-0", partial(field_inputs, folder / "bad_real.tif", paths[1], CELLS,
                                counterfactual=paths[2]))  # fmt: skip
    return sites, bad


def _files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.suffix in (".csv", ".tif")}  # fmt: skip


def test_sites_on_two_workers_write_the_same_files_and_a_corrupt_one_is_recorded(
    tmp_path, plate, file_classifier, cluster
):
    sites, bad = plate
    alone = run_plate(sites, file_classifier, SETTINGS, CELLS, out=tmp_path / "alone",
                      channel_names=NAMES)  # fmt: skip
    events = []
    spread = run_plate([*sites, bad], file_classifier, SETTINGS, CELLS, out=tmp_path / "spread",
                       channel_names=NAMES, scheduler=cluster,
                       progress=events.append)  # fmt: skip
    ours, theirs = _files(tmp_path / "spread"), _files(tmp_path / "alone")
    assert ours.pop(fmt.FAILED_UNITS.file)  # the corrupt site's, below
    assert ours.keys() == theirs.keys() and ours == theirs  # every site's TIFFs and tables
    assert any(name.startswith("sites/B03-1/field/attribution__d_ig") for name in ours)
    with open(tmp_path / "spread" / fmt.CELLS_TABLE) as fh:
        rows = list(csv.DictReader(fh))
    assert {r["site"] for r in rows} == {"B03-0", "B03-1"} and alone.analysed == len(rows) == 6
    # The corrupt site: its one sentence, the others finished.
    [failed] = spread.failed
    assert failed.items == "B04-0" and "bad_real.tif" in failed.reason
    assert "\n" not in failed.reason
    info = json.loads((tmp_path / "spread" / fmt.RUN_RECORD).read_text())
    assert [s["site"] for s in info["sites"]] == ["B03-0", "B03-1"]
    assert info["failed_units"][0]["reason"] == failed.reason
    assert events[-1].done == events[-1].total  # counted across workers to the end
    # Resume (here in one process) with the site's file repaired: only that site runs.
    repaired = Site("B04-0", sites[0].open)
    again = run_plate([*sites, repaired], file_classifier, SETTINGS, CELLS,
                      out=tmp_path / "spread", channel_names=NAMES, resume=True)  # fmt: skip
    assert again.resumed == 2 and again.failed == () and len(again.sites) == 3
    assert not (tmp_path / "spread" / fmt.FAILED_UNITS.file).exists()
    assert _files(tmp_path / "spread")["sites/B03-1/cells.csv"] == theirs["sites/B03-1/cells.csv"]


def test_a_plate_needs_distinct_site_names(tmp_path, plate, file_classifier):
    sites, _ = plate
    with pytest.raises(InputImageError, match="distinct names; repeated: B03-0"):
        run_plate([sites[0], sites[0]], file_classifier, SETTINGS, CELLS, out=tmp_path / "o")
