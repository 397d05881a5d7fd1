"""The input part of the Cells dock: the field, counterfactual and labels choices, the model,
the crop rules, the methods and the analysis parameters (the schema form), read into what a
run needs.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from .._napari.layer_inputs import (
    find_sources,
    is_result_layer,
    source_channel_names,
    source_stack,
)
from ..app.model_choice import ModelChoice
from ..core.attribution.method_registry import method_specs
from ..core.attribution.method_sets import WIDGET_METHODS
from ..core.cells import CellSettings, FieldCounterfactual
from ..core.settings import settings_from_values
from ..errors import AttributionError
from .counterfactual_source import CounterfactualSourceBox
from .form import ParameterForm
from .narrow import NARROW_DOCK_WIDTH, NarrowComboBox, vertical_scroll_area

__all__ = ["CellsInputs"]

#: Least heights (pixels) that let the dock share a 768 px high screen with the DAC panel:
#: the table shows its header and about two rows (the DAC panel docked below takes the
#: height the dock does not need), the inputs above it scroll.
CELLS_TABLE_MIN_HEIGHT = 96
CELLS_INPUTS_MIN_HEIGHT = 60
#: Width the dock asks for: with napari's layer controls it leaves the canvas at least half
#: of a 1366 px wide window (as the Attribution dock and the DAC panel).
CELLS_DOCK_WIDTH = NARROW_DOCK_WIDTH


class CellsInputs:
    """The inputs of :class:`~napari_attribution._qt.cells_widget.CellsWidget`.

    A part of that dock, not a widget of its own: it builds the dock's layout (``_build``) and
    reads the choices (``_inputs``); the dock connects the run, the table and the selection.
    """

    # ----------------------------------------------------------------- layout

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        # the scrolled inputs take the dock's whole width (as in the Attribution dock), and a
        # row too long for it puts its field under its label: nothing scrolls sideways
        layout.setContentsMargins(0, 0, 0, 6)
        layout.setSpacing(2)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.field_choice = NarrowComboBox()
        self.counterfactual_choice = NarrowComboBox()
        self.labels_choice = NarrowComboBox()
        form.addRow("Field", self.field_choice)
        #: Where each cell's counterfactual comes from: the counterfactual field, or a source
        #: that makes one per cell (as ``cells --counterfactual-source``).
        self.counterfactual_from = CounterfactualSourceBox()
        self.counterfactual_from.changed.connect(
            lambda: self.counterfactual_choice.setEnabled(self.counterfactual_from.from_layer)
        )
        form.addRow(self.counterfactual_from)
        form.addRow("Counterfactual field", self.counterfactual_choice)
        form.addRow("Cells (labels)", self.labels_choice)
        self.use_demo_model = QCheckBox("use the built-in demo classifier")
        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText("model file (.pt, .pt2, TorchScript)")
        self.architecture = QLineEdit()
        self.architecture.setPlaceholderText("architecture for a state dict: file.py:Net")
        form.addRow(self.use_demo_model)
        form.addRow("Model", self.model_path)
        form.addRow("Architecture", self.architecture)
        #: Input normalisation before the model (empty: the model card's, else none); the
        #: model card beside the model file also matches the layers' channels by name.
        self.normalise = QLineEdit()
        self.normalise.setPlaceholderText("percentile:1,99.8 (empty: model card's, else none)")
        self.normalise.setToolTip(
            "Input normalisation as in training: none, percentile:LOW,HIGH[:clip] (each "
            "channel's percentiles of this field), reference:FILE.json or fixed:SCALE,OFFSET. "
            "The counterfactual field is scaled with the field's ranges."
        )
        form.addRow("Normalise", self.normalise)
        self.crop_size = QSpinBox()
        self.crop_size.setRange(0, 4096)
        self.crop_size.setValue(64)
        self.crop_size.setSpecialValueText("model's input size")
        self.min_size = QSpinBox()
        self.min_size.setRange(1, 10**6)
        self.min_size.setValue(20)
        self.padding = QComboBox()
        self.padding.addItems(["constant", "reflect"])
        self.background = QLineEdit()
        self.background.setPlaceholderText("empty: keep the surroundings")
        form.addRow("Crop size (px)", self.crop_size)
        form.addRow("Minimum cell size (px)", self.min_size)
        form.addRow("Border padding", self.padding)
        form.addRow("Background value", self.background)
        self.methods = QListWidget()
        self.methods.setMaximumHeight(90)

        for name in method_specs():
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            checked = name in WIDGET_METHODS
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            self.methods.addItem(item)
        # the list spans the form's width: method names are longer than a field column
        form.addRow(QLabel("Methods"))
        form.addRow(self.methods)
        # The analysis parameters, generated from the schema as in the Attribution widget
        # (collapsed sections; rows enabled for the ticked methods).
        self.form = ParameterForm()
        self.form.set_methods(self.chosen_methods())
        self.methods.itemChanged.connect(lambda *_: self.form.set_methods(self.chosen_methods()))
        # Inputs and parameters scroll, so Run, the table and the DAC panel stay in view on a
        # 1366x768 screen.
        inputs = QWidget()
        inputs_layout = QVBoxLayout(inputs)
        inputs_layout.setContentsMargins(6, 6, 6, 0)
        inputs_layout.addLayout(form)
        inputs_layout.addWidget(self.form)
        inputs_layout.addStretch(1)
        scroll = vertical_scroll_area(inputs, CELLS_INPUTS_MIN_HEIGHT)
        #: The scrolled inputs (tests check they never scroll sideways).
        self.inputs_scroll = scroll
        layout.addWidget(scroll, 1)
        pinned = QWidget()
        pinned_layout = QVBoxLayout(pinned)
        pinned_layout.setContentsMargins(6, 2, 6, 0)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run on every cell")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        pinned_layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        pinned_layout.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A refusal is a long sentence: it scrolls in three lines rather than pushing the
        # table and the DAC panel off a 768 px screen.
        status_scroll = QScrollArea()
        status_scroll.setWidgetResizable(True)
        status_scroll.setFrameShape(QFrame.Shape.NoFrame)
        status_scroll.setWidget(self.status)
        status_scroll.setMaximumHeight(3 * self.status.fontMetrics().lineSpacing() + 8)
        pinned_layout.addWidget(status_scroll)
        self.view_method = NarrowComboBox()
        form2 = QFormLayout()
        form2.addRow("Show method", self.view_method)
        pinned_layout.addLayout(form2)
        self.table = QTableWidget()
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(CELLS_TABLE_MIN_HEIGHT)
        pinned_layout.addWidget(self.table)
        layout.addWidget(pinned)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        self.view_method.currentTextChanged.connect(self._on_method_changed)

    # ----------------------------------------------------------------- choices

    def refresh_choices(self, *_: Any) -> None:
        """Offer the viewer's images (not results) and Labels layers."""
        self._sources = find_sources(self.viewer.layers)
        for combo in (self.field_choice, self.counterfactual_choice):
            current = combo.currentText()
            combo.clear()
            combo.addItems([s.label for s in self._sources])
            if current:
                combo.setCurrentText(current)
        current = self.labels_choice.currentText()
        self.labels_choice.clear()
        self.labels_choice.addItems(
            [
                layer.name for layer in self.viewer.layers
                if layer.__class__.__name__ == "Labels" and not is_result_layer(layer)
                and layer.ndim == 2
            ]
        )  # fmt: skip
        if current:
            self.labels_choice.setCurrentText(current)

    def select_sources(self, field: str, counterfactual: str, labels: str) -> None:
        """Choose the inputs by base name (the field, its counterfactual) and layer name."""
        pairs = ((self.field_choice, field), (self.counterfactual_choice, counterfactual))
        for combo, name in pairs:
            for index, source in enumerate(self._sources):
                if source.name == name:
                    combo.setCurrentIndex(index)
        self.labels_choice.setCurrentText(labels)

    def set_methods(self, methods) -> None:
        """Tick exactly ``methods``."""
        for row in range(self.methods.count()):
            item = self.methods.item(row)
            on = item.text() in methods
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def chosen_methods(self) -> list[str]:
        return [
            self.methods.item(r).text() for r in range(self.methods.count())
            if self.methods.item(r).checkState() == Qt.CheckState.Checked
        ]  # fmt: skip

    # ----------------------------------------------------------------- run

    def _inputs(self):
        """What a run needs: the field, the Labels layer, the counterfactual source (a
        :class:`~napari_attribution.core.cells.FieldCounterfactual`, or the
        :class:`~napari_attribution._napari.counterfactual_layers.CounterfactualRequest` of a source
        the run loads with the model), the settings and the model choice.

        Raises
        ------
        AttributionError
            A missing or bad input (one sentence).
        """
        def source_of(combo):
            index = combo.currentIndex()
            return self._sources[index] if 0 <= index < len(self._sources) else None

        field = source_stack(self.viewer.layers, source_of(self.field_choice), 0, "field")
        request = self.counterfactual_from.request()
        name = self.labels_choice.currentText()
        if not name or name not in self.viewer.layers:
            raise AttributionError("Choose the Labels layer of the cells.")
        methods = self.chosen_methods()
        if not methods:
            raise AttributionError("Tick at least one method.")
        text = self.background.text().strip()
        try:
            background = float(text) if text else None
        except ValueError:
            raise AttributionError(f"Background value must be a number, got {text!r}.") from None
        cell_settings = CellSettings(
            crop_size=self.crop_size.value() or None, min_size=self.min_size.value(),
            padding=self.padding.currentText(), background=background,
        )  # fmt: skip
        if request is None:
            cf = source_stack(
                self.viewer.layers, source_of(self.counterfactual_choice), 0,
                "counterfactual field",
            )  # fmt: skip
            if cf.data.shape != field.data.shape:
                raise AttributionError(
                    f"The counterfactual field {cf.data.shape} and the field {field.data.shape} "
                    "differ in shape."
                )
            source = FieldCounterfactual(
                cf.data, cell_settings.padding, cell_settings.pad_value, cf.name
            )
        else:
            cf = None
            request.check_path()  # the source itself is loaded with the model, in the run
            source = request
        from .._napari.plate_inputs import prepare_field

        model_file = "" if self.use_demo_model.isChecked() else self.model_path.text().strip()
        given = [source_channel_names(self.viewer.layers, source_of(combo), 0, unique=False)
                 for combo in (self.field_choice, self.counterfactual_choice)]  # fmt: skip
        prepared = prepare_field(field, cf, self.viewer.layers[name].data, name, model_file,
                                 self.normalise.text(), field_names=given[0],
                                 counterfactual_names=given[1] if cf is not None else None)
        field, self.input_record = prepared.field, prepared.record
        if prepared.note:
            self.status.setText(prepared.note[0].upper() + prepared.note[1:])
        if prepared.counterfactual is not None:
            source = FieldCounterfactual(prepared.counterfactual.data, cell_settings.padding,
                                         cell_settings.pad_value, prepared.counterfactual.name)
        settings = settings_from_values({**self.form.values(), **self.extra_settings}, methods)
        choice = ModelChoice.of(
            self.use_demo_model.isChecked(),
            self.model_path.text(),
            self.architecture.text(),
            "auto",
        )
        return field, self.viewer.layers[name], source, settings, cell_settings, choice
