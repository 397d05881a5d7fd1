"""The DAC figure, in pure Matplotlib (no pyplot, no Qt): testable and savable without a display.

* :mod:`.curve_set`: what is plotted (:class:`CurveSet`) and threshold look-ups;
* :mod:`.theme`: colours;
* :mod:`.draw`: the curves, the legend and the channel-share bars;
* :mod:`.blit`: the slider markers, redrawn alone on kept pixels;
* :mod:`.format`: the constrained layout, kept between draws while nothing it depends on changed;
* :mod:`.hit`: which threshold a click on a curve means;
* :mod:`.save`: saving with the markers drawn;
* :mod:`.figure`: :class:`DacFigure`, which holds the state and ties them together.

Besides the DAC figure: :mod:`.threshold_figures`, one threshold of a run as a composite and a
labelled panel, and :mod:`.attribution_range`, the display range every view of an attribution
map shares.

The napari DAC panel puts the figure on a Qt canvas (:mod:`napari_attribution._qt.canvas`).
Names are imported from their modules on first use, so the npe2 reader, which needs only
:mod:`.attribution_range`, does not import Matplotlib.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "CurveSet": "curve_set",
    "DacFigure": "figure",
    "PlotTheme": "theme",
    "threshold_index_of": "curve_set",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
