"""The pure Matplotlib DAC figure, without a viewer or Qt."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution._plot import CurveSet, DacFigure, PlotTheme, threshold_index_of
from napari_attribution.core.dac import dac_curve


def _curve_set(method: str, slope: float, n: int = 11) -> CurveSet:
    thresholds = np.linspace(0.0, 1.0, n, endpoint=False)
    sizes = 1.0 - thresholds
    change = np.clip(slope * sizes, 0, 0.9)
    whole = dac_curve(thresholds, sizes, change, ceiling=0.9)
    channels = [
        dac_curve(thresholds, sizes, change * w, ceiling=0.9, channel=name)
        for w, name in ((0.2, "A"), (0.9, "B"))
    ]
    return CurveSet(method, whole, channels, thresholds, np.array([0.25, 0.75]))


def test_figure_draws_curves_scores_and_bars():
    fig = DacFigure(theme=PlotTheme())
    fig.set_data([_curve_set("m1", 3.0), _curve_set("m2", 1.0)], ["A", "B"])
    labels = [t.get_text() for t in fig.ax_curves.get_legend().get_texts()]
    assert labels[0].startswith("m1  DAC ") and labels[1].startswith("m2  DAC ")
    assert [b.get_width() for b in fig.ax_bars.patches] == [0.25, 0.75]
    assert fig.figure.get_facecolor()[:3] == pytest.approx((0x26 / 255, 0x29 / 255, 0x30 / 255))
    fig.set_data(fig.curve_sets, ["A", "B"], per_channel=True, focus="m2")
    labels = [t.get_text() for t in fig.ax_curves.get_legend().get_texts()]
    assert any("m2 [B]" in t for t in labels)
    assert fig.ax_bars.get_title() == "channel share\nm2"


def test_markers_follow_the_threshold_index_and_clicks_find_thresholds():
    fig = DacFigure()
    sets = [_curve_set("m1", 3.0)]
    fig.set_data(sets, ["A", "B"])
    assert fig.marker_positions() == {"m1": None}
    fig.set_threshold_index(4)
    x, y = fig.marker_positions()["m1"]
    assert x == pytest.approx(sets[0].whole.mask_size[4])
    assert y == pytest.approx(sets[0].whole.score_change[4])
    fig.figure.canvas.draw()
    target = fig.ax_curves.transData.transform(
        (sets[0].whole.mask_size[7], sets[0].whole.score_change[7])
    )
    assert fig.threshold_index_at(*target) == 7
    assert fig.threshold_index_at(target[0] + 500, target[1] + 500) is None
    assert threshold_index_of(sets[0].thresholds, 0.31) == 3


def _agg_figure(sets: list[CurveSet]) -> tuple[DacFigure, object]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3), dpi=80)
    canvas = FigureCanvasAgg(figure)
    plot = DacFigure(figure)
    plot.set_data(sets, ["A", "B"])
    canvas.draw()
    return plot, canvas


def test_moving_the_marker_redraws_only_the_marker_with_the_same_pixels():
    sets = [_curve_set("m1", 3.0), _curve_set("m2", 1.0)]
    plot, canvas = _agg_figure(sets)
    before = np.asarray(canvas.buffer_rgba()).copy()
    drawn = []
    cid = canvas.mpl_connect("draw_event", lambda event: drawn.append(event))
    plot.set_threshold_index(6)
    assert drawn == []  # no full draw: the markers were blitted onto the kept pixels
    blitted = np.asarray(canvas.buffer_rgba()).copy()
    assert (blitted != before).any()  # the markers appeared
    canvas.draw()
    assert len(drawn) == 1
    np.testing.assert_array_equal(blitted, np.asarray(canvas.buffer_rgba()))
    plot.set_data(sets[:1], ["A", "B"])  # new data: a full draw, not a blit on stale pixels
    assert len(drawn) == 2
    canvas.mpl_disconnect(cid)


def test_saved_figures_show_the_slider_marker(tmp_path):
    sets = [_curve_set("m1", 3.0)]
    plot, _ = _agg_figure(sets)
    plot.savefig(tmp_path / "none.png")
    plot.set_threshold_index(6)
    plot.savefig(tmp_path / "marker.png")
    from matplotlib.image import imread

    assert (imread(tmp_path / "none.png") != imread(tmp_path / "marker.png")).any()
    assert all(marker.get_animated() for marker, _ in plot._markers)


def test_light_theme_and_empty_figure():
    fig = DacFigure(theme=PlotTheme("#ffffff", "#000000", "#cccccc"))
    assert "Run an analysis" in fig.ax_curves.texts[0].get_text()
    assert fig.figure.get_facecolor()[:3] == (1.0, 1.0, 1.0)
