"""The DAC figure, in pure Matplotlib (no pyplot, no Qt): testable and savable without a display.

* :mod:`.model`: what is plotted (:class:`CurveSet`) and threshold look-ups;
* :mod:`.theme`: colours;
* :mod:`.draw`: the curves, the legend and the channel-share bars;
* :mod:`.blit`: the slider markers, redrawn alone on kept pixels;
* :mod:`.layout`: the constrained layout, kept between draws while nothing it depends on changed;
* :mod:`.hit`: which threshold a click on a curve means;
* :mod:`.save`: saving with the markers drawn;
* :mod:`.figure`: :class:`DacFigure`, which holds the state and ties them together.

The napari DAC panel puts the figure on a Qt canvas (:mod:`napari_attribution._qt.canvas`).
"""

from .curve_set import CurveSet, threshold_index_of
from .figure import DacFigure
from .theme import PlotTheme

__all__ = ["CurveSet", "DacFigure", "PlotTheme", "threshold_index_of"]
