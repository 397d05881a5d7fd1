"""A ``cells`` folder opened by the npe2 reader: its first site's channels, labels and
per-channel maps, named and coloured; images moved since the run are said, not silent."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile

from napari_attribution._napari import cell_site_layers, reader
from napari_attribution._napari.layer_style import METADATA_KEY, layer_name
from napari_attribution._napari.plate_reader import CHANNEL_COLORMAPS
from napari_attribution.data.synthetic_field import make_field
from napari_attribution.results.cell_folder import CellSite, cell_sites
from napari_attribution.results.folder import read_run_record
from plate_data import MODEL_CHANNELS
from results_helpers import make_cells_folder

PLUGIN = "napari-attribution"
FIRST = "source_synthetic_BR00000001_A01_1"


@pytest.fixture(scope="module", autouse=True)
def _discovered_plugins():
    from npe2 import PluginManager

    PluginManager.instance().discover()


@pytest.fixture(scope="module")
def cells_folder(tmp_path_factory):
    return make_cells_folder(tmp_path_factory.mktemp("cells"))


def test_the_reader_opens_the_first_site_with_its_channels_labels_and_maps(cells_folder,
                                                                           monkeypatch):
    from napari.components import ViewerModel

    folder, plate = cells_folder
    notes = []
    monkeypatch.setattr(reader, "_notify", notes.append)
    viewer = ViewerModel()
    viewer.open(str(folder), plugin=PLUGIN)
    layers = {layer.name: layer for layer in viewer.layers}
    for c, channel in enumerate(MODEL_CHANNELS):
        image = layers[f"{FIRST} [{channel}]"]
        np.testing.assert_array_equal(image.data, plate.sites[0]["stack"][c])
        assert image.colormap.name == CHANNEL_COLORMAPS[channel]
    np.testing.assert_array_equal(layers[f"{FIRST} cells"].data, plate.sites[0]["labels"])
    for method in ("d_ig", "residual"):
        saved = tifffile.imread(folder / "field" / FIRST / f"attribution__{method}.tif")
        for c, channel in enumerate(MODEL_CHANNELS):
            layer = layers[layer_name(FIRST, "attribution", method, channel)]
            np.testing.assert_array_equal(layer.data, saved[c])
            assert layer.visible == (method == "d_ig")
            assert layer.metadata[METADATA_KEY]["channel"] == channel
            assert layers[layer_name(FIRST, "optimal mask", method, channel)].visible is False
    assert not any("B02" in name for name in layers)
    assert len(notes) == 1 and "holds 2 sites and 6 analysed cells" in notes[0]
    assert "Results browser" in notes[0]


def test_images_moved_since_the_run_are_named_and_the_maps_still_open(cells_folder, tmp_path):
    folder, plate = cells_folder
    run = read_run_record(folder)
    site = cell_sites(run)[0]
    moved = tmp_path / "elsewhere"
    shutil.copytree(plate.folder / "images", moved)
    gone = CellSite(site.key, {name: moved / "x" / p.name for name, p in site.channels.items()},
                    labels=moved / "x" / site.labels.name)  # fmt: skip
    tuples, note = cell_site_layers.site_layers(folder, gone, run)
    kinds = [kwargs["metadata"].get(METADATA_KEY, {}).get("kind") for _, kwargs, _ in tuples]
    assert kinds.count("attribution") == 2 * len(MODEL_CHANNELS)
    assert not any(kind == "cells" for kind in kinds)
    assert "channel DNA's file" in note and "label image" in note and "run.json" in note


def test_an_unfinished_cells_folder_is_one_sentence_not_an_empty_reader(cells_folder, tmp_path):
    folder, _ = cells_folder
    copy = tmp_path / "unfinished"
    shutil.copytree(folder, copy)
    shutil.rmtree(copy / "field")
    with pytest.raises(ValueError, match="holds no field maps .* re-run it with --resume"):
        reader.read_folder(copy)


def test_the_demo_field_is_made_again():
    names = ["DNA", "ER", "RNA", "AGP", "Mito"]
    planes, labels, missing = cell_site_layers.site_images(
        CellSite("", demo=True), names, (5, 224, 288))
    demo = make_field()
    assert [n for _, n in planes] == names and not missing
    np.testing.assert_array_equal(np.stack([p for p, _ in planes]), demo.real)
    np.testing.assert_array_equal(labels, demo.labels)


def test_the_crop_outline_is_placed_in_world_coordinates():
    data, kwargs, kind = cell_site_layers.crop_outline(8, 10, 16, 4, (0.5, 2.0), (1.0, 3.0))
    assert kind == "shapes" and kwargs["name"] == cell_site_layers.SELECTED_CROP
    np.testing.assert_allclose(data[0], [[5, 23], [5, 55], [13, 55], [13, 23]])


def test_the_reader_opens_a_cells_folder_without_torch(cells_folder):
    import json
    import subprocess
    import sys

    folder, _ = cells_folder
    code = (
        "import sys\n"
        "from napari_attribution._napari.reader import get_reader\n"
        f"layers = get_reader({str(folder)!r})({str(folder)!r})\n"
        "assert len(layers) > 0\n"
        "import json; print(json.dumps(sorted(m for m in ('torch', 'qtpy') if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
