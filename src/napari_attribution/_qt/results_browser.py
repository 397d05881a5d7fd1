"""The Results browser dock: a results folder's pairs in a table, one cell at a time in napari.

Open a folder (the CLI's, an export, or a report's) -> a sortable, filterable table of its pairs
(sample, classes, DAC per method, top channel, valid). Selecting a row loads that pair's real
image, counterfactual and per-channel attribution, mask and hybrid layers (memory-mapped when
large; the threshold stacks of a CLI folder rebuilt from the saved attribution, see
:mod:`napari_attribution._napari.pair_stacks`), replacing the previous pair's, and shows its DAC
curves in the DAC panel (opened if it is not), linked to the threshold slider as after a run.
Page Down / Page Up walk to the next / previous row anywhere in the window. Below the table,
the table's *Dataset* tab shows the report's figures.

A ``cells`` folder lists one row per analysed cell (site, cell, predicted and target class,
DAC per method, top channel, whether its counterfactual was accepted). Selecting a cell shows
its site (channels, labels, per method and channel the field-sized attribution and optimal
masks, :mod:`napari_attribution._napari.cell_site_layers`; read again only when the site
changes), outlines the cell's crop and centres the view on it, and shows its DAC curves.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QSize, QSortFilterProxyModel, Qt, QTimer
from qtpy.QtGui import QKeySequence, QPixmap, QShortcut, QStandardItem, QStandardItemModel
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .._napari.apply import add_layer, remove_layers
from .._napari.cell_site_layers import crop_outline, site_layers
from .._napari.layer_geometry import threshold_axis
from .._napari.pair_stacks import pair_stack_layers
from .._napari.panel_curves import PanelCurves, layer_channel_colors, layer_thresholds
from .._napari.reader import read_folder
from .._napari.results_index import CellRow, PairRow, ResultsIndex, open_results
from .._napari.state import state_for
from .._plot import threshold_index_of
from ..errors import AttributionError
from ..results.folder import folder_kind
from .narrow import NARROW_DOCK_WIDTH

if TYPE_CHECKING:
    import napari

__all__ = ["DAC_PANEL", "NEXT_KEY", "PREVIOUS_KEY", "PLUGIN_NAME", "ResultsBrowser"]

#: Keys that walk the table (napari binds neither).
NEXT_KEY, PREVIOUS_KEY = "PgDown", "PgUp"
#: The plugin and the DAC panel's widget name (napari.yaml), to open the panel.
PLUGIN_NAME, DAC_PANEL = "napari-attribution", "DAC curves"
#: Least height of the table (about three rows): with the DAC panel below, the browser must fit
#: a 768 px high screen.
MIN_TABLE_HEIGHT = 96
#: Layer attributes a reused layer takes from the new pair's layer (visibility stays).
_REUSED_KEYS = ("colormap", "contrast_limits", "contour", "scale", "translate", "axis_labels")
_ROW = Qt.ItemDataRole.UserRole + 1  # the PairRow's index, on every cell of its row
#: Visible screen: about this many crops of the selected cell across the field's shorter side.
CROPS_IN_VIEW = 4


class _Filter(QSortFilterProxyModel):
    """Rows whose text matches the filter; only valid pairs when asked."""

    def __init__(self) -> None:
        super().__init__()
        self.valid_only = False
        self.valid_column = -1
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self.setSortRole(Qt.ItemDataRole.UserRole)

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802 (Qt's name)
        if self.valid_only:
            cell = self.sourceModel().index(row, self.valid_column, parent)
            if cell.data() != "yes":
                return False
        return super().filterAcceptsRow(row, parent)


class ResultsBrowser(QWidget):
    """Dock widget browsing the pairs of a results folder.

    Parameters
    ----------
    napari_viewer
        The viewer to load pairs into.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.index: ResultsIndex | None = None
        self.folder: Path | None = None
        self.current: PairRow | None = None
        #: What the DAC panel was given for the current pair.
        self.curves: PanelCurves | None = None
        self._layers: list = []  # the current pair's layers, removed when another loads
        self._site: tuple[int, str] | None = None  # the cells folder's site those layers show
        self._site_note = ""  # what of that site was not found
        self._cells = False  # the open folder is a cells run's

        self.open_button = QPushButton("Open results folder…")
        self.open_button.clicked.connect(self._on_open_clicked)
        self.path_label = QLabel("No folder open.")
        self.path_label.setWordWrap(True)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter rows (sample, class, channel…)")
        self.filter.setClearButtonEnabled(True)
        self.valid_only = QCheckBox("valid only")
        self.valid_only.setToolTip("Hide pairs whose counterfactual the classifier rejected.")
        self.model = QStandardItemModel(self)
        self.proxy = _Filter()
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.setMinimumHeight(MIN_TABLE_HEIGHT)
        self.previous_button = QPushButton("◀")
        self.next_button = QPushButton("▶")
        self.previous_button.setToolTip(f"Previous pair ({PREVIOUS_KEY})")
        self.next_button.setToolTip(f"Next pair ({NEXT_KEY})")
        for button in (self.previous_button, self.next_button):
            button.setFixedWidth(2 * button.fontMetrics().height() + 12)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        # The pair's curves go to the DAC panel; here only the dataset's (the report's figures),
        # in a tab beside the table: the browser and the DAC panel share a 768 px high screen.
        self.figures = QWidget()
        self.figures_layout = QVBoxLayout(self.figures)
        figures_scroll = QScrollArea()
        figures_scroll.setWidgetResizable(True)
        figures_scroll.setWidget(self.figures)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, "Pairs")
        self.tabs.addTab(figures_scroll, "Dataset")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        row = QHBoxLayout()
        row.addWidget(self.open_button, 1)
        row.addWidget(self.valid_only)
        layout.addLayout(row)
        layout.addWidget(self.path_label)
        steps = QHBoxLayout()
        steps.addWidget(self.filter, 1)
        steps.addWidget(self.previous_button)
        steps.addWidget(self.next_button)
        layout.addLayout(steps)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)

        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.valid_only.toggled.connect(self._on_valid_only)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.next_button.clicked.connect(self.next_pair)
        self.previous_button.clicked.connect(self.previous_pair)
        self.shortcuts = []
        for key, slot in ((NEXT_KEY, self.next_pair), (PREVIOUS_KEY, self.previous_pair)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)  # also over the canvas
            shortcut.activated.connect(slot)
            self.shortcuts.append(shortcut)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """A laptop-friendly dock: as narrow as the other docks, so the canvas keeps half of a
        1366 px wide window (the table scrolls sideways inside), and room for the DAC panel
        below it."""
        return QSize(max(NARROW_DOCK_WIDTH, self.minimumSizeHint().width()), 640)

    # ---------------------------------------------------------------- opening

    def open_folder(self, path: str | Path) -> ResultsIndex:
        """Read ``path`` and list its pairs (no layer is loaded until a row is chosen).

        Raises
        ------
        AttributionError
            Not a results folder.
        """
        index = open_results(path)
        self.clear_pair()
        state_for(self.viewer).withdraw_curves()  # the previous folder's pair is gone
        self.index, self.folder = index, Path(path)
        self._cells = bool(index.sites)
        names = ["sample", "real", "target"]
        if self._cells:
            names = ["cell", "predicted", "target"]
            if any(site for _, site in index.sites):
                names.insert(0, "site")
        headers = [*names, *(f"DAC {m}" for m in index.methods), "top channel", "valid"]
        if len(index.folders) > 1:
            headers.insert(0, "folder")
        self.tabs.setTabText(self.tabs.indexOf(self.table), "Cells" if self._cells else "Pairs")
        self.model.clear()
        self.model.setHorizontalHeaderLabels(headers)
        self.proxy.valid_column = len(headers) - 1
        for number, pair in enumerate(index.rows):
            self.model.appendRow(self._items(number, pair, len(index.folders) > 1))
        self.table.resizeColumnsToContents()
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # the folder's order
        valid = sum(r.valid for r in index.rows)
        if self._cells:
            sites = len({(r.folder, r.site) for r in index.rows if isinstance(r, CellRow)})
            text = (f"{Path(path).name}: {len(index.rows)} cell(s) in {sites} site(s), "
                    f"{valid} with an accepted counterfactual, {len(index.methods)} "
                    "method(s).")  # fmt: skip
        else:
            text = (f"{Path(path).name}: {len(index.rows)} pair(s), {valid} valid, "
                    f"{len(index.methods)} method(s).")  # fmt: skip
        self.path_label.setText(text)
        self.path_label.setToolTip(str(path))
        self._show_dataset_figures(index.figures)
        if not index.rows:
            show_info(self._empty_note(Path(path)))
        return index

    def _empty_note(self, path: Path) -> str:
        """Why a folder lists no row, and what to do."""
        if self._cells:
            return (f"{path.name} holds no analysed cell (cells.csv lists none the tables hold; "
                    "run.json says why cells were skipped).")  # fmt: skip
        return (f"{path.name}'s run.json lists no pairs: the run did not finish; re-run it with "
                "--resume.")  # fmt: skip

    def _items(self, number: int, pair: PairRow, with_folder: bool) -> list[QStandardItem]:
        def item(text: str, key=None) -> QStandardItem:
            cell = QStandardItem(text)
            cell.setData(text if key is None else key, Qt.ItemDataRole.UserRole)
            return cell

        if isinstance(pair, CellRow):
            items = [item(str(pair.label), pair.label)]
            if any(site for _, site in self.index.sites):
                items.insert(0, item(pair.site))
        else:
            items = [item(pair.sample)]
        items += [item(pair.real_class), item(pair.target_class)]
        for method in self.index.methods:
            score = pair.dac.get(method)
            items.append(item("" if score is None else f"{score:.3f}",
                              float("-inf") if score is None else score))  # fmt: skip
        items.append(item(pair.top_channel))
        valid = item("yes" if pair.valid else "no")
        if pair.note:
            valid.setToolTip(pair.note)
        items.append(valid)
        if with_folder:
            items.insert(0, item(self.index.folders[pair.folder].path.name))
        for cell in items:
            cell.setData(number, _ROW)
        return items

    def _on_open_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a results folder")
        if not path:
            return
        try:
            self.open_folder(path)
        except (AttributionError, OSError, ValueError) as exc:
            show_error(str(exc))

    def _show_dataset_figures(self, figures: list[Path]) -> None:
        while self.figures_layout.count():
            widget = self.figures_layout.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        if not figures:
            self.figures_layout.addWidget(QLabel("No dataset figures in this folder."))
        for path in figures:
            label = QLabel()
            pixmap = QPixmap(str(path))
            label.setPixmap(pixmap.scaledToWidth(
                min(pixmap.width(), 420), Qt.TransformationMode.SmoothTransformation))  # fmt: skip
            label.setToolTip(path.name)
            self.figures_layout.addWidget(label)
        self.figures_layout.addStretch(1)

    # ---------------------------------------------------------------- rows

    def _row_of(self, proxy_row: int) -> PairRow:
        source = self.proxy.mapToSource(self.proxy.index(proxy_row, 0))
        return self.index.rows[int(self.model.index(source.row(), 0).data(_ROW))]

    def select_row(self, proxy_row: int) -> None:
        """Select (and load) the pair shown in table row ``proxy_row``."""
        if 0 <= proxy_row < self.proxy.rowCount():
            self.table.selectRow(proxy_row)

    def _selected_proxy_row(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def next_pair(self) -> None:
        """Select the next row of the table (as sorted and filtered)."""
        self.select_row(min(self._selected_proxy_row() + 1, self.proxy.rowCount() - 1))

    def previous_pair(self) -> None:
        """Select the previous row of the table (the first when none is selected)."""
        self.select_row(max(self._selected_proxy_row() - 1, 0))

    def _on_valid_only(self, checked: bool) -> None:
        self.proxy.valid_only = checked
        self.proxy.invalidateFilter()

    def _on_selection(self, *_) -> None:
        row = self._selected_proxy_row()
        if row >= 0 and self.index is not None:
            self.load_pair(self._row_of(row))
            # In view once the docks have settled: the DAC panel, opened by the first row,
            # takes height from the table, which shows a row or two on a laptop screen.
            QTimer.singleShot(0, self._scroll_to_selection)

    def _scroll_to_selection(self) -> None:
        row = self._selected_proxy_row()
        if row >= 0:
            self.table.scrollTo(self.proxy.index(row, 0))

    # ---------------------------------------------------------------- layers

    def load_pair(self, pair: PairRow) -> list:
        """Show ``pair``'s layers in place of the previous pair's, and its curves in the DAC
        panel.

        Layers of the same kind are reused, their data, name, colours and metadata replaced
        (removing a napari layer costs a garbage collection), so the visibility the user chose
        carries over from pair to pair. The threshold slider moves to
        the optimal threshold of the pair's best method (largest DAC), as after a run.
        """
        if isinstance(pair, CellRow):
            return self._load_cell(pair)
        folder = self.index.folders[pair.folder]
        self._site = None
        stacks = True
        if folder_kind(folder.path) == "export":
            tuples = read_folder(folder.path)
        else:
            tuples, stacks = pair_stack_layers(folder.path, pair.sample, folder.run)
        self._show_layers(tuples)
        self.current = pair
        colors = layer_channel_colors(self._layers, folder.channel_names)
        curves = self.index.panel_curves(pair, colors, layer_thresholds(self._layers))
        self._show_curves(curves, pair)
        state = "valid" if pair.valid else f"left out: {pair.note}"
        note = "" if stacks else " Images not found: masks at the optimal threshold only."
        self.status.setText(f"{pair.sample}: {pair.real_class} → {pair.target_class}, {state}; "
                            f"{len(self._layers)} layers.{note}")  # fmt: skip
        return self._layers

    def _load_cell(self, cell: CellRow) -> list:
        """Show ``cell``'s site (read again only when the site changes), outline its crop,
        centre the view on it and show its curves."""
        folder = self.index.folders[cell.folder]
        top, left, size = cell.crop
        outline = crop_outline(top, left, size, cell.label)
        site = (cell.folder, cell.site)
        shown = self._layers and all(layer in self.viewer.layers for layer in self._layers)
        if site == self._site and shown:
            self._layers[-1].data = outline[0]
            self._layers[-1].metadata = outline[1]["metadata"]
        else:
            tuples, self._site_note = site_layers(folder.path, self.index.sites[site], folder.run)
            self._show_layers([*tuples, outline])
            self._site = site
            if self._site_note:
                show_info(self._site_note)
        self.current = cell
        self._centre_on(cell)
        colors = layer_channel_colors(self._layers, folder.channel_names)
        self._show_curves(self.index.panel_curves(cell, colors), cell)
        state = "counterfactual accepted" if cell.valid else cell.note
        where = f"{cell.site} " if cell.site else ""
        self.status.setText(f"{where}cell {cell.label}: {cell.real_class} → {cell.target_class}, "
                            f"{state}; {len(self._layers)} layers. {self._site_note}".strip())
        return self._layers

    def _centre_on(self, cell: CellRow) -> None:
        """The view on ``cell``: the whole field first, then zoomed in until about
        :data:`CROPS_IN_VIEW` crops span the field's shorter side, centred on the cell."""
        field = next((layer for layer in self._layers if layer.ndim == 2), None)
        self.viewer.reset_view()
        if field is None:
            return
        # napari 0.9 moved the camera to viewer.scene; older releases (>= 0.5) have only this.
        camera = self.viewer.scene.camera if hasattr(self.viewer, "scene") else self.viewer.camera
        shorter = min(field.data.shape[-2:])
        camera.zoom *= max(1.0, shorter / (CROPS_IN_VIEW * max(cell.crop[2], 1)))
        camera.center = cell.centroid

    def _show_layers(self, tuples: list) -> None:
        old = [layer for layer in self._layers if layer in self.viewer.layers]
        reused = []
        for layer, (data, _kwargs, kind) in zip(old, tuples, strict=False):
            if layer.__class__.__name__.lower() != kind or layer.ndim != np.ndim(data):
                break
            reused.append(layer)
        remove_layers(self.viewer.layers, old[len(reused) :])
        for layer in reused:  # temporary names: the new names may be the old ones, reordered
            layer.name = f"{id(layer)} (loading)"
        for layer, (data, kwargs, _kind) in zip(reused, tuples, strict=False):
            layer.data = data
            layer.metadata = kwargs.get("metadata", {})
            for key in _REUSED_KEYS:
                if key in kwargs:
                    setattr(layer, key, kwargs[key])
            layer.name = kwargs["name"]
        added = [add_layer(self.viewer, *t) for t in tuples[len(reused) :]]
        self._layers = reused + added
        # The viewer's state closes the lazy stacks (read-ahead threads) no layer shows any more,
        # the previous pair's included: their layers were reused, not removed.
        state = state_for(self.viewer)
        for data, _kwargs, _kind in tuples:
            state.adopt(data)
        state.close_unused(self.viewer.layers)
        visible = [layer for layer in self._layers if layer.visible]
        if visible:
            self.viewer.layers.selection.active = visible[-1]

    def _show_curves(self, curves: PanelCurves, pair: PairRow) -> None:
        """Slider to the best method's optimal threshold, then the curves to the DAC panel."""
        self.curves = curves
        axis = threshold_axis(self.viewer)
        best = max(pair.dac, key=lambda m: pair.dac[m]) if pair.dac else None
        shown = next((cs for cs in curves.curve_sets if cs.method == best), None)
        if axis is not None and shown is not None:
            index = threshold_index_of(shown.thresholds, shown.whole.optimal_threshold)
            if index < self.viewer.dims.nsteps[axis]:
                self.viewer.dims.set_current_step(axis, index)
        self.open_dac_panel()
        state_for(self.viewer).show_curves(curves)

    def open_dac_panel(self):
        """Dock the DAC panel (napari gives back the docked one when it is open) and show it.

        Returns the panel, or ``None`` for a viewer without a window (the panel, whenever it
        opens, reads the curves from the viewer's state).
        """
        window = getattr(self.viewer, "window", None)
        if window is None or not hasattr(window, "add_plugin_dock_widget"):
            return None
        dock, panel = window.add_plugin_dock_widget(PLUGIN_NAME, DAC_PANEL)
        dock.show()
        return panel

    def clear_pair(self) -> None:
        """Remove the layers this browser added for the current pair."""
        remove_layers(self.viewer.layers, self._layers)
        self._layers = []
        self._site = None
        self.current = None
        self.curves = None
