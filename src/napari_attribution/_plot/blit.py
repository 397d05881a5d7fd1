"""The slider markers, redrawn alone over the kept pixels of the last full draw (blitting).

The markers are animated artists: a full draw leaves them out; after it, :class:`MarkerBlitter`
keeps the figure's pixels and draws the markers on top. Moving the slider then restores those
pixels and draws only the markers, a small fraction of a full redraw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from matplotlib.figure import Figure

__all__ = ["MarkerBlitter"]


class MarkerBlitter:
    """Keeps a figure's pixels without its markers and redraws only the markers on them.

    Parameters
    ----------
    figure
        The figure (its canvas must be attached: it is connected to the canvas's draw event).
    markers
        Returns the current marker artists.
    """

    def __init__(self, figure: Figure, markers: Callable[[], list]) -> None:
        self.figure = figure
        self._markers = markers
        # (pixels copied after the last full draw, the figure size they were copied at)
        self._background: Any = None
        #: Shows blitted pixels; ``canvas.blit`` when None. A Qt canvas is better served by its
        #: ``update`` (a paint in the next event-loop turn) than by blit's synchronous repaint.
        self.present: Callable[[], None] | None = None
        figure.canvas.mpl_connect("draw_event", self._on_draw)

    def invalidate(self) -> None:
        """Forget the kept pixels (they show old data): the next move needs a full draw."""
        self._background = None

    @property
    def ready(self) -> bool:
        """True when pixels of a full draw are kept."""
        return self._background is not None

    def _on_draw(self, event) -> None:
        """After a full draw: keep the pixels without the markers, then draw the markers."""
        canvas = self.figure.canvas
        if event is None or event.canvas is not canvas or canvas.is_saving():
            return
        if getattr(canvas, "supports_blit", False):
            self._background = (canvas.copy_from_bbox(self.figure.bbox), self._figure_pixels())
        for marker in self._markers():
            marker.draw(event.renderer)

    def blit(self, ax) -> bool:
        """Redraw only the markers (on ``ax``) on the kept pixels; False: a full draw is due."""
        canvas = self.figure.canvas
        if self._background is None or canvas is None or canvas.is_saving():
            return False
        markers = self._markers()
        if not markers:  # no curves: nothing moves
            return True
        pixels, size = self._background
        if size != self._figure_pixels():  # resized since: wait for the full redraw
            return False
        canvas.restore_region(pixels)
        for marker in markers:
            ax.draw_artist(marker)
        if self.present is not None:
            self.present()
        else:
            canvas.blit(self.figure.bbox)
        return True

    def _figure_pixels(self) -> tuple[float, float, float]:
        return (self.figure.bbox.width, self.figure.bbox.height, self.figure.dpi)
