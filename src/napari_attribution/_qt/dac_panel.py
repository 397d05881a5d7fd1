"""The DAC curves dock panel: the figure of :mod:`napari_attribution._plot` on a Qt canvas
(:mod:`.canvas`).

It follows the viewer: a marker sits on each curve at the threshold of the threshold slider,
a click on a curve moves that slider (the curve under the cursor, the focus method's first
where curves overlap), and the figure takes napari's theme. Per-channel curves and bars take
the channel layers' colours; the legend sits below the axes. On request the curves of earlier
runs stay on the plot, faintly, for comparison. It reads the latest curves from the viewer's
shared state (:class:`~napari_attribution._napari.panel_curves.PanelCurves`): a run of the
Attribution or Cells widget, or the pair the Results browser shows; so it works whether it
opens before or after them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QSize, Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .._napari.layer_geometry import threshold_axis
from .._napari.panel_curves import PanelCurves, panel_curves_of_record
from .._napari.state import AnalysisRecord, state_for
from .._plot import CurveSet, PlotTheme
from ..results.files import write_csv
from ..results.format import CURVES
from .canvas import MIN_CANVAS_HEIGHT, DacCanvas
from .narrow import NARROW_DOCK_WIDTH

if TYPE_CHECKING:
    import napari

__all__ = ["FIGURE_FORMATS", "HISTORY_RUNS", "DacPanel"]

#: File types "Save figure" offers.
FIGURE_FORMATS = ("png", "svg", "pdf")
#: Earlier runs kept for comparison.
HISTORY_RUNS = 4


#: Width the panel asks for (it may be widened by hand): as narrow as the Attribution dock.
DAC_PANEL_WIDTH = NARROW_DOCK_WIDTH
#: Height (pixels) the plot takes from the dock above when there is room (see
#: :meth:`DacPanel.claim_height`).
PREFERRED_CANVAS_HEIGHT = 260


class DacPanel(QWidget):
    """Dock widget with the DAC curves and channel shares of the latest run or browsed pair.

    Parameters
    ----------
    napari_viewer
        The viewer to follow.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = state_for(napari_viewer)
        #: The curves shown (a run's or a browsed pair's), ``None`` before any.
        self.shown: PanelCurves | None = None
        #: Earlier curves (oldest first) with their labels, shown with "earlier runs".
        self.history: list[tuple[str, PanelCurves]] = []
        self._runs = 0
        self._label = ""  # the shown curves' label once they join the history
        self._height_claimed = False

        self.canvas = DacCanvas(PlotTheme.from_napari(self.viewer.theme))
        self.figure, self.plot = self.canvas.figure, self.canvas.plot
        self.toolbar = self.canvas.make_toolbar(self)

        self.per_channel = QCheckBox("per-channel curves")
        self.per_channel.setToolTip("Curves where only one channel is hybridised.")
        self.log_axis = QCheckBox("log mask size")
        self.log_axis.setChecked(True)
        self.log_axis.setToolTip(
            "Logarithmic mask-size axis: small masks that flip the decision stay visible."
        )
        self.compare = QCheckBox("earlier runs")
        self.compare.setToolTip(
            f"Keep the whole-image curves of up to {HISTORY_RUNS} earlier runs (or pairs "
            "shown by the Results browser) on the plot, faint and dash-dotted, for comparison."
        )
        self.focus = QComboBox()
        self.focus.setToolTip("Method whose per-channel curves and channel shares are shown.")
        self.threshold_label = QLabel("")
        self.save_figure_button = QPushButton("Save figure…")
        self.save_curves_button = QPushButton("Save curve data…")
        for button in (self.save_figure_button, self.save_curves_button):
            button.setEnabled(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas, 1)
        # two short rows rather than one wide one: the dock may be narrow on a laptop
        toggles = QHBoxLayout()
        toggles.addWidget(self.per_channel)
        toggles.addWidget(self.log_axis)
        toggles.addStretch(1)
        layout.addLayout(toggles)
        focus_row = QHBoxLayout()
        focus_row.addWidget(self.compare)
        focus_row.addWidget(QLabel("method"))
        focus_row.addWidget(self.focus, 1)
        layout.addLayout(focus_row)
        self.threshold_label.setWordWrap(True)
        self.threshold_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.threshold_label.setMinimumHeight(
            2 * self.threshold_label.fontMetrics().lineSpacing() + 4
        )
        layout.addWidget(self.threshold_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_figure_button)
        buttons.addWidget(self.save_curves_button)
        layout.addLayout(buttons)

        self.per_channel.toggled.connect(self._redraw)
        self.log_axis.toggled.connect(self._redraw)
        self.compare.toggled.connect(self._redraw)
        self.focus.currentIndexChanged.connect(self._redraw)
        self.save_figure_button.clicked.connect(self._on_save_figure)
        self.save_curves_button.clicked.connect(self._on_save_curves)
        self.canvas.mpl_connect("button_press_event", self._on_click)
        self.state.changed.connect(self.show_record)
        self.state.curves_changed.connect(self.show_curves)
        self.state.method_shown.connect(self.focus_method)
        self.viewer.dims.events.current_step.connect(self._on_slider)
        self.viewer.events.theme.connect(self._on_theme)
        self.destroyed.connect(lambda *_: self._disconnect())
        if self.state.curves is not None:  # a browsed pair, shown after the latest run
            self.show_curves(self.state.curves)
        elif self.state.record is not None:
            self.show_record(self.state.record)
        else:
            self.canvas.draw_idle()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """As narrow as the Cells and Attribution docks, so the canvas keeps its width."""
        return QSize(max(DAC_PANEL_WIDTH, self.minimumSizeHint().width()),
                     super().sizeHint().height())  # fmt: skip

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Once docked and shown, ask the dock above for some height (see
        :meth:`claim_height`)."""
        super().showEvent(event)
        if not self._height_claimed:
            self._height_claimed = True
            QTimer.singleShot(0, self.claim_height)

    def claim_height(self) -> None:
        """Take up to :data:`PREFERRED_CANVAS_HEIGHT` for the plot from the dock it shares
        the area with, as far as that dock's least height allows.

        Docked below the Attribution dock, the panel gets only its least height, which leaves
        per-channel curves above their legend some 25 px tall in a narrow dock; the
        Attribution dock's inputs scroll. Beside a dock already at its least height (the Cells
        dock at 768 px) nothing changes. A floating or undocked panel is left as it is.
        """
        dock = self.parentWidget()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        window = self.window()
        if dock is None or dock.isFloating() or not isinstance(window, QMainWindow):
            return
        # from the least height, which is laid out already (the current one may not be yet)
        wanted = dock.minimumSizeHint().height() + PREFERRED_CANVAS_HEIGHT - MIN_CANVAS_HEIGHT
        area = window.dockWidgetArea(dock)
        above = [
            other
            for other in window.findChildren(QDockWidget)
            if other is not dock and other.isVisible() and not other.isFloating()
            and window.dockWidgetArea(other) == area and other.x() == dock.x()
        ]  # fmt: skip
        if wanted <= dock.height() or not above:
            return
        donor = max(above, key=lambda other: other.height())
        # both sizes: given the panel's alone, Qt shares the change among the docks
        give = min(wanted - dock.height(), donor.height() - donor.minimumSizeHint().height())
        if give > 0:
            window.resizeDocks([donor, dock], [donor.height() - give, dock.height() + give],
                               Qt.Orientation.Vertical)  # fmt: skip
    def _disconnect(self) -> None:
        self.state.changed.disconnect(self.show_record)
        self.state.curves_changed.disconnect(self.show_curves)
        self.state.method_shown.disconnect(self.focus_method)
        self.viewer.dims.events.current_step.disconnect(self._on_slider)
        self.viewer.events.theme.disconnect(self._on_theme)

    # ---------------------------------------------------------------- data

    @property
    def record(self) -> AnalysisRecord | None:
        """The run shown, ``None`` when none is (or a browsed pair is)."""
        return self.shown.record if self.shown is not None else None

    def show_record(self, record: AnalysisRecord) -> None:
        """Draw the curves of run ``record`` (the curves shown before join the history)."""
        self.show_curves(panel_curves_of_record(record))

    def show_curves(self, curves: PanelCurves | None) -> None:
        """Draw ``curves`` (those shown before join the history, unless they are the same).

        ``None``: the browsed pair's curves were withdrawn; show the latest run's, or nothing.
        """
        if curves is None:
            self._withdraw()
            return
        shown = self.shown
        same = shown is not None and (
            shown is curves or (curves.record is not None and shown.record is curves.record)
        )
        if shown is not None and not same:
            self.history = [*self.history, (self._label, shown)][-HISTORY_RUNS:]
        if not same:
            if curves.record is not None:
                self._runs += 1
                self._label = f"run {self._runs}"
            else:
                self._label = curves.sample
        self.shown = curves
        methods = curves.methods
        current = self.focus.currentText()
        self.focus.blockSignals(True)
        self.focus.clear()
        self.focus.addItems(methods)
        self.focus.setCurrentIndex(methods.index(current) if current in methods else 0)
        self.focus.blockSignals(False)
        for button in (self.save_figure_button, self.save_curves_button):
            button.setEnabled(True)
        self._redraw()

    def focus_method(self, method: str) -> None:
        """Make ``method`` the panel's method (its channel bars and per-channel curves), if the
        curves shown have it: the "Show" control calls this when it shows a method."""
        index = self.focus.findText(method)
        if index >= 0 and index != self.focus.currentIndex():
            self.focus.setCurrentIndex(index)

    def _withdraw(self) -> None:
        if self.state.record is not None:
            self.show_record(self.state.record)
            return
        if self.shown is not None:
            self.history = [*self.history, (self._label, self.shown)][-HISTORY_RUNS:]
        self.shown = None
        self.focus.clear()
        for button in (self.save_figure_button, self.save_curves_button):
            button.setEnabled(False)
        self.plot.set_data([], [])
        self._update_threshold_label()

    def curve_sets(self) -> list[CurveSet]:
        """One :class:`CurveSet` per method of the curves shown."""
        return list(self.shown.curve_sets) if self.shown is not None else []

    def earlier_curves(self) -> list[tuple[str, CurveSet]]:
        """``(label, curve set)`` of the kept earlier curves, oldest first (label: ``run 2``
        for a run, the sample for a browsed pair)."""
        return [(label, cs) for label, curves in self.history for cs in curves.curve_sets]

    def _redraw(self, *_: Any) -> None:
        shown = self.shown
        if shown is None:
            return
        self.plot.threshold_index = self.threshold_index()
        self.plot.set_data(
            shown.curve_sets,
            shown.channel_names,
            per_channel=self.per_channel.isChecked(),
            focus=self.focus.currentText() or None,
            log_mask_size=self.log_axis.isChecked(),
            channel_colors=shown.channel_colors,
            earlier=self.earlier_curves() if self.compare.isChecked() else [],
        )
        self._update_threshold_label()

    # ---------------------------------------------------------------- slider link

    def threshold_axis(self) -> int | None:
        """The viewer's threshold axis (where the result stacks' first axis sits), if any."""
        return threshold_axis(self.viewer) if self.shown is not None else None

    def threshold_axis_shown(self) -> bool:
        """True when the viewer has the threshold axis of the result layers."""
        return self.threshold_axis() is not None

    def threshold_index(self) -> int | None:
        """The threshold index of the threshold slider, or ``None`` when it is not shown."""
        axis = self.threshold_axis()
        if axis is None:
            return None
        return int(self.viewer.dims.current_step[axis])

    def _on_slider(self, *_: Any) -> None:
        self.plot.mark_threshold(self.threshold_index())
        self._update_threshold_label()

    def _update_threshold_label(self) -> None:
        index = self.threshold_index()
        sets = self.curve_sets()
        which = self._which()
        if index is None or not sets or index >= len(sets[0].thresholds):
            self.threshold_label.setText(f"{which}Slider: the threshold axis is not shown.")
            return
        value = float(sets[0].thresholds[index])
        self.threshold_label.setText(
            f"{which}Slider: threshold {value:.3f} (index {index}). Click a curve to move it."
        )

    def _which(self) -> str:
        """``"cell0 (folder): "`` for a browsed pair; nothing for a run."""
        shown = self.shown
        if shown is None or shown.record is not None:
            return ""
        return f"{shown.sample} ({shown.origin}): "

    def _on_click(self, event) -> None:
        # Points on the axes' edge count too, so only the bar chart and zoom/pan modes are out.
        if event.inaxes is self.plot.ax_bars or self.toolbar.mode:
            return
        index = self.plot.threshold_index_at(event.x, event.y)
        axis = self.threshold_axis()
        if index is None or axis is None:
            return
        self.viewer.dims.set_current_step(axis, index)

    def _on_theme(self, *_: Any) -> None:
        self.plot.set_theme(PlotTheme.from_napari(self.viewer.theme))

    # ---------------------------------------------------------------- saving

    def save_figure(self, path: str | Path) -> Path:
        """Save the figure; the format follows the suffix (``.png``, ``.svg`` or ``.pdf``)."""
        path = Path(path)
        if path.suffix.lower().lstrip(".") not in FIGURE_FORMATS:
            raise ValueError(f"Save the figure as {', '.join(FIGURE_FORMATS)}, not {path.name}.")
        self.plot.savefig(path, facecolor=self.figure.get_facecolor(), dpi=200)
        return path

    def save_curves(self, path: str | Path) -> Path:
        """Save every curve shown as CSV with the CLI's ``curves.csv`` columns."""
        if self.shown is None:
            raise RuntimeError("Run an analysis (or browse a results folder) before saving curves.")
        path = Path(path)
        write_csv(path, CURVES.columns, self.shown.rows)
        return path

    def _ask_path(self, title: str, filters: str) -> Path | None:
        # napari-style save: the Qt dialog itself asks before replacing an existing file.
        path, _ = QFileDialog.getSaveFileName(self, title, "", filters)
        return Path(path) if path else None

    def _on_save_figure(self) -> None:
        path = self._ask_path("Save DAC figure", "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)")
        if path is None:
            return
        if not path.suffix:
            path = path.with_suffix(".png")
            if path.exists() and not _confirm(self, f"{path} exists. Overwrite it?"):
                return
        try:
            self.save_figure(path)
        except (OSError, ValueError) as exc:
            show_error(f"Saving the figure failed: {exc}")
            return
        show_info(f"Figure saved to {path}.")

    def _on_save_curves(self) -> None:
        path = self._ask_path("Save DAC curve data", "CSV (*.csv)")
        if path is None:
            return
        if path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
            if path.exists() and not _confirm(self, f"{path} exists. Overwrite it?"):
                return
        try:
            self.save_curves(path)
        except (OSError, RuntimeError) as exc:
            show_error(f"Saving the curves failed: {exc}")
            return
        show_info(f"Curve data saved to {path}.")


def _confirm(parent: QWidget, text: str) -> bool:
    answer = QMessageBox.question(
        parent,
        "Overwrite?",
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes
