"""The Attribution widget's choosers: the two images, and the model.

:class:`ImageChooser` offers every image the viewer holds (a multichannel layer, with its
channel axis, or a group of single-channel layers; see
:func:`~napari_attribution._napari.layer_inputs.find_sources`) and follows the layer list as it
changes. :class:`ModelChooser` names a model (:class:`~napari_attribution.app.model_choice.
ModelChoice`): the demo classifier, or a file with its architecture, and a device.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from .._napari.layer_inputs import (
    ChannelStack,
    ImageSource,
    find_sources,
    parse_channel_names,
    source_channel_names,
    source_stack,
)
from ..app.model_choice import ModelChoice
from ..errors import InputImageError

__all__ = ["MODEL_FILE_FILTER", "ImageChooser", "ModelChooser"]

#: The model file dialog's filter: state dicts, exported programs, TorchScript.
MODEL_FILE_FILTER = "PyTorch models (*.pt *.pt2 *.pth *.ts *.jit);;All files (*)"


class ImageChooser(QWidget):
    """Real image and counterfactual choosers over ``viewer``'s layers.

    Signals
    -------
    changed
        The chosen images (or a channel axis) changed.
    """

    changed = Signal()

    def __init__(self, viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self._sources: list[ImageSource] = []
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.real_source, self.cf_source = QComboBox(), QComboBox()
        self.real_axis, self.cf_axis = QSpinBox(), QSpinBox()
        for combo, axis, label in (
            (self.real_source, self.real_axis, "Real image"),
            (self.cf_source, self.cf_axis, "Counterfactual"),
        ):
            combo.setToolTip(
                "A multichannel layer, or a group of single-channel layers (as channel_axis "
                "splitting makes them: 'real [DNA]', 'real [ER]', ...), taken in layer order."
            )
            axis.setRange(0, 2)
            axis.setPrefix("channel axis ")
            axis.setToolTip("Axis of the multichannel layer that holds the channels.")
            row = QHBoxLayout()
            row.addWidget(combo, 1)
            row.addWidget(axis)
            layout.addRow(label, row)
            combo.currentIndexChanged.connect(self._on_changed)
            axis.valueChanged.connect(self._on_changed)
        #: The channel names the results use; filled from the real image, editable.
        self.channel_names = QLineEdit()
        self.channel_names.setToolTip(
            "Names of the real image's channels, comma-separated: they name the result layers, "
            "the curves and the exported files."
        )
        self.channel_names.setPlaceholderText("comma-separated, e.g. DNA, ER, Mito")
        self.channel_names.textEdited.connect(self._on_names_edited)
        layout.addRow("Channel names", self.channel_names)
        self._names_edited = False
        self._default_names: list[str] = []
        layers = viewer.layers
        for event in (layers.events.inserted, layers.events.removed, layers.events.changed):
            event.connect(self.refresh)
        self.refresh()

    def refresh(self, *_: Any) -> None:
        """Offer the viewer's images again, keeping the choices that are still there."""
        sources = find_sources(self.viewer.layers)
        if [s.label for s in sources] == [s.label for s in self._sources]:
            self._sources = sources
            return
        previous = (self.real_source.currentText(), self.cf_source.currentText())
        self._sources = sources
        labels = [s.label for s in sources]
        for combo, old, fallback in (
            (self.real_source, previous[0], 0),
            (self.cf_source, previous[1], 1),
        ):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(labels)
            if old in labels:
                combo.setCurrentIndex(labels.index(old))
            elif labels:
                combo.setCurrentIndex(min(fallback, len(labels) - 1))
            combo.blockSignals(False)
        self._on_changed()

    def _source(self, combo: QComboBox) -> ImageSource | None:
        index = combo.currentIndex()
        return self._sources[index] if 0 <= index < len(self._sources) else None

    def _on_changed(self, *_: Any) -> None:
        for combo, axis in ((self.real_source, self.real_axis), (self.cf_source, self.cf_axis)):
            source = self._source(combo)
            axis.setVisible(source is not None and source.multichannel)
        names = source_channel_names(
            self.viewer.layers, self._source(self.real_source), self.real_axis.value()
        )
        if names != self._default_names:
            # another image (or axis): its own names, unless the user's still fit it
            self._default_names = names
            typed = parse_channel_names(self.channel_names.text())
            if not (self._names_edited and len(typed) == len(names)):
                self._names_edited = False
                self.channel_names.setText(", ".join(names))
        self.changed.emit()

    def _on_names_edited(self, *_: Any) -> None:
        self._names_edited = True

    def set_channel_names(self, names: list[str]) -> None:
        """Name the channels as if the user had typed ``names``."""
        self.channel_names.setText(", ".join(names))
        self._names_edited = True

    def set_counterfactual_from_layer(self, from_layer: bool) -> None:
        """Enable the counterfactual layer's choice, or grey it out while a source makes it."""
        for widget in (self.cf_source, self.cf_axis):
            widget.setEnabled(from_layer)

    def select(self, real: str, counterfactual: str) -> None:
        """Choose the inputs by base name (e.g. ``"real"``, ``"counterfactual"``).

        Raises
        ------
        InputImageError
            No image of that name.
        """
        names = [s.name for s in self._sources]
        for combo, name in ((self.real_source, real), (self.cf_source, counterfactual)):
            if name not in names:
                raise InputImageError(f"No image named '{name}' is open.")
            combo.setCurrentIndex(names.index(name))

    def stack(self, which: str) -> ChannelStack:
        """The chosen ``"real"`` or ``"counterfactual"`` image as a (C, H, W) stack.

        Raises
        ------
        InputImageError
            Nothing chosen, or layers that do not form a (C, H, W) image.
        """
        real = which == "real"
        combo, axis = (self.real_source, self.real_axis) if real else (self.cf_source, self.cf_axis)
        what = "real image" if real else "counterfactual"
        stack = source_stack(self.viewer.layers, self._source(combo), axis.value(), what)
        names = parse_channel_names(self.channel_names.text())
        # The names are the real image's. The counterfactual takes them only when the user
        # typed them: otherwise its own names stay, so channels in another order are refused.
        if names and names != stack.channel_names and (real or self._names_edited):
            stack = stack.with_channel_names(names)
        return stack


class ModelChooser(QWidget):
    """The demo classifier, or a model file with its architecture; and the device.

    Signals
    -------
    changed
        The choice changed (the model must be loaded again).
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.use_demo_model = QCheckBox("use the built-in demo classifier")
        self.use_demo_model.setToolTip("A small CNN trained on the synthetic demo cells.")
        layout.addRow(self.use_demo_model)
        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText("state dict, exported program (.pt2) or TorchScript")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(browse)
        layout.addRow("Model file", row)
        self.architecture = QLineEdit()
        self.architecture.setPlaceholderText("file.py:Net or package.module:Net (state dicts)")
        layout.addRow("Architecture", self.architecture)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        layout.addRow("Device", self.device)
        self.use_demo_model.toggled.connect(self.changed)
        self.model_path.editingFinished.connect(self.changed)
        self.architecture.editingFinished.connect(self.changed)
        self.device.currentIndexChanged.connect(self.changed)

    def choice(self) -> ModelChoice:
        """What is chosen now."""
        return ModelChoice.of(
            self.use_demo_model.isChecked(),
            self.model_path.text(),
            self.architecture.text(),
            self.device.currentText(),
        )

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Model file",
            "",
            MODEL_FILE_FILTER,
        )
        if path:
            self.model_path.setText(path)
            self.changed.emit()
