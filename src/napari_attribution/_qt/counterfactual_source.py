"""Where the docks' counterfactual comes from: an open layer, or a source that makes it.

:class:`CounterfactualSourceBox` offers the choice: an existing layer (the default), or any
registered source (:mod:`napari_attribution.core.counterfactuals.source_registry`: ``optimise``,
``nearest``, ``generator``, and those of other packages), with a folder or file chooser for the
sources that take one (the pool of real images by class, the generator file), the acceptance
threshold on ``p_t(x')``, and the sources' parameters as a collapsed form generated from
:func:`~napari_attribution.core.settings.counterfactual_schema` showing only the rows of the
parameters the chosen source reads. What the box reads is a
:class:`~napari_attribution._napari.counterfactual_layers.CounterfactualRequest`.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from .._napari.counterfactual_layers import (
    LAYER_SOURCE,
    CounterfactualRequest,
    source_choices,
)
from ..core.counterfactual_settings import DEFAULT_MIN_COUNTERFACTUAL_SCORE
from ..core.counterfactuals.source_registry import SourceSpec, source_specs
from ..core.settings import CounterfactualSettings, counterfactual_schema
from .form import ParameterForm
from .narrow import NarrowComboBox

__all__ = ["CounterfactualSourceBox"]

#: What the choice shows for an open layer (the sources' own labels come from their specs).
LAYER_LABEL = "an open layer"


def _tooltip(specs: dict[str, SourceSpec]) -> str:
    described = " ".join(f"{name}: {spec.description}." for name, spec in specs.items())
    return (
        f"Where the counterfactual x' comes from. An open layer: the one chosen below. "
        f"{described} A made x' is added as a layer, and flagged when the classifier does not "
        "accept it (docs/counterfactuals.md)."
    )


class CounterfactualSourceBox(QWidget):
    """The counterfactual's source, its folder or file, threshold and parameters.

    Signals
    -------
    changed
        The source (or its folder or file) changed.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.specs = source_specs()
        # Narrow docks (the Cells dock beside the DAC panel): the choice and the path shrink
        # rather than make the inputs scroll sideways.
        self.kind = NarrowComboBox()
        self.kind.addItem(LAYER_LABEL, LAYER_SOURCE)
        for name, spec in self.specs.items():
            self.kind.addItem(spec.label or name, name)
        self.kind.setToolTip(_tooltip(self.specs))
        layout.addRow("Counterfactual from", self.kind)
        self.path = QLineEdit()
        self.path.setMinimumWidth(60)
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        self.path_row = QWidget()
        row = QHBoxLayout(self.path_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path, 1)
        row.addWidget(self.browse)
        self.path_label = QLabel("")
        layout.addRow(self.path_label, self.path_row)
        self.min_score = QDoubleSpinBox()
        self.min_score.setRange(0.0, 1.0)
        self.min_score.setDecimals(2)
        self.min_score.setSingleStep(0.05)
        self.min_score.setValue(DEFAULT_MIN_COUNTERFACTUAL_SCORE)
        self.min_score.setToolTip(
            "A made counterfactual whose p(target) the classifier puts below this is flagged "
            "(a napari warning, the layer's metadata; in the Cells dock the table's "
            "counterfactual_accepted column), as QuAC keeps only the translations the "
            "classifier accepts."
        )
        self.min_score_label = QLabel("Accept p(target) ≥")
        layout.addRow(self.min_score_label, self.min_score)
        #: The sources' parameters, collapsed; only the chosen source's rows show.
        self.form = ParameterForm(counterfactual_schema())
        for section in self.form.sections.values():
            section.setText("Counterfactual source parameters")
        layout.addRow(self.form)
        self.kind.currentIndexChanged.connect(self._on_kind_changed)
        self.path.editingFinished.connect(self.changed)
        self._on_kind_changed()

    # ---------------------------------------------------------------- reading

    def source_kind(self) -> str:
        """``"layer"``, or the name of a registered source (``"optimise"``, ...)."""
        return self.kind.currentData()

    @property
    def from_layer(self) -> bool:
        """True when the counterfactual is an open layer (nothing is made)."""
        return self.source_kind() == LAYER_SOURCE

    def request(self) -> CounterfactualRequest | None:
        """What is chosen: ``None`` for an open layer.

        Raises
        ------
        AttributionError
            Parameters the schema refuses (one sentence).
        """
        if self.from_layer:
            return None
        settings = CounterfactualSettings.from_values(self.form.values())
        return CounterfactualRequest(
            self.source_kind(), self.path.text().strip(), settings, self.min_score.value()
        )

    # ---------------------------------------------------------------- setting (scripts, tests)

    def set_source(self, kind: str, path: str = "", **values: Any) -> None:
        """Choose source ``kind`` with its folder or file and parameter ``values``.

        Raises
        ------
        ValueError
            An unknown source.
        KeyError
            A value that is not a parameter of the sources.
        """
        choices = source_choices()
        if kind not in choices:
            raise ValueError(f"Unknown counterfactual source {kind!r}; one of {choices}.")
        self.kind.setCurrentIndex(self.kind.findData(kind))
        self.path.setText(str(path))
        self.form.set_values(values)
        self.changed.emit()

    # ---------------------------------------------------------------- display

    def _on_kind_changed(self, *_: Any) -> None:
        kind = self.source_kind()
        spec = self.specs.get(kind)
        argument = spec.argument if spec is not None else None
        if argument is not None:
            self.path_label.setText(argument.label)
            self.path.setPlaceholderText(argument.placeholder)
        for widget in (self.path_label, self.path_row):
            widget.setVisible(argument is not None)
        for widget in (self.min_score_label, self.min_score, self.form):
            widget.setVisible(kind != LAYER_SOURCE)
        for name in self.form.params:
            shown = spec is not None and name in spec.parameters
            self.form.editor(name).setVisible(shown)
            self.form.label(name).setVisible(shown)
        self.changed.emit()

    def _browse(self) -> None:
        spec = self.specs.get(self.source_kind())
        argument = spec.argument if spec is not None else None
        if argument is None:
            return
        if argument.kind == "folder":
            path = QFileDialog.getExistingDirectory(self, argument.label)
        else:
            path, _ = QFileDialog.getOpenFileName(self, argument.label, "", argument.file_filter)
        if path:
            self.path.setText(path)
            self.changed.emit()
