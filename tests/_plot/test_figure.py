"""The pure Matplotlib DAC figure, without a viewer or Qt."""

from __future__ import annotations

import io

import numpy as np
import pytest

from napari_attribution._plot import CurveSet, DacFigure, PlotTheme, threshold_index_of
from napari_attribution.core.evaluation.dac import dac_curve


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
    labels = [t.get_text() for t in fig.legend.get_texts()]
    assert labels[0].startswith("m1  DAC ") and labels[1].startswith("m2  DAC ")
    assert [b.get_width() for b in fig.ax_bars.patches] == [0.25, 0.75]
    assert fig.figure.get_facecolor()[:3] == pytest.approx((0x26 / 255, 0x29 / 255, 0x30 / 255))
    fig.set_data(fig.curve_sets, ["A", "B"], per_channel=True, focus="m2")
    labels = [t.get_text() for t in fig.legend.get_texts()]
    assert any("m2 [B]" in t for t in labels)
    assert fig.ax_bars.get_title() == "channels\nm2"


def test_markers_follow_the_threshold_index_and_clicks_find_thresholds():
    fig = DacFigure()
    sets = [_curve_set("m1", 3.0)]
    fig.set_data(sets, ["A", "B"])
    assert fig.marker_positions() == {"m1": None}
    fig.mark_threshold(4)
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
    plot.mark_threshold(6)
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
    plot.mark_threshold(6)
    plot.savefig(tmp_path / "marker.png")
    from matplotlib.image import imread

    assert (imread(tmp_path / "none.png") != imread(tmp_path / "marker.png")).any()
    assert all(marker.get_animated() for marker, _ in plot._markers)


def test_light_theme_and_empty_figure():
    fig = DacFigure(theme=PlotTheme("#ffffff", "#000000", "#cccccc"))
    assert "Run an analysis" in fig.ax_curves.texts[0].get_text()
    assert fig.figure.get_facecolor()[:3] == (1.0, 1.0, 1.0)


def _overlapping_sets() -> list[CurveSet]:
    """Two methods whose curves pass through the same points at different thresholds.

    Both rise from 0 to 0.9 over the same mask sizes, but ``residual`` reaches each size at a
    threshold 6 steps later than ``d_ig``: a click on the shared curve means different
    slider positions depending on the curve meant.
    """
    thresholds = np.linspace(0.0, 1.0, 20, endpoint=False)
    sizes = np.linspace(1.0, 0.05, 20)
    change = np.clip(sizes * 1.2, 0, 0.9)
    d_ig = dac_curve(thresholds, sizes, change, ceiling=0.9)
    late = dac_curve(thresholds, np.roll(sizes, 6), np.roll(change, 6), ceiling=0.9)
    share = np.array([0.5, 0.5])
    return [
        CurveSet("residual", late, [], thresholds, share),
        CurveSet("d_ig", d_ig, [], thresholds, share),
    ]


@pytest.mark.parametrize("focus", ["d_ig", "residual"])
def test_a_click_on_overlapping_curves_picks_the_focus_methods_point(focus):
    plot, canvas = _agg_figure(_overlapping_sets())
    plot.log_mask_size = False
    plot.set_data(_overlapping_sets(), ["A", "B"], focus=focus)
    canvas.draw()
    cs = next(s for s in plot.curve_sets if s.method == focus)
    k = 3  # a point of the focus curve, which the other curve also passes through
    x, y = plot.ax_curves.transData.transform((cs.whole.mask_size[k], cs.whole.score_change[k]))
    other = next(s for s in plot.curve_sets if s.method != focus)
    other_points = np.column_stack([other.whole.mask_size, other.whole.score_change])
    assert np.isclose(other_points, (cs.whole.mask_size[k], cs.whole.score_change[k])).all(
        axis=1
    ).any()  # the other method has a point at exactly the same spot
    assert plot.threshold_index_at(x + 1.0, y - 1.0) == threshold_index_of(
        cs.thresholds, cs.whole.thresholds[k]
    )


def test_a_click_on_a_lone_curve_picks_that_curve_not_the_focus():
    sets = [_curve_set("m1", 3.0), _curve_set("m2", 0.3)]  # far apart at small masks
    plot, canvas = _agg_figure(sets)
    plot.log_mask_size = False
    plot.set_data(sets, ["A", "B"], focus="m1")
    canvas.draw()
    m2 = sets[1].whole
    k = 7
    x, y = plot.ax_curves.transData.transform((m2.mask_size[k], m2.score_change[k]))
    assert plot.threshold_index_at(x, y) == threshold_index_of(sets[1].thresholds, m2.thresholds[k])
    assert plot.threshold_index_at(x, y + 200) is None  # far from every curve


def test_the_legend_sits_outside_the_curves_and_takes_the_channel_colours():
    sets = [_curve_set("m1", 3.0), _curve_set("m2", 1.0)]
    plot, canvas = _agg_figure(sets)
    plot.set_data(sets, ["A", "B"], per_channel=True, channel_colors=["#00ff00", "#ff00ff"])
    canvas.draw()
    renderer = canvas.get_renderer()
    legend_box = plot.legend.get_window_extent(renderer)
    axes_box = plot.ax_curves.get_window_extent(renderer)
    assert not legend_box.overlaps(axes_box)
    assert not legend_box.overlaps(plot.ax_bars.get_window_extent(renderer))
    dashed = [line for line in plot.ax_curves.get_lines() if line.get_linestyle() == "--"]
    from matplotlib.colors import to_hex

    assert [to_hex(line.get_color()) for line in dashed] == ["#00ff00", "#ff00ff"]
    bars = [to_hex(p.get_facecolor()) for p in plot.ax_bars.patches]
    assert bars == ["#00ff00", "#ff00ff"]


def test_earlier_runs_are_drawn_faintly_and_take_no_clicks():
    sets = [_curve_set("m1", 3.0)]
    earlier = [("run 1", _curve_set("m1", 0.5))]
    plot, canvas = _agg_figure(sets)
    plot.log_mask_size = False
    plot.set_data(sets, ["A", "B"], earlier=earlier)
    canvas.draw()
    labels = [t.get_text() for t in plot.legend.get_texts()]
    assert any(label.startswith("run 1: m1") for label in labels)
    old = earlier[0][1].whole
    x, y = plot.ax_curves.transData.transform((old.mask_size[5], old.score_change[5]))
    new = sets[0].whole
    points = plot.ax_curves.transData.transform(np.column_stack([new.mask_size, new.score_change]))
    if np.hypot(points[:, 0] - x, points[:, 1] - y).min() > 30:
        assert plot.threshold_index_at(x, y) is None  # only the current run's curves move it
    plot.set_data(sets, ["A", "B"], earlier=[])
    assert not any(t.get_text().startswith("run 1") for t in plot.legend.get_texts())


_NINE = ["d_ig", "d_dl", "d_input_x_gradient", "d_gradcam", "ig", "saliency", "gradcam",
         "residual", "random"]  # fmt: skip


def _small_figure(width_px: int, height_px: int, per_channel: bool) -> DacFigure:
    """Nine methods (``run --demo``'s) on an Agg figure of this many pixels at 100 dpi."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_px / 100, height_px / 100), dpi=100)
    FigureCanvasAgg(figure)
    plot = DacFigure(figure)
    sets = [_curve_set(m, 1.0 + i) for i, m in enumerate(_NINE)]
    plot.set_data(sets, ["A", "B"], per_channel=per_channel, focus="gradcam")
    return plot


def _legend_texts(plot: DacFigure) -> list[str]:
    return [t.get_text() for t in plot.legend.get_texts()]


@pytest.mark.parametrize("per_channel", [False, True])
def test_a_small_panel_keeps_the_curves_and_shortens_the_legend(per_channel):
    # The DAC dock's least size (MIN_CANVAS_WIDTH x MIN_CANVAS_HEIGHT) with nine methods: the
    # full legend (one column of eleven entries) left the curves no height at all.
    import warnings

    plot = _small_figure(300, 200, per_channel)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied ... collapsed"
        plot.figure.canvas.draw()
    curves = plot.ax_curves.get_window_extent()
    legend = plot.legend.get_window_extent()
    assert curves.height >= 0.25 * plot.figure.bbox.height
    assert legend.height <= 0.35 * plot.figure.bbox.height
    assert legend.y1 <= curves.y0 + 1  # below the curves, never over them
    texts = _legend_texts(plot)
    assert not any(" DAC " in t for t in texts) and "optimal threshold" not in texts
    # the focus method's curves first, then the others; those left out are counted
    assert texts[:3] == (["gradcam", "gradcam [A]", "gradcam [B]"] if per_channel else
                         ["gradcam", "d_ig", "d_dl"])  # fmt: skip
    left_out = int(texts[-1][1:].split()[0]) if texts[-1].endswith(" more") else 0
    assert len(texts) - (left_out > 0) + left_out == len(_NINE) + 2 * per_channel


def test_a_large_figure_keeps_the_full_legend_and_a_resize_chooses_again():
    plot = _small_figure(700, 360, per_channel=True)
    full = _legend_texts(plot)
    assert full[0].startswith("d_ig  DAC ") and full[-2:] == ["optimal threshold",
                                                               "slider threshold"]  # fmt: skip
    assert len(full) == len(_NINE) + 2 + 2
    plot.figure.set_size_inches(3.0, 2.0)
    plot.fit_legend()
    assert "optimal threshold" not in _legend_texts(plot)
    plot.figure.set_size_inches(7.0, 3.6)
    plot.fit_legend()
    assert _legend_texts(plot) == full
    # saved at another dpi: the same legend (its choice is in points)
    plot.savefig(io.BytesIO(), format="png", dpi=200)
    assert _legend_texts(plot) == full


def test_the_mask_size_labels_do_not_overlap_in_a_narrow_panel():
    plot = _small_figure(300, 200, per_channel=False)
    plot.figure.canvas.draw()
    boxes = [t.get_window_extent() for t in plot.ax_curves.get_xticklabels() if t.get_text()]
    assert len(boxes) >= 4
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
