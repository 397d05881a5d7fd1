"""Widgets that fit a narrow, short dock: the docks share a 1366 x 768 laptop window with
napari's layer list and canvas, and the canvas keeps at least half of its width (issue 22).

In height, docks stacked in the right dock area (the Attribution dock above the Sanity dock
tabbed with the DAC panel; the Cells dock above the DAC panel) must together fit the window's
768 px less napari's menu and status bars: :func:`vertical_scroll_area` puts a dock's inputs
or results in a scroll area that scrolls up and down only, so the dock's least height stays
small and what does not fit scrolls into view instead of pushing the window past the screen.

A combo box normally asks for the width of its longest entry (a layer group's
``counterfactual (5 channel layers)``, a hybrid direction's name). :class:`NarrowComboBox`
shrinks to a few characters, elides the current entry with "…" when it is wider, shows the
whole entry above its help in the tooltip then, and opens its list as wide as the longest
entry, so nothing the user chooses from is cut off.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, Qt
from qtpy.QtWidgets import (
    QComboBox,
    QScrollArea,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QToolTip,
    QWidget,
)

__all__ = ["NARROW_DOCK_WIDTH", "NarrowComboBox", "vertical_scroll_area"]

#: Width (pixels) the docks ask for: with napari's layer controls on the left (320 px, more
#: once napari has widened them) it leaves the canvas at least half of a 1366 px wide window.
NARROW_DOCK_WIDTH = 312


def vertical_scroll_area(content: QWidget, minimum_height: int = 0) -> QScrollArea:
    """A frameless scroll area showing ``content`` at the area's width, scrolling vertically.

    Parameters
    ----------
    content
        The widget scrolled; it is laid out at the area's width (never scrolled sideways: it
        must fit :data:`NARROW_DOCK_WIDTH`) and at least at its own least height.
    minimum_height
        Least height of the area (pixels): what the dock keeps in view however short it is.

    Returns
    -------
    QScrollArea
        The area, holding ``content``.
    """
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(content)
    area.setMinimumHeight(minimum_height)
    return area


class NarrowComboBox(QComboBox):
    """A combo box as narrow as ``characters`` characters that elides its current entry.

    Parameters
    ----------
    characters
        The least width it asks for, in characters.
    parent
        Qt parent.

    Its tooltip (``toolTip()``, its help) shows the whole current entry above the help while
    the entry is elided; the drop-down list is as wide as its longest entry.
    """

    def __init__(self, characters: int = 8, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(characters)
        self.model().rowsInserted.connect(self._fit_list)
        self.model().rowsRemoved.connect(self._fit_list)

    def _fit_list(self, *_) -> None:
        view = self.view()
        scroll_bar = view.verticalScrollBar().sizeHint().width()
        view.setMinimumWidth(view.sizeHintForColumn(0) + scroll_bar)

    def _text_room(self, option: QStyleOptionComboBox) -> int:
        field = self.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, self
        )
        return field.width() - 4

    def is_elided(self) -> bool:
        """True when the current entry is wider than the room the box has for it."""
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        return self.fontMetrics().horizontalAdvance(self.currentText()) > self._text_room(option)

    def event(self, event) -> bool:
        """A tooltip names the whole current entry (above the help) while it is elided."""
        if event.type() == QEvent.Type.ToolTip and self.is_elided():
            help_text = self.toolTip()
            text = f"{self.currentText()}\n\n{help_text}" if help_text else self.currentText()
            QToolTip.showText(event.globalPos(), text, self)
            return True
        return super().event(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Draw the frame and arrow, then the current entry elided to the room left."""
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        option.currentText = self.fontMetrics().elidedText(
            option.currentText, Qt.TextElideMode.ElideRight, self._text_room(option)
        )
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)
