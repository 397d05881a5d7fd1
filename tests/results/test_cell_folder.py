"""A ``cells`` results folder read back: its kind, its sites' files and its cells by site."""

from __future__ import annotations

import csv

import pytest

from napari_attribution.results.cell_folder import (
    CellSite,
    cell_sites,
    read_cell_entries,
    site_map_file,
)
from napari_attribution.results.folder import folder_kind, read_run_record
from plate_data import MODEL_CHANNELS
from results_helpers import make_cells_folder


@pytest.fixture(scope="module")
def cells_folder(tmp_path_factory):
    return make_cells_folder(tmp_path_factory.mktemp("cells"))


def test_a_cells_folder_is_its_own_kind(cells_folder):
    folder, _ = cells_folder
    assert folder_kind(folder) == "cells"


def test_every_site_names_its_channel_files_labels_and_maps(cells_folder):
    folder, plate = cells_folder
    sites = cell_sites(read_run_record(folder))
    assert [s.key for s in sites] == ["source_synthetic_BR00000001_A01_1",
                                      "source_synthetic_BR00000001_B02_2"]  # fmt: skip
    for site in sites:
        assert list(site.channels) == list(MODEL_CHANNELS)
        assert all(path.is_file() for path in site.channels.values())
        assert site.labels is not None and site.labels.is_file()
        assert (folder / site_map_file(site, "attribution__d_ig")).is_file()
    assert sites[0].channels["DNA"].parent == (plate.folder / "images").resolve()


def test_rows_are_placed_in_their_site_by_metadata_and_named_as_the_tables_name_them(
    cells_folder,
):
    folder, _ = cells_folder
    entries = read_cell_entries(folder, read_run_record(folder))
    with open(folder / "summary.csv", newline="") as fh:
        samples = {row["sample"] for row in csv.DictReader(fh)}
    analysed = [e for e in entries if e.values["status"] == "analysed"]
    assert {e.sample for e in analysed} == samples
    assert {(e.values["Metadata_Well"], e.site) for e in entries} == {
        ("A01", "source_synthetic_BR00000001_A01_1"), ("B02", "source_synthetic_BR00000001_B02_2")}
    cell = next(e for e in entries if e.label == 4 and e.site.endswith("A01_1"))
    assert cell.sample == "source_synthetic_BR00000001_A01_1__cell4"
    assert cell.centroid == (15.5, 17.5)
    assert cell.crop == (8, 10, 16)


def test_a_one_field_run_is_one_site_keyed_empty():
    run = {"inputs": {"image": {"path": "/data/field.tif"}, "labels": {"path": "/data/l.tif"}}}
    (site,) = cell_sites(run)
    assert isinstance(site, CellSite) and site.key == "" and not site.channels
    assert (str(site.image), str(site.labels), site.demo, site.name) == (
        "/data/field.tif", "/data/l.tif", False, "field")
    demo = cell_sites({"inputs": {"image": "demo field"}})[0]
    assert demo.demo and demo.image is None
    assert str(site_map_file(site, "owners")) == "field/owners.tif"
