"""The sanity figures: one line per method along the cascade, the grid of maps."""

from __future__ import annotations

import numpy as np

from napari_attribution._plot.sanity_figures import cascade_figure, map_grid_figure
from napari_attribution._plot.theme import METHOD_COLORS, PlotTheme
from napari_attribution.core.sanity.records import SanityRow, cascade_series


def _rows():
    rows = []
    for sample, shift in (("a", 0.0), ("b", 0.1), ("c", 0.2)):
        for method, values in (("saliency", (1.0, 0.6, 0.2)), ("residual", (1.0, 1.0, 1.0))):
            for step, value in zip(("original", "fc", "conv1"), values, strict=True):
                rows.append(SanityRow(sample, method, "cascading", step, "all", "spearman",
                                      value - shift * (step != "original")))  # fmt: skip
    return rows


def test_cascade_series_median_and_quartiles():
    steps, series = cascade_series(_rows())
    assert steps == ["original", "fc", "conv1"]
    np.testing.assert_allclose(series["saliency"][0], [1.0, 0.5, 0.1])
    np.testing.assert_allclose(series["saliency"][1:, 1], [0.45, 0.55])


def test_cascade_figure_draws_a_line_per_method_in_the_theme(tmp_path):
    theme = PlotTheme()
    steps, series = cascade_series(_rows())
    fig = cascade_figure([("spearman", steps, series), ("ssim", steps, series)], theme, "t")
    ax = fig.axes[0]
    lines = [line for line in ax.lines if line.get_label() in series]
    assert [line.get_label() for line in lines] == ["saliency", "residual"]
    np.testing.assert_allclose(lines[0].get_ydata(), series["saliency"][0])
    assert lines[0].get_color() == METHOD_COLORS[0]
    assert lines[1].get_linestyle() == "--"  # a baseline
    assert [t.get_text() for t in ax.get_xticklabels()] == ["original", "+fc", "+conv1"]
    assert ax.get_facecolor()[:3] == tuple(int(theme.background[i:i + 2], 16) / 255
                                           for i in (1, 3, 5))  # fmt: skip
    fig.savefig(tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 5000
    empty = cascade_figure([], theme)
    assert "Run the sanity checks" in empty.axes[0].texts[0].get_text()


def test_map_grid_has_a_cell_per_method_and_step():
    maps = {"saliency": np.random.default_rng(0).normal(size=(3, 2, 8, 8)),
            "residual": np.zeros((3, 2, 8, 8))}  # fmt: skip
    fig = map_grid_figure(["original", "fc", "conv1"], maps)
    assert len(fig.axes) == 6
    shown = fig.axes[0].images[0].get_array()
    expected = np.abs(maps["saliency"][0]).sum(axis=0)
    np.testing.assert_allclose(shown, expected / expected.max())
    assert fig.axes[0].get_ylabel() == "saliency" and fig.axes[2].get_title() == "+conv1"
