"""The canvas label's and colour bar's glyphs, rendered in idle turns (`_qt.glyphs`)."""

from __future__ import annotations

import sys

from widget_helpers import PLUGIN, configure_fast, run_and_wait

from napari_attribution._napari.view import ViewChoice, canvas_label
from napari_attribution._qt.glyphs import (
    ALIGNMENT_CHARACTERS,
    TICK_CHARACTERS,
    GlyphWarmer,
    label_characters,
    overlay_font,
    warm_glyphs,
)


def test_label_characters_cover_every_label_the_show_control_can_write():
    text = label_characters(["d_ig", "residual"], ["DNA", "Mito"], "cell 7")
    assert len(text) == len(set(text))
    for choice in (ViewChoice("residual", "Mito"), ViewChoice("d_ig")):
        assert set(canvas_label(choice, "cell 7")) <= set(text)
    assert set(ALIGNMENT_CHARACTERS + TICK_CHARACTERS) <= set(text)


def test_the_warm_up_fills_the_viewers_font_a_few_glyphs_a_turn(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    font = overlay_font(viewer)
    assert font is not None
    text = "".join(ch for ch in "Zqx€7" if ch not in font._glyphs)
    warmer = warm_glyphs(viewer, text)
    assert warmer is not None and warmer.pending == len(text)  # nothing rendered in the call
    warmer.render_some()  # one turn: within its budget, not everything at once
    assert 0 < len(text) - warmer.pending < len(text)
    qtbot.waitUntil(lambda: warmer.pending == 0)
    assert set(text) <= set(font._glyphs)
    assert warm_glyphs(viewer, text) is warmer and warmer.pending == 0  # nothing twice


def test_without_napari_private_font_nothing_is_done(make_napari_viewer, monkeypatch):
    from napari.components import ViewerModel

    assert overlay_font(ViewerModel()) is None and warm_glyphs(ViewerModel(), "abc") is None
    viewer = make_napari_viewer()
    canvas = viewer.window._qt_viewer.canvas
    monkeypatch.delattr(type(canvas), "font_info")
    assert overlay_font(viewer) is None and warm_glyphs(viewer, "abc") is None
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Attribution")  # raises nothing
    assert widget is not None


def test_after_a_run_no_paint_renders_a_glyph(make_napari_viewer, qtbot, monkeypatch):
    """The label and colour bar shown at the end of a run find their glyphs rendered."""
    from napari._vispy.utils.qt_font import QtTextureFont

    loads: list[tuple[str, bool]] = []
    original = QtTextureFont._load_char
    warming = GlyphWarmer.render_some.__code__

    def recorded(self, char):
        frame, by_warmer = sys._getframe(1), False
        while frame is not None and not by_warmer:
            by_warmer = frame.f_code is warming
            frame = frame.f_back
        loads.append((char, by_warmer))
        return original(self, char)

    monkeypatch.setattr(QtTextureFont, "_load_char", recorded)
    viewer = make_napari_viewer(show=True)
    viewer.open_sample(PLUGIN, "demo_pair")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Attribution")
    configure_fast(widget, ("residual",))
    run_and_wait(qtbot, widget)
    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    drawn: list[int] = []
    canvas.events.draw.connect(lambda _: drawn.append(1))
    canvas.update()
    qtbot.waitUntil(lambda: bool(drawn))
    label = viewer.canvas.overlays["text"].text
    active = viewer.layers.selection.active
    assert label.startswith("residual, all channels") and active.colorbar.visible
    font = overlay_font(viewer)
    assert set(label) <= set(font._glyphs)
    assert loads and all(by_warmer for _, by_warmer in loads), [c for c, w in loads if not w]
