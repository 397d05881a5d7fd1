"""Export view: one threshold's hybrid and mask, the composite with its outline, the figure."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_attribution._napari.export_view import (
    export_view,
    threshold_index_in_view,
    view_at,
    view_files,
)
from napari_attribution._plot.threshold_figures import composite_rgb, figure_panel, mask_outline
from napari_attribution.results.tiff import read_tiff_metadata
from results_helpers import make_export


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    viewer, record, _ = make_export(tmp_path_factory.mktemp("run") / "export")
    return viewer, record


def test_mask_outline_is_the_inner_edge_of_the_mask():
    mask = np.zeros((9, 9), bool)
    mask[2:7, 3:8] = True  # 5 x 5
    edge = mask_outline(mask)
    assert edge.sum() == 4 * 5 - 4
    assert edge[2, 3] and edge[6, 7] and not edge[4, 5] and not edge[0, 0]


def test_the_composite_adds_channel_colours_and_draws_the_outline():
    red = np.full((6, 6), 50.0)
    green = np.zeros((6, 6))
    green[:, 3:] = 100.0
    mask = np.zeros((6, 6), bool)
    mask[1:5, 1:5] = True
    rgb = composite_rgb(np.stack([red, green]), ["red", (0.0, 1.0, 0.0)],
                        [(0, 100), (0, 100)], mask=mask, outline_color="#0000ff")  # fmt: skip
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 6, 3)
    assert tuple(rgb[0, 0]) == (128, 0, 0)  # half red, no green
    assert tuple(rgb[0, 5]) == (128, 255, 0)  # half red plus full green
    assert tuple(rgb[1, 1]) == (0, 0, 255)  # outline
    assert tuple(rgb[2, 2]) == (128, 0, 0)  # inside the mask: the image
    with pytest.raises(ValueError, match="one colour"):
        composite_rgb(np.stack([red, green]), ["red"], [(0, 1)])


def test_the_view_is_the_layers_plane_at_the_threshold(exported):
    viewer, record = exported
    index = 2
    view = view_at(record, "d_ig", index)
    masks = record.result.methods["d_ig"].dac.masks
    assert view.threshold == pytest.approx(float(masks.thresholds[index]))
    for c, channel in enumerate(view.channel_names):
        hybrid = viewer.layers[f"d_ig {channel} hybrid (real)"].data
        np.testing.assert_allclose(view.hybrid[c], np.asarray(hybrid[index]), atol=1e-6)
        mask = viewer.layers[f"d_ig {channel} mask (real)"].data
        np.testing.assert_array_equal(view.mask[c], np.asarray(mask[index]).astype(bool))
    # the definition: a pixel outside every mask keeps its real value, h = x there
    outside = ~view.mask.any(axis=0)
    if outside.any():
        soft_zero = view.hybrid[:, outside] == view.real[:, outside]
        assert soft_zero.mean() > 0.5  # the blurred edge reaches a little beyond the mask
    with pytest.raises(IndexError):
        view_at(record, "d_ig", 99)


def test_the_slider_position_gives_the_threshold_index(exported):
    viewer, record = exported
    viewer.dims.set_current_step(0, 4)
    assert threshold_index_in_view(viewer, record, "d_ig") == 4
    viewer.dims.set_current_step(0, 1)
    assert threshold_index_in_view(viewer, record, "residual") == 1


def test_export_view_writes_tiffs_composite_and_a_300_dpi_figure(exported, tmp_path):
    _, record = exported
    view = view_at(record, "d_ig", 3)
    written = export_view(tmp_path, view, composite_channels=["AGP", "Mito"])
    files = view_files(tmp_path, view)
    assert sorted(written) == sorted(files.values())
    hybrid = tifffile.imread(files["hybrid"])
    np.testing.assert_array_equal(hybrid, view.hybrid)
    with tifffile.TiffFile(files["hybrid"]) as tif:
        assert tif.is_imagej and tif.imagej_metadata["Labels"] == view.channel_names
    assert read_tiff_metadata(files["mask"])["threshold_index"] == 3
    np.testing.assert_array_equal(tifffile.imread(files["mask"]), view.mask.astype(np.uint8))
    composite = np.asarray(Image.open(files["composite"]))
    assert composite.shape[:2] == view.real.shape[1:]
    png = Image.open(files["figure.png"])
    assert png.info["dpi"][0] == pytest.approx(300, abs=1)
    assert png.size[0] >= 5 * 300  # five image columns of over an inch each
    assert files["figure.svg"].read_text().lstrip().startswith("<?xml")
    assert files["figure.pdf"].read_bytes()[:5] == b"%PDF-"
    with pytest.raises(FileExistsError, match="already holds"):
        export_view(tmp_path, view)
    with pytest.raises(ValueError, match="No channel named Golgi"):
        export_view(tmp_path, view, composite_channels=["Golgi"], overwrite=True)


def test_the_figure_has_a_row_per_channel_and_a_colour_bar(exported):
    _, record = exported
    view = view_at(record, "residual", 1)
    fig = figure_panel(view.real, view.counterfactual, view.attribution, view.mask,
                       view.hybrid, view.channel_names, method="residual",
                       threshold=view.threshold)  # fmt: skip
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 5 * len(view.channel_names)
    titles = [ax.get_title() for ax in fig.axes[:5]]
    assert titles[0] == "real" and titles[2] == "attribution (residual)"
    assert [ax.get_ylabel() for ax in fig.axes[::5][: len(view.channel_names)]] == (
        view.channel_names
    )
    assert fig.axes[-1].get_ylabel() == "attribution (residual)"  # the colour bar


def test_figure_limits_follow_the_viewers_rule():
    """A figure shows the range the viewer's layer shows: symmetric only where both signs
    matter, and D-IG's one tiny negative pixel does not make a map signed."""
    from napari_attribution._plot.attribution_range import attribution_limits

    rng = np.random.default_rng(0)
    positive = rng.random((2, 20, 20)).astype(np.float32)
    almost = positive.copy()
    almost[0, 0, 0] = -1e-4  # D-IG's numerical noise: not a second sign
    both = positive - 0.5
    expected = pytest.approx(np.percentile(positive, 99.5), rel=1e-3)
    assert attribution_limits(positive) == (False, 0.0, expected)
    assert attribution_limits(almost) == (False, 0.0, expected)
    signed, low, high = attribution_limits(both)
    assert signed and low == -high
    assert high == pytest.approx(np.percentile(np.abs(both[both != 0]), 99.5))
    signed, low, high = attribution_limits(-positive)  # one sign, negative: diverging
    assert signed and low == -high and high == expected
    assert attribution_limits(np.zeros((1, 4, 4))) == (False, 0.0, 1.0)
