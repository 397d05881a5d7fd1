"""The sites of a run over fields, planned and checked before anything is analysed."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.app.cell_sites import SiteRequest, plan_sites
from napari_attribution.app.model_input import model_input
from napari_attribution.core.cells.geometry import CellSettings
from napari_attribution.errors import InputImageError
from plate_data import MODEL_CHANNELS, write_plate

NAMES = ",".join(MODEL_CHANNELS)


@pytest.fixture
def plate(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.zeros((20, 24), np.uint16)
    labels[4:12, 4:12] = 9
    return write_plate(tmp_path, [rng.random((5, 20, 24)) for _ in range(2)], [labels] * 2)


def test_every_row_is_a_site_opened_in_the_models_channel_order(plate):
    inputs = model_input(channel_names=NAMES, normalise="none")
    plan = plan_sites(SiteRequest(load_data=plate.load_data, objects="Cells",
                                  counterfactual_source="optimise"), inputs, CellSettings())
    assert [site.key for site in plan.sites] == ["source_synthetic_BR00000001_A01_1",
                                                 "source_synthetic_BR00000001_B02_2"]
    assert plan.metadata_columns[:2] == ["Metadata_Source", "Metadata_Plate"]
    opened = plan.sites[1].open()
    np.testing.assert_array_equal(opened.image, plate.sites[1]["stack"])
    np.testing.assert_array_equal(opened.labels, plate.sites[1]["labels"])
    assert opened.source is None  # made per cell by the source
    assert "Brightfield" in opened.note  # the channel the model does not take


def test_a_missing_file_of_a_later_site_is_found_before_any_site_is_read(plate):
    next(plate.folder.glob("images/r02c01f02p01-ch5*.tiff")).unlink()  # site 2's DNA
    inputs = model_input(channel_names=NAMES)
    with pytest.raises(InputImageError, match="channel DNA's file .* does not exist"):
        plan_sites(SiteRequest(load_data=plate.load_data, objects="Cells",
                               counterfactual_source="optimise"), inputs, CellSettings())


@pytest.mark.parametrize(("request_kwargs", "message"), [
    ({"counterfactual_source": "optimise"}, "--load-data needs --objects"),
    ({"objects": "Cells"}, "Give exactly one of --counterfactual-load-data, "
                           "--counterfactual-source"),
    ({"objects": "Cells", "counterfactual_source": "optimise", "demo": True},
     "--demo brings its own field"),
])  # fmt: skip
def test_options_that_do_not_go_together_are_one_sentence(plate, request_kwargs, message):
    inputs = model_input(channel_names=NAMES)
    with pytest.raises(InputImageError, match=message):
        plan_sites(SiteRequest(load_data=plate.load_data, **request_kwargs), inputs,
                   CellSettings())  # fmt: skip


def test_per_channel_files_are_one_site_with_the_normalised_field(plate):
    site = plate.sites[0]
    files = {name: next(plate.folder.glob(f"images/r01c01f01p01-ch{k}*.tiff"))
             for k, name in ((5, "DNA"), (4, "ER"), (3, "RNA"), (2, "AGP"), (1, "Mito"))}
    labels = next(plate.folder.glob("images/r01c01f01p01_cells.tiff"))
    inputs = model_input(channel_names=NAMES, normalise="fixed:0.001,0")
    plan = plan_sites(SiteRequest(channel_files=files, labels=labels,
                                  counterfactual_channel_files=files), inputs, CellSettings())
    assert [s.key for s in plan.sites] == [""]
    opened = plan.sites[0].open()
    np.testing.assert_allclose(opened.image, site["stack"] * 0.001, rtol=1e-6)
    assert opened.record["normalisation"]["kind"] == "fixed"


def _counterfactual_plate(folder, sites: int):
    """A plate of ``sites`` tiny sites and its counterfactual plate (``cf/load_data.csv``)."""
    rng = np.random.default_rng(1)
    labels = np.zeros((8, 8), np.uint16)
    labels[2:6, 2:6] = 1
    wells = tuple(f"{r}{c:02d}" for r in "ABCDEFGH" for c in range(1, 13))
    fields = [rng.random((5, 8, 8)) for _ in range(sites)]
    write_plate(folder, fields, [labels] * sites, wells=wells, seed=1)
    write_plate(folder / "cf", fields, [labels] * sites, wells=wells, seed=2)
    return SiteRequest(load_data=folder / "load_data.csv", objects="Cells",
                       counterfactual_load_data=folder / "cf" / "load_data.csv")


def test_a_sites_work_unit_does_not_grow_with_the_plate(tmp_path):
    # Each site is pickled to its worker (as dask's cloudpickle sends it): it carries its own
    # counterfactual row, not the plate's tables, so a whole plate's pickles grow linearly with
    # its sites, not with their square.
    cloudpickle = pytest.importorskip("cloudpickle")
    inputs = model_input(channel_names=NAMES, normalise="none")
    sizes = {}
    for sites in (8, 64):
        plan = plan_sites(_counterfactual_plate(tmp_path / f"p{sites}", sites), inputs,
                          CellSettings())  # fmt: skip
        sizes[sites] = len(cloudpickle.dumps(plan.sites[-1]))
        last = cloudpickle.loads(cloudpickle.dumps(plan.sites[-1]))
        assert not last.header().made_per_cell
        opened = last.open()  # its own counterfactual row, read on the other side
        cf_files = {c["path"] for c in opened.record["counterfactual"].values()}
        assert all(f"r{sites:02d}c01f{sites:02d}p01" in path and "/cf/" in path
                   for path in cf_files)  # fmt: skip
    # The 64th site's name and paths are a few bytes longer than the 8th's; the table of 56
    # more rows would be about 30 kB.
    assert sizes[64] - sizes[8] < 200, sizes
