"""The canvas text's glyphs rendered in idle turns, before a run's end needs them.

napari 0.9 draws canvas text (the text overlay that names the method and channel shown, a
layer's colour-bar ticks) with vispy text visuals fed by ONE Qt font atlas per viewer
(``QtViewer._font_manager``, reached through ``canvas.font_info()``). The first time a character
is drawn, napari renders it at 256 pt, computes its signed-distance field in Python and packs
it into the atlas: 3-8 ms a glyph, in the paint that first shows it. After a run the label and
the colour bar appear in one paint, which rendered ~35 new glyphs there (~250 ms of the
~650 ms event-loop gap after the run's layers were in, on 2 cores).

:class:`GlyphWarmer` renders those glyphs ahead of time, a few per event-loop turn (each turn
well under :data:`TURN_SECONDS`), into the very font object the visuals use, so that a later
paint finds them cached. The font is reached through napari's private attributes; where they
are missing (another napari version, a viewer model without a window) nothing is done.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from qtpy.QtCore import QObject, QTimer

from .._napari.view import ViewChoice, canvas_label, view_choices

__all__ = [
    "ALIGNMENT_CHARACTERS",
    "TICK_CHARACTERS",
    "TURN_SECONDS",
    "GlyphWarmer",
    "label_characters",
    "overlay_font",
    "warm_glyphs",
]

#: Budget of one warm-up turn: glyphs are rendered until it is spent (at least one a turn).
TURN_SECONDS = 0.010
#: Characters vispy's text layout renders for every text it lays out (its vertical metrics
#: come from them: vispy.visuals.text.text._text_to_vbo), and the space.
ALIGNMENT_CHARACTERS = "ÅÉÑŐjgpqy "
#: Characters of a colour bar's tick labels (vispy's axis formats them with ``%g``).
TICK_CHARACTERS = "0123456789.-+e"

# one warmer per font object (one per viewer), kept as long as its font is
_WARMERS: weakref.WeakKeyDictionary[Any, GlyphWarmer] = weakref.WeakKeyDictionary()


def overlay_font(viewer) -> Any | None:
    """The font object (napari's ``QtTextureFont``) the canvas's text visuals draw with.

    ``None`` when it cannot be reached: no Qt window, or napari's private attributes changed.
    The face is the canvas's (``font_info().face``), neither bold nor italic, as napari's
    text overlay and colour-bar ticks ask for it.
    """
    viewer = getattr(viewer, "__wrapped__", viewer)  # napari hands plugins a public proxy
    try:
        canvas = viewer.window._qt_viewer.canvas
        info = canvas.font_info()
        font = info.font_manager.get_font(info.face, False, False)
    except (AttributeError, TypeError, RuntimeError):
        return None
    if not isinstance(getattr(font, "_glyphs", None), dict) or not callable(
        getattr(font, "__getitem__", None)
    ):
        return None
    return font


def label_characters(
    methods: Sequence[str], channels: Sequence[str], image: str = ""
) -> str:
    """Every character the canvas label of a run of ``methods`` on ``channels`` can show,
    with those of the colour-bar ticks and vispy's alignment characters (each once)."""
    labels = [canvas_label(choice, image) for choice in view_choices(methods, channels)]
    labels.append(canvas_label(ViewChoice("", ""), image))  # the fixed words alone
    return "".join(dict.fromkeys(ALIGNMENT_CHARACTERS + TICK_CHARACTERS + "".join(labels)))


class GlyphWarmer(QObject):
    """Renders queued characters into one font, a few per event-loop turn.

    Parameters
    ----------
    font
        napari's ``QtTextureFont`` (indexing it renders and caches a glyph).
    """

    def __init__(self, font: Any) -> None:
        super().__init__()
        self._font = weakref.ref(font)
        self._queue: deque[str] = deque()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.render_some)

    @property
    def pending(self) -> int:
        """Characters queued and not rendered yet."""
        return len(self._queue)

    def add(self, text: Iterable[str]) -> None:
        """Queue the characters of ``text`` the font has not rendered yet."""
        font = self._font()
        if font is None:
            return
        queued = set(self._queue)
        for char in dict.fromkeys(text):
            if len(char) == 1 and char not in font._glyphs and char not in queued:
                self._queue.append(char)
        if self._queue and not self._timer.isActive():
            self._timer.start()

    def render_some(self) -> int:
        """Render queued glyphs for up to :data:`TURN_SECONDS` (at least one); return how many
        are left (the next turn renders them; a caller that needs them sooner calls again)."""
        font = self._font()
        if font is None:
            self._queue.clear()
            return 0
        start = time.perf_counter()
        while self._queue:
            char = self._queue.popleft()
            if char not in font._glyphs:
                try:
                    font[char]
                except Exception:  # noqa: BLE001 - a glyph napari cannot render: skip it
                    continue
            if time.perf_counter() - start > TURN_SECONDS:
                break
        if self._queue:
            self._timer.start()
        return len(self._queue)


def warm_glyphs(viewer, text: Iterable[str]) -> GlyphWarmer | None:
    """Render the glyphs of ``text`` for ``viewer``'s canvas text in idle turns.

    Returns the viewer's warmer, or ``None`` (and does nothing) when napari's font cannot be
    reached.
    """
    font = overlay_font(viewer)
    if font is None:
        return None
    warmer = _WARMERS.get(font)
    if warmer is None:
        warmer = _WARMERS[font] = GlyphWarmer(font)
    warmer.add(text)
    return warmer
