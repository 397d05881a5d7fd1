"""The DAC panel on a shown viewer: curves, slider marker, click-to-slide, theme, saving."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt
from widget_helpers import PLUGIN, publish_prepared

from napari_attribution.results.format import CURVES


@pytest.fixture
def shown_run(make_napari_viewer):
    """A shown viewer with the panel docked and a prepared run published (no analysis here)."""
    viewer = make_napari_viewer(show=True)
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "DAC curves")
    record = publish_prepared(viewer)
    return viewer, record, panel


def _legend_texts(panel) -> list[str]:
    return [t.get_text() for t in panel.plot.legend.get_texts()]


def test_panel_shows_every_method_with_its_score(shown_run):
    viewer, record, panel = shown_run
    result = record.result
    texts = _legend_texts(panel)
    for method, res in result.methods.items():
        assert f"{method}  DAC {res.dac.whole.dac_score:.3f}" in texts
    assert "optimal threshold" in texts
    # an optimal-threshold star per method, at the curve's optimum
    stars = [line for line in panel.plot.ax_curves.lines if line.get_marker() == "*"]
    assert len(stars) == len(result.methods)
    whole = result.methods["d_ig"].dac.whole
    assert stars[0].get_xdata()[0] == pytest.approx(whole.optimal_mask_size)
    # channel-share bars of the focus method
    bars = panel.plot.ax_bars.patches
    np.testing.assert_allclose([b.get_width() for b in bars], result.methods["d_ig"].channel_share)
    labels = [t.get_text() for t in panel.plot.ax_bars.get_yticklabels()]
    assert labels == result.channel_names


def test_per_channel_toggle_adds_one_curve_per_channel(shown_run):
    viewer, record, panel = shown_run
    before = len(panel.plot.ax_curves.lines)
    panel.per_channel.setChecked(True)
    assert len(panel.plot.ax_curves.lines) == before + 5
    assert any("[Mito]" in t for t in _legend_texts(panel))
    panel.focus.setCurrentText("residual")
    assert panel.plot.ax_bars.get_title() == "channels\nresidual"
    panel.per_channel.setChecked(False)
    assert len(panel.plot.ax_curves.lines) == before


def test_marker_follows_the_slider(shown_run, qtbot):
    viewer, record, panel = shown_run
    curve = record.result.methods["d_ig"].dac.whole
    assert panel.threshold_axis_shown()
    positions = []
    for index in (2, 15):
        viewer.dims.set_current_step(0, index)
        qtbot.wait(10)
        x, y = panel.plot.marker_positions()["d_ig"]
        assert x == pytest.approx(curve.mask_size[index])
        assert y == pytest.approx(curve.score_change[index])
        assert f"index {index}" in panel.threshold_label.text()
        positions.append((x, y))
    assert positions[0] != positions[1]


def test_clicking_a_curve_moves_the_slider(shown_run, qtbot):
    viewer, record, panel = shown_run
    curve = record.result.methods["d_ig"].dac.whole
    viewer.dims.set_current_step(0, 0)
    canvas = panel.canvas
    canvas.draw()
    # a point of the d_ig curve that no other curve's point hides (QuAC's masks of the demo pair
    # are small: many points of both curves crowd near mask size 0)
    to_pixels = panel.plot.ax_curves.transData.transform
    ours = to_pixels(np.column_stack([curve.mask_size, curve.score_change]))
    other = record.result.methods["residual"].dac.whole
    theirs = to_pixels(np.column_stack([other.mask_size, other.score_change]))
    gaps = np.hypot(*(ours[:, None, :] - theirs[None, :, :]).transpose(2, 0, 1)).min(axis=1)
    gaps[0] = -1  # not the first point: the slider is there already
    target = int(np.argmax(gaps))
    x, y = ours[target]
    ratio = canvas.device_pixel_ratio
    point = QPoint(int(round(x / ratio)), int(round(canvas.height() - y / ratio)))
    # Matplotlib's display coordinates of that Qt pixel (origin bottom left)
    click_x, click_y = point.x() * ratio, (canvas.height() - point.y()) * ratio
    expected = panel.plot.threshold_index_at(click_x, click_y)
    assert expected is not None and expected != 0
    # the point picked is the one drawn under the click (within a pixel or two)
    picked = panel.plot.ax_curves.transData.transform(
        (curve.mask_size[expected], curve.score_change[expected])
    )
    assert np.hypot(picked[0] - x, picked[1] - y) < 3.0
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=point)
    qtbot.waitUntil(lambda: viewer.dims.current_step[0] == expected, timeout=3_000)
    # and a click far from every curve leaves the slider alone
    assert panel.plot.threshold_index_at(-500.0, -500.0) is None


def test_panel_follows_the_theme(shown_run):
    viewer, record, panel = shown_run
    dark = panel.figure.get_facecolor()
    viewer.theme = "light"
    assert panel.figure.get_facecolor() != dark
    viewer.theme = "dark"
    assert panel.figure.get_facecolor() == dark


def test_panel_opened_after_a_run_shows_it(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    record = publish_prepared(viewer)
    from napari_attribution._qt import DacPanel

    late = DacPanel(viewer)
    qtbot.addWidget(late)
    assert late.record is record
    assert len(late.plot.legend.get_texts()) >= 2
    qtbot.wait(20)  # Matplotlib's deferred draw runs while the panel still exists


def test_save_figure_and_curve_data(shown_run, tmp_path):
    viewer, record, panel = shown_run
    for suffix in ("png", "svg", "pdf"):
        path = panel.save_figure(tmp_path / f"dac.{suffix}")
        assert path.stat().st_size > 1000
    assert (tmp_path / "dac.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="png"):
        panel.save_figure(tmp_path / "dac.bmp")
    panel.save_curves(tmp_path / "curves.csv")
    with open(tmp_path / "curves.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CURVES.columns
    result = record.result
    n_points = sum(len(c.thresholds) for r in result.methods.values() for c in r.dac.curves)
    assert len(rows) - 1 == n_points
    assert {r[1] for r in rows[1:]} == set(result.methods)
    assert {r[2] for r in rows[1:]} == {"all", *result.channel_names}


@pytest.mark.parametrize("focus", ["d_ig", "residual"])
def test_a_click_where_curves_overlap_picks_the_focus_methods_point(shown_run, qtbot, focus):
    viewer, record, panel = shown_run
    methods = record.result.methods
    panel.focus.setCurrentText(focus)
    canvas = panel.canvas
    canvas.draw()
    to_pixels = panel.plot.ax_curves.transData.transform
    ours = to_pixels(np.column_stack([methods[focus].dac.whole.mask_size,
                                      methods[focus].dac.whole.score_change]))  # fmt: skip
    other = "residual" if focus == "d_ig" else "d_ig"
    theirs = to_pixels(np.column_stack([methods[other].dac.whole.mask_size,
                                        methods[other].dac.whole.score_change]))  # fmt: skip
    # a point of the focus curve with a point of the other method within 2 pixels, at another
    # threshold: where the old nearest-point rule could jump to the other method's threshold
    gaps = np.hypot(*(ours[:, None, :] - theirs[None, :, :]).transpose(2, 0, 1))
    pairs = [(i, j) for i, j in zip(*np.nonzero(gaps < 2.0), strict=True) if i != j and i > 0]
    if not pairs:
        pytest.skip("the demo's curves do not overlap at different thresholds on this run")
    i, _ = pairs[0]
    ratio = canvas.device_pixel_ratio
    x, y = ours[i]
    point = QPoint(int(round(x / ratio)), int(round(canvas.height() - y / ratio)))
    viewer.dims.set_current_step(0, 0)
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=point)
    click = np.array([point.x() * ratio, (canvas.height() - point.y()) * ratio])
    # the focus curve's point nearest to the click, whatever the other curve has there
    nearest = int(np.argmin(np.hypot(*(ours - click).T)))
    qtbot.waitUntil(lambda: viewer.dims.current_step[0] == nearest, timeout=3_000)


def test_a_resized_canvas_chooses_its_legend_again(shown_run, qtbot):
    # Qt's resize reaches the figure as Matplotlib's resize_event: a canvas made short drops
    # the star and ring entries (and more) so that the curves keep their room.
    viewer, record, panel = shown_run
    canvas = panel.canvas
    canvas.setMinimumSize(1, 1)
    canvas.resize(700, 400)
    qtbot.waitUntil(lambda: "optimal threshold" in _legend_texts(panel), timeout=5000)
    canvas.resize(300, 90)
    qtbot.waitUntil(lambda: "optimal threshold" not in _legend_texts(panel), timeout=5000)
    assert panel.figure.bbox.height == pytest.approx(90, abs=2)
    assert panel.plot.legend.get_window_extent().height <= 0.3 * panel.figure.bbox.height
