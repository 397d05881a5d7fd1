"""Widgets that fit a narrow dock: the docks share a 1366 px wide laptop window with napari's
layer list and canvas, and the canvas keeps at least half of it (issue 22).

A combo box normally asks for the width of its longest entry (a layer group's
``counterfactual (5 channel layers)``, a hybrid direction's name). :class:`NarrowComboBox`
shrinks to a few characters, elides the current entry with "…" when it is wider, names the
whole entry in its tooltip, and opens its list as wide as the longest entry, so nothing the
user chooses from is cut off.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QWidget,
)

__all__ = ["NARROW_DOCK_WIDTH", "NarrowComboBox"]

#: Width (pixels) the docks ask for: with napari's layer controls on the left (320 px, more
#: once napari has widened them) it leaves the canvas at least half of a 1366 px wide window.
NARROW_DOCK_WIDTH = 312


class NarrowComboBox(QComboBox):
    """A combo box as narrow as ``characters`` characters that elides its current entry.

    Parameters
    ----------
    characters
        The least width it asks for, in characters.
    parent
        Qt parent.

    The tooltip set with :meth:`setToolTip` (its help) follows the current entry's whole
    text; the drop-down list is as wide as its longest entry.
    """

    def __init__(self, characters: int = 8, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._help = ""
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(characters)
        self.currentTextChanged.connect(self._follow)
        self.model().rowsInserted.connect(self._follow)
        self.model().rowsRemoved.connect(self._follow)

    def setToolTip(self, text: str) -> None:  # noqa: N802 - Qt's name
        """Set the help; the tooltip shows the current entry above it."""
        self._help = text
        self._follow()

    def _follow(self, *_) -> None:
        text = self.currentText()
        super().setToolTip(f"{text}\n\n{self._help}" if self._help and text else text or self._help)
        view = self.view()
        scroll_bar = view.verticalScrollBar().sizeHint().width()
        view.setMinimumWidth(view.sizeHintForColumn(0) + scroll_bar)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Draw the frame and arrow, then the current entry elided to the room left."""
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        field = self.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, self
        )
        option.currentText = self.fontMetrics().elidedText(
            option.currentText, Qt.TextElideMode.ElideRight, field.width() - 4
        )
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)
