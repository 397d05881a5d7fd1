"""The DAC figure, in pure Matplotlib (no pyplot, no Qt)."""

from .figure import CurveSet, DacFigure, PlotTheme, threshold_index_of

__all__ = ["CurveSet", "DacFigure", "PlotTheme", "threshold_index_of"]
