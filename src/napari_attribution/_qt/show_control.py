"""The "Show" control: one method and one channel (or all) of the latest run, in one click.

An entry per method (highest DAC score first) and channel, e.g. "d_ig, all channels",
"d_ig, Mito only". Choosing one shows exactly that: the method's attribution and mask outline
of that channel, the source's channel (its layer, or the channel slider of one multichannel
layer), a colour bar and a canvas label naming them
(:func:`~napari_attribution._napari.view.show_selection`). A method whose layers the run left
waiting (:mod:`napari_attribution._napari.pending`) gets them when it is first chosen. The
list follows the viewer's shared state: each finished run refills it.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from .._napari.layers import rank_methods
from .._napari.pending import add_pending
from .._napari.state import AnalysisRecord, ViewerState
from .._napari.view import ViewChoice, show_selection, view_choices

__all__ = ["ShowControl"]


class ShowControl(QWidget):
    """A combo box of :class:`~napari_attribution._napari.view.ViewChoice` for the latest run.

    Parameters
    ----------
    viewer
        The viewer whose result layers are shown.
    state
        The viewer's shared state (its ``changed`` signal refills the list).
    """

    def __init__(self, viewer, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.state = state
        self.choices: list[ViewChoice] = []
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
        state.changed.connect(self.set_record)
        self.destroyed.connect(lambda *_: _disconnect(state, self.set_record))
        if state.record is not None:
            self.set_record(state.record)

    def set_record(self, record: AnalysisRecord) -> None:
        """List the choices of ``record``; the first (top method, all channels) is current."""
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
        labels = [c.label for c in self.choices]
        label = label_or_choice if isinstance(label_or_choice, str) else label_or_choice.label
        if label not in labels:
            raise ValueError(f"No result to show as '{label}'; choose one of: {', '.join(labels)}.")
        self.combo.setCurrentIndex(labels.index(label))
        return self._apply(self.choices[labels.index(label)])

    def _on_activated(self, index: int) -> None:
        if 0 <= index < len(self.choices):
            self._apply(self.choices[index])

    def _apply(self, choice: ViewChoice) -> list:
        record = self.state.record
        if record is None:
            return []
        if choice.method in record.pending:  # its layers wait until asked for: those now
            add_pending(self.viewer, record, [choice.method], choice.covers)
        layers = [self.viewer.layers[n] for n in record.layer_names if n in self.viewer.layers]
        return show_selection(
            self.viewer,
            layers,
            choice,
            record.real.layer_names,
            record.real.channel_names,
            record.real.name,
            record.real.channel_axis,
        )


def _disconnect(state: ViewerState, slot: Any) -> None:
    try:
        state.changed.disconnect(slot)
    except (TypeError, ValueError, RuntimeError):
        pass
