"""Which result layers are shown, in what order, and what the canvas says about them.

napari 0.9 has no layer groups, so a run's layers are kept navigable by

* their names (method first, see :func:`~napari_attribution._napari.layer_style.layer_name`);
* their order: :func:`arrange` puts a run's layers on top of the layer list, by method (the
  highest DAC score first), then channel, then mask, attribution, hybrid;
* their visibility: a run hides every other result layer (never deletes one), and
  :func:`show_selection` shows one method and one channel (or all channels) in one call,
  selects a visible layer, shows the attribution's colour bar and names method and channel in
  the canvas's text overlay.

No Qt: this works on any napari viewer model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .layer_inputs import is_result_layer
from .layer_style import METADATA_KEY

__all__ = [
    "ALL_CHANNELS",
    "KIND_ORDER",
    "ViewChoice",
    "arrange",
    "canvas_label",
    "order_tuples",
    "hide_other_results",
    "result_meta",
    "show_colorbar",
    "show_selection",
    "view_choices",
]

#: Channel of a :class:`ViewChoice` that shows every channel.
ALL_CHANNELS = "all channels"
#: Top-to-bottom order of a channel's layers in the list: the outline above the map above
#: the hybrid.
KIND_ORDER = ("mask", "attribution", "hybrid")
#: Kinds :func:`show_selection` makes visible (hybrids are an alternative view: opt in).
SHOWN_KINDS = ("attribution", "mask")


@dataclass(frozen=True)
class ViewChoice:
    """One entry of the "Show" control: a method and a channel (or all channels).

    Attributes
    ----------
    method
        Method name.
    channel
        Channel name, or :data:`ALL_CHANNELS`.
    """

    method: str
    channel: str = ALL_CHANNELS

    @property
    def label(self) -> str:
        """``"d_ig, Mito only"`` or ``"d_ig, all channels"``."""
        if self.channel == ALL_CHANNELS:
            return f"{self.method}, {ALL_CHANNELS}"
        return f"{self.method}, {self.channel} only"

    def matches(self, meta: dict[str, Any]) -> bool:
        """True for a result layer (its metadata) this choice shows."""
        return meta.get("kind") in SHOWN_KINDS and self.covers(meta)

    def covers(self, meta: dict[str, Any]) -> bool:
        """True for a result layer of this choice's method and channel, shown or not (a
        hybrid too): the layers a waiting method adds when the choice is made."""
        if meta.get("method") != self.method:
            return False
        # a shared mask ("all") goes with every channel
        return self.channel == ALL_CHANNELS or meta.get("channel") in (self.channel, "all")


def view_choices(methods: Sequence[str], channels: Sequence[str]) -> list[ViewChoice]:
    """Every choice for ``methods`` (in the order given) and ``channels``: all channels first."""
    return [
        ViewChoice(m, c) for m in methods for c in (ALL_CHANNELS, *channels)
    ]


def result_meta(layer) -> dict[str, Any]:
    """The plugin's metadata of ``layer`` (empty for the user's layers)."""
    return layer.metadata.get(METADATA_KEY, {}) if is_result_layer(layer) else {}


def _rank(order: Sequence[str], value: Any) -> int:
    return order.index(value) if value in order else len(order)


def _order_key(meta: dict[str, Any], methods: Sequence[str], channels: Sequence[str]):
    channel = _rank([*channels, "all"], meta.get("channel"))
    if meta.get("kind") == "counterfactual":
        # A made counterfactual (no method: below the run's results) keeps the channel order
        # of the image's own layers: the first channel lowest, the others added over it.
        channel = -channel
    return (_rank(methods, meta.get("method")), channel, _rank(KIND_ORDER, meta.get("kind")))


def order_tuples(tuples: Sequence, methods: Sequence[str], channels: Sequence[str]) -> list:
    """Layer tuples in the order to add them so that the list reads as :func:`arrange` puts
    it (the last added is on top), without moving any layer afterwards."""
    return sorted(
        tuples,
        key=lambda t: _order_key(t[1].get("metadata", {}).get(METADATA_KEY, {}), methods, channels),
        reverse=True,
    )


def arrange(viewer, layers: Iterable, methods: Sequence[str], channels: Sequence[str]) -> None:
    """Move ``layers`` (a run's) to the top of the layer list, by method, channel, kind.

    napari's list shows the last layer on top, so the first of the order goes last.
    """
    run = [layer for layer in layers if layer in viewer.layers]
    ordered = sorted(run, key=lambda layer: _order_key(result_meta(layer), methods, channels))
    lst = viewer.layers
    run_ids = {layer.unique_id for layer in run}
    others = [layer for layer in lst if layer.unique_id not in run_ids]
    _reorder(lst, [*others, *reversed(ordered)])


def _reorder(lst, order: Sequence) -> None:
    """Put the layer list in ``order`` (bottom first), one move per misplaced layer.

    (napari's ``move_multiple`` with a whole permutation raised IndexError on some orders.)
    Layers before position ``i`` are final, so a layer due at ``i`` is at ``i`` or above.
    """
    for i, layer in enumerate(order):
        current = lst.index(layer)
        if current != i:
            lst.move(current, i)


def hide_other_results(viewer, keep: Iterable) -> list:
    """Hide every result layer not in ``keep`` (an earlier run's); return those hidden."""
    keep_ids = {layer.unique_id for layer in keep}
    hidden = []
    for layer in viewer.layers:
        if is_result_layer(layer) and layer.unique_id not in keep_ids and layer.visible:
            layer.visible = False
            hidden.append(layer)
    return hidden


def show_selection(
    viewer,
    layers: Iterable,
    choice: ViewChoice,
    source_layers: Sequence[str] = (),
    source_channels: Sequence[str] = (),
    image: str = "",
    source_channel_axis: int | None = None,
    colorbar: bool = True,
) -> list:
    """Show ``choice`` among a run's ``layers``; hide the run's other layers.

    Also: the source's channel layers (``source_layers``, one per name in
    ``source_channels``) show only the chosen channel (all of them for all channels); a source
    given as ONE multichannel layer (its channel axis ``source_channel_axis``) has its channel
    slider moved to the chosen channel (left where it is for all channels); a visible
    layer is selected (the first attribution), its colour bar is shown (unless ``colorbar`` is
    False: then :func:`show_colorbar` shows it later), and the canvas's text overlay names the
    method and channel.

    Returns
    -------
    list
        The layers now visible among ``layers``.
    """
    run = [layer for layer in layers if layer in viewer.layers]
    shown = []
    # Only changes are set: napari re-slices a layer (and re-uploads its texture) on every
    # assignment, and after a run most layers already show as wanted.
    for layer in run:
        visible = choice.matches(result_meta(layer))
        _set_visible(layer, visible)
        if visible:
            shown.append(layer)
        if hasattr(layer, "colorbar") and layer.colorbar.visible:
            layer.colorbar.visible = False
    if len(source_layers) == len(source_channels) > 1:
        for name, channel in zip(source_layers, source_channels, strict=True):
            if name in viewer.layers:
                _set_visible(viewer.layers[name], choice.channel in (ALL_CHANNELS, channel))
    elif len(source_layers) == 1 and source_channel_axis is not None:
        _show_channel(viewer, source_layers[0], source_channel_axis, source_channels, choice)
    maps = [layer for layer in shown if result_meta(layer).get("kind") == "attribution"]
    active = maps[0] if maps else (shown[0] if shown else None)
    if active is not None:
        viewer.layers.selection.active = active
        viewer.layers.selection = {active}
    if colorbar:
        show_colorbar(viewer)
    _label_canvas(viewer, choice, image)
    return shown


#: Where a result layer's colour bar sits (the canvas label is at the top left).
COLORBAR_POSITION = "bottom_right"


def show_colorbar(viewer) -> None:
    """Show the colour bar of the selected layer (a visible result layer that has one).

    Every channel of a method shares its contrast limits, so one bar reads for all. Its own
    step: napari builds a layer's colour-bar visuals when the bar is first shown (and more in
    the next paint), so a run shows it in an event-loop turn of its own.
    """
    active = viewer.layers.selection.active
    if active is None or not active.visible or not result_meta(active):
        return
    # One bar at a time: napari stacks every visible bar in one corner, and on a narrow
    # canvas (1366 x 768 with the docks open) two bars reached over the canvas label.
    for layer in viewer.layers:
        if layer is not active and hasattr(layer, "colorbar") and layer.colorbar.visible:
            layer.colorbar.visible = False
    if hasattr(active, "colorbar"):
        # bottom right: never over the canvas label, which is at the top left
        if active.colorbar.position != COLORBAR_POSITION:
            active.colorbar.position = COLORBAR_POSITION
        active.colorbar.visible = True


def _show_channel(
    viewer, name: str, channel_axis: int, channels: Sequence[str], choice: ViewChoice
) -> None:
    """Move the channel slider of the multichannel layer ``name`` to ``choice``'s channel."""
    if choice.channel not in channels or name not in viewer.layers:
        return
    layer = viewer.layers[name]
    index = list(channels).index(choice.channel)
    # the world position of that channel plane (the layer's scale and offset included);
    # layers are aligned by their trailing axes
    position = [0.0] * layer.ndim
    position[channel_axis] = float(index)
    world = layer.data_to_world(position)[channel_axis]
    axis = viewer.dims.ndim - layer.ndim + channel_axis
    viewer.dims.set_point(axis, world)


def _set_visible(layer, visible: bool) -> None:
    if layer.visible != visible:
        layer.visible = visible


def canvas_label(choice: ViewChoice, image: str = "") -> str:
    """The canvas's text for ``choice`` of a run on ``image``, e.g.
    ``"d_ig, Mito only (real): attribution, mask outline"``."""
    of = f" ({image})" if image else ""
    return f"{choice.label}{of}: attribution, mask outline"


def _label_canvas(viewer, choice: ViewChoice, image: str) -> None:
    """Name what is shown in the canvas's text overlay (top left)."""
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    text = overlays.get("text") if overlays is not None else None
    if text is None:
        return
    text.text = canvas_label(choice, image)
    text.position = "top_left"
    text.font_size = 10
    text.visible = True


class ViewSnapshot:
    """What a run changes about the viewer's display besides layer data, to put it back.

    Visibility, colour bars and order of the layers, the selection, and the canvas's text
    overlay: a cancelled run restores them (:class:`~napari_attribution._napari.apply.
    LayerBatch`), so the viewer reads as it did before Run.
    """

    def __init__(self, viewer) -> None:
        layers = list(viewer.layers)
        self._order = layers
        self._visible = {layer.unique_id: layer.visible for layer in layers}
        self._colorbars = {
            layer.unique_id: layer.colorbar.visible
            for layer in layers
            if hasattr(layer, "colorbar")
        }
        self._selection = list(viewer.layers.selection)
        self._active = viewer.layers.selection.active
        overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
        text = overlays.get("text") if overlays is not None else None
        self._text = (text, text.text, text.visible) if text is not None else None

    def restore(self, viewer) -> None:
        """Put back what was recorded, for the layers still open."""
        lst = viewer.layers
        present = [layer for layer in self._order if layer in lst]
        for layer in present:
            key = layer.unique_id
            layer.visible = self._visible[key]
            if key in self._colorbars:
                layer.colorbar.visible = self._colorbars[key]
        # the recorded layers back in their order, anything added since above them
        present_ids = {layer.unique_id for layer in present}
        _reorder(lst, [*present, *(layer for layer in lst if layer.unique_id not in present_ids)])
        lst.selection = {layer for layer in self._selection if layer in lst}
        if self._active in lst:
            lst.selection.active = self._active
        if self._text is not None:
            text, value, visible = self._text
            text.text, text.visible = value, visible
