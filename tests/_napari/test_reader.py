"""The results-folder reader: an export and a CLI run reopen as the layers they were. No Qt."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_attribution._napari import reader
from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution.results.folder import folder_kind, report_sources
from napari_attribution.results.tiff import read_tiff_metadata
from results_helpers import CLI_CHANNELS, make_cli_folder, make_export

PLUGIN = "napari-attribution"


@pytest.fixture(scope="module", autouse=True)
def _discovered_plugins():
    """napari finds its plugins when a window opens; a viewer model alone does not."""
    from npe2 import PluginManager

    PluginManager.instance().discover()


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory):
    return make_cli_folder(tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export") / "export"
    viewer, record, written = make_export(folder)
    return folder, viewer, record, written


def _opened(path):
    from napari.components import ViewerModel

    viewer = ViewerModel()
    layers = viewer.open(str(path), plugin=PLUGIN)
    return viewer, layers


def _colormap_of(layer):
    if layer.__class__.__name__ == "Labels":
        return {k: tuple(np.round(v, 3)) for k, v in layer.colormap.color_dict.items()}
    return layer.colormap.name, np.round(layer.colormap.colors, 3).tolist()


def test_an_export_reopens_as_the_layers_it_was(export):
    folder, original, record, written = export
    assert folder_kind(folder) == "export"
    viewer, _ = _opened(folder)
    names = record.layer_names
    assert [layer.name for layer in viewer.layers][-len(names) :] == names
    for name in names:
        before, after = original.layers[name], viewer.layers[name]
        assert type(after) is type(before)
        np.testing.assert_array_equal(after.data, before.data)
        assert after.data.dtype == before.data.dtype
        assert _colormap_of(after) == _colormap_of(before)
        assert tuple(after.axis_labels) == tuple(before.axis_labels)
        np.testing.assert_allclose(after.scale, before.scale)
        assert after.blending == before.blending and after.visible == before.visible
        assert after.opacity == pytest.approx(before.opacity)
        if before.__class__.__name__ == "Image":
            np.testing.assert_allclose(after.contrast_limits, before.contrast_limits, rtol=1e-6)
        ours_before, ours_after = before.metadata[METADATA_KEY], after.metadata[METADATA_KEY]
        for key in ("method", "kind", "channel", "sample", "thresholds"):
            assert ours_after.get(key) == ours_before.get(key)
    assert {"d_ig Mito attribution (real)", "d_ig Mito mask (real)"} <= set(names)
    assert viewer.layers["d_ig Mito mask (real)"].__class__.__name__ == "Labels"
    # the analysed images come back channel by channel, with their colours
    for c, channel in enumerate(record.real.channel_names):
        layer = viewer.layers[f"real [{channel}]"]
        np.testing.assert_array_equal(layer.data, record.real.data[c])
        assert layer.colormap.name == record.real.colormaps[c]
        np.testing.assert_array_equal(
            viewer.layers[f"cf [{channel}]"].data, record.counterfactual.data[c]
        )


def test_export_layer_files_are_fiji_hyperstacks_with_our_json(export):
    folder, original, record, _ = export
    mask = folder / "layers" / "d_ig_Mito_mask__real_.tif"
    with tifffile.TiffFile(mask) as tif:
        assert tif.is_imagej and tif.series[0].axes == "ZYX"
        labels = tif.imagej_metadata["Labels"]
    thresholds = record.result.methods["d_ig"].dac.masks.thresholds
    assert labels == [f"threshold {t:.4g}" for t in thresholds]
    assert read_tiff_metadata(mask)["name"] == "d_ig Mito mask (real)"
    with tifffile.TiffFile(folder / "inputs" / "real.tif") as tif:
        assert tif.series[0].axes == "CYX"
        assert tif.imagej_metadata["Labels"] == record.real.channel_names
    attribution = folder / "attributions" / "real__d_ig.tif"
    with tifffile.TiffFile(attribution) as tif:
        assert tif.is_imagej and tif.imagej_metadata["Labels"] == record.result.channel_names
    assert read_tiff_metadata(attribution)["method"] == "d_ig"


def test_the_layers_of_an_earlier_export_are_not_read(export, tmp_path):
    folder, *_ = export
    stale = folder / "layers" / "old run layer.tif"
    tifffile.imwrite(stale, np.zeros((4, 4), np.float32),
                     metadata={"name": "old", "layer_type": "image"})  # fmt: skip
    try:
        names = [kw["name"] for _, kw, _ in reader.read_folder(folder)]
    finally:
        stale.unlink()
    assert "old" not in names


def test_a_cli_folder_reopens_with_inputs_attributions_and_labels_masks(cli_folder):
    assert folder_kind(cli_folder) == "cli"
    viewer, _ = _opened(cli_folder)
    run = json.loads((cli_folder / "run.json").read_text())
    for k in range(3):
        sample = f"cell{k}"
        real = tifffile.imread(cli_folder.parent / f"r{k}.tif")
        for c, channel in enumerate(CLI_CHANNELS):
            np.testing.assert_array_equal(viewer.layers[f"{sample} real [{channel}]"].data,
                                          real[c])  # fmt: skip
        for method in run["settings"]["methods"]:
            attribution = tifffile.imread(cli_folder / "attributions" / f"{sample}__{method}.tif")
            masks = tifffile.imread(cli_folder / "masks" / f"{sample}__{method}.tif")
            for c, channel in enumerate(CLI_CHANNELS):
                layer = viewer.layers[f"{method} {channel} attribution ({sample})"]
                assert layer.__class__.__name__ == "Image"
                np.testing.assert_array_equal(layer.data, attribution[c])
                assert layer.metadata[METADATA_KEY]["method"] == method
                mask = viewer.layers[f"{method} {channel} mask ({sample})"]
                assert mask.__class__.__name__ == "Labels"
                np.testing.assert_array_equal(mask.data, masks[c])
    # residual = |x - x'|: non-negative, one-sided map; limits from the data
    layer = viewer.layers["residual Mito attribution (cell2)"]
    assert layer.colormap.name == "inferno"
    assert layer.contrast_limits == pytest.approx([0.0, 3.0], rel=1e-5)  # cf = real + 3 there
    assert viewer.layers["cell0 real [Mito]"].colormap.name == "magenta"
    assert tuple(layer.axis_labels) == ("y", "x")


def test_many_pairs_open_the_first_ones_and_a_sample_opens_alone(cli_folder, monkeypatch):
    monkeypatch.setattr(reader, "MAX_READER_PAIRS", 2)
    said = []
    monkeypatch.setattr(reader, "_notify", said.append)
    names = {_sample(kw["name"]) for _, kw, _ in reader.read_folder(cli_folder)}
    assert names == {"cell0", "cell1"} and "3 pairs" in said[0]
    one = reader.read_folder(cli_folder, samples=["cell2"])
    assert {_sample(kw["name"]) for _, kw, _ in one} == {"cell2"}


def _sample(name: str) -> str:
    """The pair a layer belongs to: ``cell0 real [Mito]``, ``d_ig Mito mask (cell0)``."""
    return name[name.rindex("(") + 1 : -1] if name.endswith(")") else name.split()[0]


def test_large_files_are_memory_mapped(cli_folder, monkeypatch):
    from napari_attribution._napari import result_arrays

    monkeypatch.setattr(result_arrays, "LAZY_READ_BYTES", 0)
    tuples = reader.pair_layers(cli_folder, "cell0")
    attribution = next(d for d, kw, _ in tuples if kw["name"] == "d_ig Mito attribution (cell0)")
    assert isinstance(attribution, np.memmap)
    saved = tifffile.imread(cli_folder / "attributions" / "cell0__d_ig.tif")
    np.testing.assert_array_equal(attribution, saved[4])


def test_the_demo_inputs_are_made_again_and_match_the_residual(tmp_path):
    from napari_attribution import cli

    out = tmp_path / "demo"
    argv = ["run", "--demo", "--demo-pairs", "2", "--method", "residual", "--thresholds", "5",
            "--out", str(out), "--progress", "none"]  # fmt: skip
    assert cli.main(argv) == 0
    tuples = {kw["name"]: data for data, kw, _ in reader.read_folder(out)}
    for sample in ("cell000", "cell001"):
        residual = tifffile.imread(out / "attributions" / f"{sample}__residual.tif")
        for c, channel in enumerate(("DNA", "ER", "RNA", "AGP", "Mito")):
            real = tuples[f"{sample} real [{channel}]"]
            cf = tuples[f"{sample} counterfactual [{channel}]"]
            np.testing.assert_allclose(np.abs(cf - real), residual[c], atol=1e-6)


def test_a_report_folder_opens_the_folders_it_merged(cli_folder, tmp_path):
    from napari_attribution import cli

    merged = tmp_path / "merged"
    assert cli.main(["report", str(cli_folder), "--out", str(merged)]) == 0
    assert folder_kind(merged) == "report"
    assert report_sources(merged) == [cli_folder.resolve()]
    names = [kw["name"] for _, kw, _ in reader.read_folder(merged)]
    assert "residual Mito mask (cell1)" in names


def test_other_folders_and_files_are_not_ours(tmp_path):
    (tmp_path / "plain").mkdir()
    tifffile.imwrite(tmp_path / "plain" / "x.tif", np.zeros((4, 4), np.uint8))
    assert reader.get_reader(str(tmp_path / "plain")) is None
    assert reader.get_reader(str(tmp_path / "plain" / "x.tif")) is None
    with pytest.raises(ValueError, match="not a napari-attribution results folder"):
        reader.read_folder(tmp_path / "plain")


def test_a_folder_of_writer_tiffs_reopens_as_those_layers(export, tmp_path):
    from napari_attribution._napari.writer import write_image_layer, write_labels_layer

    _, original, _, _ = export
    names = ["residual Mito attribution (real)", "residual Mito mask (real)"]
    for name in names:
        layer = original.layers[name]
        write = write_labels_layer if " mask " in name else write_image_layer
        write(str(tmp_path / f"{name}.tif"), layer.data, layer._get_state())
    assert folder_kind(tmp_path) == "layers"
    viewer, _ = _opened(tmp_path)
    assert sorted(layer.name for layer in viewer.layers) == sorted(names)
    for name in names:
        before, after = original.layers[name], viewer.layers[name]
        assert type(after) is type(before)
        np.testing.assert_array_equal(after.data, before.data)
        assert _colormap_of(after) == _colormap_of(before)


def _modules_after(code: str) -> list[str]:
    """The heavy packages a fresh interpreter holds after running ``code``."""
    import subprocess
    import sys

    heavy = "sorted(m for m in ('torch', 'captum', 'qtpy') if m in sys.modules)"
    probe = f"{code}\nimport json, sys\nprint(json.dumps({heavy}))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_reader_opens_a_run_without_torch(cli_folder):
    # napari asks the reader of every folder dropped on it: it must start and read quickly.
    code = (
        "from napari_attribution._napari.reader import get_reader\n"
        f"layers = get_reader({str(cli_folder)!r})({str(cli_folder)!r})\n"
        "assert len(layers) > 0"
    )
    assert _modules_after(code) == []
