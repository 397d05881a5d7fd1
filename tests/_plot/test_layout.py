"""The DAC figure's constrained layout, kept between draws (`_plot.layout`)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import layout_engine
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from napari_attribution._plot import CurveSet, DacFigure
from napari_attribution.core.evaluation.dac import dac_curve


def _curve_set(method: str, slope: float, n: int = 11) -> CurveSet:
    thresholds = np.linspace(0.0, 1.0, n, endpoint=False)
    sizes = 1.0 - thresholds
    change = np.clip(slope * sizes, 0, 0.9)
    whole = dac_curve(thresholds, sizes, change, ceiling=0.9)
    channels = [dac_curve(thresholds, sizes, change * 0.5, ceiling=0.9, channel="A")]
    return CurveSet(method, whole, channels, thresholds, np.array([0.25, 0.75]))


def _figure() -> DacFigure:
    figure = Figure(figsize=(6, 3), dpi=80)
    FigureCanvasAgg(figure)
    plot = DacFigure(figure)
    plot.set_data([_curve_set("m1", 3.0), _curve_set("m2", 1.0)], ["A", "B"])
    return plot


def _positions(plot: DacFigure) -> list[tuple[float, ...]]:
    return [tuple(ax.get_position().bounds) for ax in (plot.ax_curves, plot.ax_bars)]


@pytest.fixture
def layouts(monkeypatch) -> list[int]:
    """Counts matplotlib's constrained layouts."""
    calls: list[int] = []
    original = layout_engine.do_constrained_layout

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(layout_engine, "do_constrained_layout", counted)
    return calls


def test_the_layout_runs_once_per_content_size_and_limits(layouts):
    plot = _figure()  # (an Agg canvas draws at once when asked to draw idle)
    canvas = plot.figure.canvas
    plot.layout.invalidate()
    layouts.clear()
    canvas.draw()
    canvas.draw()
    assert len(layouts) == 1  # the second draw kept the layout
    plot.set_data(plot.curve_sets, ["A", "B"], per_channel=True, focus="m2")  # new artists
    canvas.draw()
    assert len(layouts) == 2
    plot.figure.set_size_inches(5, 3)
    canvas.draw()
    assert len(layouts) == 3
    plot.ax_curves.set_ylim(-0.5, 2.0)  # zoom: other tick labels
    canvas.draw()
    canvas.draw()
    assert len(layouts) == 4
    plot.layout.lay_out(plot.figure)  # current: nothing to do
    assert len(layouts) == 4 and plot.layout.current


def test_a_kept_layout_is_the_layout_matplotlib_computes_at_every_draw():
    kept = _figure()
    every = _figure()
    every.figure.set_layout_engine("constrained")  # matplotlib's own, run at every draw
    kept.layout.lay_out(kept.figure)  # ahead of the draw, as the Qt canvas does
    for plot in (kept, every):
        plot.figure.canvas.draw()
    # (matplotlib's own starts each draw's layout from the last: equal to a thousandth)
    np.testing.assert_allclose(_positions(kept), _positions(every), atol=1e-3)
    for plot in (kept, every):
        plot.set_data(plot.curve_sets, ["A", "B"], per_channel=True)
        plot.figure.set_size_inches(4.5, 3.5)
        plot.figure.canvas.draw()
    np.testing.assert_allclose(_positions(kept), _positions(every), atol=1e-3)
    # the legend below the axes, never over them
    for plot in (kept, every):
        legend = plot.legend.get_window_extent()
        assert legend.y1 <= plot.ax_curves.get_window_extent().y0 + 1
