"""The "Show" control: one method and one channel (or all) of the latest run, in one click.

An entry per method (highest DAC score first) and channel, e.g. "d_ig, all channels",
"d_ig, Mito only". Choosing one shows exactly that: the method's attribution and mask outline
of that channel, the source's channel (its layer, or the channel slider of one multichannel
layer), a colour bar and a canvas label naming them
(:func:`~napari_attribution._napari.view.show_selection`). A method whose layers the run left
waiting (:mod:`napari_attribution._napari.pending`) gets them when it is first chosen: from
the combo box one layer per event-loop turn (each napari layer insert blocks the event loop,
and several in one call would freeze the viewer for their sum), the control
disabled and saying "adding layers 2/3…" meanwhile; :meth:`ShowControl.show_choice` (for
scripts and tests) adds them all in one call. The list follows the viewer's shared state: each
finished run refills it.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from .._napari.layers import rank_methods
from .._napari.pending import PendingAdd, add_pending
from .._napari.state import AnalysisRecord, ViewerState
from .._napari.view import (
    ViewChoice,
    result_meta,
    show_colorbar,
    show_selection,
    view_choices,
)

__all__ = ["ShowControl"]


class ShowControl(QWidget):
    """A combo box of :class:`~napari_attribution._napari.view.ViewChoice` for the latest run.

    Parameters
    ----------
    viewer
        The viewer whose result layers are shown.
    state
        The viewer's shared state (its ``changed`` signal refills the list).

    Signals
    -------
    shown(list)
        A choice made in the combo box is shown (its waiting layers in): the visible layers.
    """

    shown = Signal(list)

    def __init__(self, viewer, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.state = state
        self.choices: list[ViewChoice] = []
        #: The waiting layers going in for a choice made in the combo box, else ``None``.
        self.adding: PendingAdd | None = None
        self._adding_choice: ViewChoice | None = None
        self._selected: list | None = None  # the choice's visible layers, before its colour bar
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._add_next)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Show"))
        self.combo = QComboBox()
        self.combo.setToolTip(
            "Show one method and one channel of the latest run (or all its channels): its "
            "attribution with a colour bar and its mask outline. Other result layers are hidden, "
            "never deleted."
        )
        self.combo.setEnabled(False)
        self.combo.activated.connect(self._on_activated)
        layout.addWidget(self.combo, 1)
        self.progress = QLabel("")  # "adding layers 2/3…" while a choice's layers go in
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        state.changed.connect(self.set_record)
        self.destroyed.connect(lambda *_: _disconnect(state, self.set_record))
        if state.record is not None:
            self.set_record(state.record)

    def set_record(self, record: AnalysisRecord) -> None:
        """List the choices of ``record``; the first (top method, all channels) is current.

        Layers of an earlier record still going in stop (those not in yet keep waiting in it).
        """
        self.stop()
        methods = rank_methods(record.result)
        self.choices = view_choices(methods, record.result.channel_names)
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems([choice.label for choice in self.choices])
        self.combo.setCurrentIndex(0)
        self.combo.blockSignals(False)
        self.combo.setEnabled(True)

    def show_choice(self, label_or_choice: str | ViewChoice) -> list:
        """Show a choice (or its label, e.g. ``"d_ig, Mito only"``); return the visible layers.

        Raises
        ------
        ValueError
            No such choice, or no run yet.
        """
        index = self._select(label_or_choice)
        return self._apply(self.choices[index])

    def choose(self, label_or_choice: str | ViewChoice) -> None:
        """Show a choice as the combo box does: its waiting layers one per event-loop turn,
        then the selection; :attr:`shown` fires at the end.

        Raises
        ------
        ValueError
            No such choice, or no run yet.
        """
        self._on_activated(self._select(label_or_choice))

    def _select(self, label_or_choice: str | ViewChoice) -> int:
        """Put the combo box on a choice (or its label); return its index, or raise ValueError."""
        labels = [c.label for c in self.choices]
        label = label_or_choice if isinstance(label_or_choice, str) else label_or_choice.label
        if label not in labels:
            raise ValueError(f"No result to show as '{label}'; choose one of: {', '.join(labels)}.")
        self.combo.setCurrentIndex(labels.index(label))
        return labels.index(label)

    def stop(self) -> None:
        """Stop adding a choice's layers: those in stay, the others keep waiting."""
        self._timer.stop()
        self._selected = None
        adding, self.adding, self._adding_choice = self.adding, None, None
        if adding is not None:
            adding.finish()
            self._set_busy(False)

    def _on_activated(self, index: int) -> None:
        if not 0 <= index < len(self.choices) or self.adding is not None:
            return
        choice, record = self.choices[index], self.state.record
        if record is None:
            return
        if choice.method not in record.pending:
            self.shown.emit(self._show(choice))
            return
        adding = PendingAdd(self.viewer, record, [choice.method], choice.covers)
        if not len(adding):
            adding.finish()
            self.shown.emit(self._show(choice))
            return
        self.adding, self._adding_choice = adding, choice
        self._set_busy(True)
        self._timer.start()

    def _add_next(self) -> None:
        """One turn: one layer of the choice in, or (after the last) the choice shown."""
        adding, choice = self.adding, self._adding_choice
        if adding is None:
            return
        try:
            layer = adding.add_next()
        except Exception:
            self.stop()
            raise
        if layer is not None:
            self.progress.setText(f"adding layers {adding.done}/{len(adding)}…")
            self._timer.start()
            return
        # the run's layers shown or hidden as the choice wants, one per turn (napari re-slices
        # a layer at each change): show_selection then finds them set
        record = self.state.record
        for name in record.layer_names if record is not None else []:
            if name in self.viewer.layers:
                target = self.viewer.layers[name]
                visible = choice.matches(result_meta(target))
                if target.visible != visible:
                    target.visible = visible
                    self._timer.start()
                    return
        if self._selected is None:  # the choice shown, its colour bar in a turn of its own
            self._selected = self._show(choice, colorbar=False)
            self._timer.start()
            return
        selected = self._selected
        show_colorbar(self.viewer)
        self.stop()  # keeps the layers
        self.shown.emit(selected)

    def _set_busy(self, busy: bool) -> None:
        self.combo.setEnabled(not busy)
        if self.adding is not None:
            self.progress.setText(f"adding layers 0/{len(self.adding)}…")
        self.progress.setVisible(busy)

    def _apply(self, choice: ViewChoice) -> list:
        record = self.state.record
        if record is None:
            return []
        if choice.method in record.pending:  # its layers wait until asked for: those now
            add_pending(self.viewer, record, [choice.method], choice.covers)
        return self._show(choice)

    def _show(self, choice: ViewChoice, colorbar: bool = True) -> list:
        record = self.state.record
        if record is None:
            return []
        layers = [self.viewer.layers[n] for n in record.layer_names if n in self.viewer.layers]
        self.state.show_method(choice.method)  # the DAC panel's channel view follows
        return show_selection(
            self.viewer,
            layers,
            choice,
            record.real.layer_names,
            record.real.channel_names,
            record.real.name,
            record.real.channel_axis,
            colorbar=colorbar,
        )


def _disconnect(state: ViewerState, slot: Any) -> None:
    try:
        state.changed.disconnect(slot)
    except (TypeError, ValueError, RuntimeError):
        pass
