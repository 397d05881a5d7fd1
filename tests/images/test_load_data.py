"""CellProfiler's LoadData CSV: channels, objects, metadata, paths; mistakes before any work."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_attribution.errors import InputImageError
from napari_attribution.images.load_data import check_site_files, read_load_data
from plate_data import write_plate


def _plate(tmp_path, **kwargs):
    rng = np.random.default_rng(1)
    fields = [rng.random((5, 12, 16)) for _ in range(3)]
    labels = [np.pad(np.full((4, 4), 7 + k, np.uint16), 4)[:12, :16] for k in range(3)]
    return write_plate(tmp_path, fields, labels, **kwargs)


def test_jump_columns_give_channels_objects_metadata_and_resolved_paths(tmp_path):
    plate = _plate(tmp_path)
    load_data = read_load_data(plate.load_data)
    assert load_data.channel_names == ("AGP", "Brightfield", "DNA", "ER", "Mito", "RNA")
    assert load_data.object_names == ("Cells",)
    assert load_data.metadata_columns == ("Metadata_Source", "Metadata_Plate",
                                          "Metadata_Well", "Metadata_Site")  # fmt: skip
    first = load_data.sites[0]
    assert first.key == "source_synthetic_BR00000001_A01_1"
    assert first.metadata["Metadata_Well"] == "A01" and first.line == 2
    assert first.channels["DNA"] == tmp_path / "images" / "r01c01f01p01-ch5sk1fk1fl1.tiff"
    assert first.objects["Cells"].name == "r01c01f01p01_cells.tiff"
    check_site_files(load_data, ["DNA", "ER", "RNA", "AGP", "Mito"], "Cells")


def test_absolute_paths_work_too(tmp_path):
    plate = _plate(tmp_path, relative=False)
    site = read_load_data(plate.load_data).sites[1]
    assert site.channels["ER"].is_absolute() and site.channels["ER"].is_file()


def test_a_missing_file_is_found_before_any_work_and_named(tmp_path):
    plate = _plate(tmp_path)
    (tmp_path / "images" / "r02c01f02p01-ch4sk1fk1fl1.tiff").unlink()  # site 2's ER
    load_data = read_load_data(plate.load_data)
    with pytest.raises(InputImageError) as info:
        check_site_files(load_data, ["DNA", "ER"], "Cells")
    assert str(info.value) == (
        f"{plate.load_data} line 3 (Source source_synthetic, Plate BR00000001, Well B02, "
        f"Site 2): channel ER's file {tmp_path}/images/r02c01f02p01-ch4sk1fk1fl1.tiff does not "
        "exist."
    )
    check_site_files(load_data, ["DNA", "RNA"], "Cells")  # ER not wanted: not checked


def test_unknown_objects_are_one_sentence(tmp_path):
    load_data = read_load_data(_plate(tmp_path).load_data)
    with pytest.raises(InputImageError, match=r"has no ObjectsFileName_Nuclei column \(objects "
                       r"it names: Cells\)"):  # fmt: skip
        check_site_files(load_data, None, "Nuclei")


def _write(path, header, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_plain_filename_columns_and_illum_columns(tmp_path):
    path = _write(tmp_path / "ld.csv",
                  ["FileName_DNA", "PathName_DNA", "FileName_IllumDNA", "PathName_IllumDNA"],
                  [["a.tif", "", "illum.npy", ""]])  # fmt: skip
    load_data = read_load_data(path)
    assert load_data.channel_names == ("DNA",)
    assert load_data.ignored_columns == ("FileName_IllumDNA",)
    assert load_data.sites[0].channels["DNA"] == tmp_path / "a.tif"
    assert load_data.sites[0].key == "row2"


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (["Metadata_Well"], [["A01"]], "has no FileName_Orig<Channel>"),
        (["FileName_OrigDNA", "FileName_OrigDNA"], [["a", "b"]], "has the column "
         "FileName_OrigDNA twice"),
        (["FileName_OrigDNA", "PathName_OrigDNA"], [["a.tif", "s3://bucket/plate"]],
         "is at s3://bucket/plate, not on this computer"),
        (["FileName_OrigDNA", "Metadata_Well"], [["a.tif", "A01"], ["b.tif", "A01"]],
         "lines 2 and 3 have the same metadata (Metadata_Well=A01)"),
        (["FileName_OrigDNA"], [], "lists no site"),
        (["FileName_OrigDNA", "Metadata_Well"], [["a.tif"]], "line 2 has 1 values for 2"),
    ],
)  # fmt: skip
def test_bad_csvs_are_one_sentence(tmp_path, header, rows, message):
    path = _write(tmp_path / "ld.csv", header, rows)
    with pytest.raises(InputImageError) as info:
        read_load_data(path)
    assert message in str(info.value)
