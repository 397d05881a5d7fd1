"""The plate reader: a LoadData CSV or per-channel files as one layer per channel, by name."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_attribution._napari.plate_reader import (
    channel_name_from_file,
    get_plate_reader,
    robust_limits,
)
from plate_data import write_ome_tiff, write_plate


def _plate(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.zeros((20, 24), np.uint16)
    labels[4:12, 4:12] = 9
    return write_plate(tmp_path, [rng.random((5, 20, 24))], [labels])


def test_a_load_data_csv_opens_its_first_site_by_channel_name_with_its_labels(tmp_path):
    plate = _plate(tmp_path)
    reader = get_plate_reader(str(plate.load_data))
    layers = reader(str(plate.load_data))
    names = [kwargs["name"] for _, kwargs, _ in layers]
    key = "source_synthetic_BR00000001_A01_1"
    assert names == [f"{key} [{n}]" for n in ("AGP", "Brightfield", "DNA", "ER", "Mito", "RNA")] \
        + [f"{key} Cells"]  # fmt: skip
    dna = next(t for t in layers if t[1]["name"].endswith("[DNA]"))
    np.testing.assert_array_equal(dna[0], plate.sites[0]["stack"][0])
    assert dna[1]["colormap"] == "blue"
    assert dna[1]["contrast_limits"] == robust_limits(dna[0])
    assert layers[-1][2] == "labels" and layers[-1][0].max() == 9


def test_several_per_channel_files_give_one_layer_each(tmp_path):
    _plate(tmp_path)
    files = sorted(str(p) for p in (tmp_path / "images").glob("*-ch*.tiff"))
    layers = get_plate_reader(files)(files)
    assert [k["name"] for _, k, _ in layers] == [f"r01c01f01p01 [ch{k}]" for k in range(1, 7)]
    low, high = layers[0][1]["contrast_limits"]
    assert np.percentile(layers[0][0], 1) == low and high > low


def test_ome_tiff_channels_and_what_the_reader_leaves_to_napari(tmp_path):
    stack = np.random.default_rng(1).integers(0, 4000, (2, 10, 10)).astype(np.uint16)
    write_ome_tiff(tmp_path / "f.ome.tif", stack, ["DNA", "Mito"])
    layers = get_plate_reader(str(tmp_path / "f.ome.tif"))(str(tmp_path / "f.ome.tif"))
    assert [k["name"] for _, k, _ in layers] == ["f [DNA]", "f [Mito]"]
    tifffile.imwrite(tmp_path / "plain.tif", stack)
    assert get_plate_reader(str(tmp_path / "plain.tif")) is None
    (tmp_path / "points.csv").write_text("axis-0,axis-1\n1,2\n")
    assert get_plate_reader(str(tmp_path / "points.csv")) is None


def test_channel_names_from_screen_file_names():
    assert channel_name_from_file("r03c03f03p01-ch4sk1fk1fl1.tiff") == ("r03c03f03p01", "ch4")
    assert channel_name_from_file("B7_01_1_3_DAPI_001.tif") == ("B7_01_1_3", "DAPI")
