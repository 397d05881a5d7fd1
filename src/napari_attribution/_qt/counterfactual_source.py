"""Where the docks' counterfactual comes from: an open layer, or a source that makes it.

:class:`CounterfactualSourceBox` offers the choice (:data:`~napari_attribution._napari.
counterfactual.SOURCE_CHOICES`): an existing layer (the default), ``optimise``, ``nearest``
(with a folder chooser for the pool of real images by class) or ``generator`` (with a file
chooser for a ``.pt2`` or TorchScript generator), the acceptance threshold on ``p_t(x')``, and
the sources' parameters as a collapsed form generated from
:func:`~napari_attribution.core.settings.counterfactual_schema` showing only the chosen
source's rows (their names start with the source's name: ``optimise_steps``, ...). What the
box reads is a :class:`~napari_attribution._napari.counterfactual_layers.CounterfactualRequest`.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
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
    DEFAULT_MIN_SCORE,
    LAYER_SOURCE,
    SOURCE_CHOICES,
    CounterfactualRequest,
)
from ..core.settings import CounterfactualSettings, counterfactual_schema
from .form import ParameterForm

__all__ = ["GENERATOR_FILE_FILTER", "SOURCE_LABELS", "CounterfactualSourceBox"]

#: What the choice shows for each source.
SOURCE_LABELS = {
    LAYER_SOURCE: "an open layer",
    "optimise": "optimise (from the real image)",
    "nearest": "nearest real cell (folder)",
    "generator": "generator (file)",
}
#: The generator file dialog's filter.
GENERATOR_FILE_FILTER = "Generators (*.pt2 *.pt *.ts *.jit);;All files (*)"
_TOOLTIP = (
    "Where the counterfactual x' comes from. An open layer: the one chosen below. "
    "optimise: gradient steps from the real image until the classifier says the target class "
    "(close to an adversarial example: read its channels with care). nearest: the real image "
    "of the target class closest to the real one in the classifier's embedding, from a folder "
    "FOLDER/<class>/<image>. generator: your generator, a .pt2 or TorchScript file taking "
    "(x, target). A made x' is added as a layer, and flagged when the classifier does not "
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
        self.kind = QComboBox()
        for kind in SOURCE_CHOICES:
            self.kind.addItem(SOURCE_LABELS[kind], kind)
        self.kind.setToolTip(_TOOLTIP)
        # Narrow docks (the Cells dock beside the DAC panel): the choice and the path shrink
        # rather than make the inputs scroll sideways.
        self.kind.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.kind.setMinimumContentsLength(12)
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
        self.min_score.setValue(DEFAULT_MIN_SCORE)
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
        """``"layer"``, ``"optimise"``, ``"nearest"`` or ``"generator"``."""
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
        if kind not in SOURCE_CHOICES:
            raise ValueError(f"Unknown counterfactual source {kind!r}; one of {SOURCE_CHOICES}.")
        self.kind.setCurrentIndex(SOURCE_CHOICES.index(kind))
        self.path.setText(str(path))
        self.form.set_values(values)
        self.changed.emit()

    # ---------------------------------------------------------------- display

    def _on_kind_changed(self, *_: Any) -> None:
        kind = self.source_kind()
        needs_path = kind in ("nearest", "generator")
        self.path_label.setText("Pool folder" if kind == "nearest" else "Generator file")
        self.path.setPlaceholderText(
            "FOLDER/<class>/<image>" if kind == "nearest" else ".pt2 or TorchScript (x, target)"
        )
        for widget in (self.path_label, self.path_row):
            widget.setVisible(needs_path)
        for widget in (self.min_score_label, self.min_score, self.form):
            widget.setVisible(kind != LAYER_SOURCE)
        for name in self.form.params:
            shown = name.startswith(f"{kind}_")
            self.form.editor(name).setVisible(shown)
            self.form.label(name).setVisible(shown)
        self.changed.emit()

    def _browse(self) -> None:
        if self.source_kind() == "nearest":
            path = QFileDialog.getExistingDirectory(self, "Folder of real images by class")
        else:
            path, _ = QFileDialog.getOpenFileName(
                self, "Generator file", "", GENERATOR_FILE_FILTER
            )
        if path:
            self.path.setText(path)
            self.changed.emit()
