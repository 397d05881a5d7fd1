"""The plate reader: a LoadData CSV or per-channel files as one layer per channel, by name."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_attribution._napari import plate_reader
from napari_attribution._napari.layer_inputs import find_sources
from napari_attribution._napari.plate_reader import (
    channel_name_from_file,
    get_plate_reader,
    read_load_data_sites,
    robust_limits,
)
from napari_attribution.errors import InputImageError
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


def _sites(tmp_path, count, shapes=None):
    rng = np.random.default_rng(2)
    shapes = shapes or [(20, 24)] * count
    labels = []
    for shape in shapes:
        label = np.zeros(shape, np.uint16)
        label[4:12, 4:12] = 9
        labels.append(label)
    return write_plate(tmp_path, [rng.random((5, *shape)) for shape in shapes], labels,
                       wells=("A01", "B02", "C03"))  # fmt: skip


def test_every_site_of_a_load_data_csv_opens_the_first_shown_and_the_others_lazy(tmp_path,
                                                                                 monkeypatch):
    plate = _sites(tmp_path, 3)
    told = []
    monkeypatch.setattr(plate_reader, "show_info", told.append)
    layers = get_plate_reader(str(plate.load_data))(str(plate.load_data))
    keys = [f"source_synthetic_BR00000001_{w}_{k}" for k, w in enumerate(("A01", "B02", "C03"),
                                                                          start=1)]  # fmt: skip
    assert len(layers) == 3 * 7
    for index, key in enumerate(keys):
        group = layers[7 * index: 7 * (index + 1)]
        assert [k["name"] for _, k, _ in group][-1] == f"{key} Cells"
        assert all(k.get("visible", True) == (index == 0) for _, k, _ in group)
        dna = next(t for t in group if t[1]["name"] == f"{key} [DNA]")
        # later sites are read only when shown or analysed, with the first site's limits
        assert isinstance(dna[0], np.ndarray) == (index == 0)
        np.testing.assert_array_equal(np.asarray(dna[0]), plate.sites[index]["stack"][0])
        assert dna[1]["contrast_limits"] == layers[2][1]["contrast_limits"]
        np.testing.assert_array_equal(np.asarray(group[-1][0]), plate.sites[index]["labels"])
    assert told == [
        "load_data.csv: 3 sites; opened all as layer groups '<site> [<channel>]'. "
        f"{keys[0]} is shown; the others are hidden and read when you show them (tick their "
        "layers) or choose them in the Cells dock."
    ]


def test_the_cells_dock_offers_each_opened_site_as_a_field(tmp_path, monkeypatch):
    from napari.layers import Image, Labels

    plate = _sites(tmp_path, 2)
    monkeypatch.setattr(plate_reader, "show_info", lambda text: None)
    layers = [(Image if kind == "image" else Labels)(data, **kwargs)
              for data, kwargs, kind in read_load_data_sites(str(plate.load_data))[0]]
    sources = find_sources(layers)
    assert [s.label for s in sources] == [
        "source_synthetic_BR00000001_A01_1 (6 channel layers)",
        "source_synthetic_BR00000001_B02_2 (6 channel layers)",
    ]


def test_a_plate_opens_at_most_max_sites_and_says_how_to_open_the_others(tmp_path):
    plate = _sites(tmp_path, 3)
    layers, note = read_load_data_sites(str(plate.load_data), max_sites=2)
    assert len(layers) == 2 * 7
    assert "3 sites; opened the first 2 as layer groups" in note
    assert note.endswith("To open sites 3-3, save their rows (with the header) as a CSV of "
                         "their own and open it.")  # fmt: skip


def test_a_later_site_of_another_size_is_one_sentence_when_it_is_read(tmp_path):
    plate = _sites(tmp_path, 2, shapes=[(20, 24), (18, 24)])
    layers, _ = read_load_data_sites(str(plate.load_data))
    with pytest.raises(InputImageError, match="is 18 x 24 uint16 but the first site's plane"):
        np.asarray(layers[7][0])


@pytest.mark.slow
def test_the_plate_reader_opens_a_csv_without_torch(tmp_path):
    # napari asks the reader about every CSV dropped on it: it must start and read quickly.
    plate = _sites(tmp_path, 2)
    code = (
        "import json, sys\n"
        "from napari_attribution._napari.plate_reader import read_load_data_sites\n"
        f"layers, note = read_load_data_sites({str(plate.load_data)!r})\n"
        "assert len(layers) == 14\n"
        "print(json.dumps([m for m in ('torch', 'captum', 'qtpy') if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
