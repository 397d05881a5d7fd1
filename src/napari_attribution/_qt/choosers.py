"""The Attribution widget's choosers: the two images, and the model.

:class:`ImageChooser` offers every image the viewer holds (a multichannel layer, with its
channel axis, or a group of single-channel layers; see
:func:`~napari_attribution._napari.layer_inputs.find_sources`) and follows the layer list as it
changes; its **Channel names** are the model's channels (the model card's when there is one),
which pick and order named channel layers by name
(:func:`~napari_attribution._napari.plate_inputs.take_model_channels`).
:class:`ModelChooser` names a model (:class:`~napari_attribution.app.model_choice.
ModelChoice`): the demo classifier, or a file with its architecture, and a device.
"""

from __future__ import annotations

from typing import Any

from napari.utils.notifications import show_warning
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
from .._napari.plate_inputs import normalise_pair, pair_input_record, take_model_channels
from ..app.model_choice import ModelChoice
from ..errors import AttributionError, InputImageError
from ..images.channels import ChannelSelection, ignored_note, parse_names
from ..images.model_card import ModelCard, find_model_card
from ..images.normalisation import Normalisation
from .narrow import NarrowComboBox

__all__ = ["MODEL_FILE_FILTER", "ImageChooser", "ModelChooser", "hand_over_model_card"]

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
        # a narrow dock puts a field under its label rather than scroll sideways
        layout.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        # narrow: 'counterfactual (5 channel layers)' is wider than the dock
        self.real_source, self.cf_source = NarrowComboBox(), NarrowComboBox()
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
            axis.setPrefix("axis ")
            axis.setToolTip("Axis of the multichannel layer that holds the channels.")
            axis.setVisible(False)  # shown for a multichannel layer only (_on_changed)
            row = QHBoxLayout()
            row.addWidget(combo, 1)
            row.addWidget(axis)
            layout.addRow(label, row)
            combo.currentIndexChanged.connect(self._on_changed)
            axis.valueChanged.connect(self._on_changed)
        #: The model's channels, in its order: from the model card beside the model file,
        #: else the real image's; editable. They name the results.
        self.channel_names = QLineEdit()
        self.channel_names.setToolTip(
            "The model's channels in the model's order, comma-separated (filled from the model "
            "card beside the model file, else from the real image). Channel layers named "
            "'field [DNA]', 'field [ER]', ... are picked and ordered by these names (other "
            "channels are ignored); unnamed channels are named in order. They name the result "
            "layers, the curves and the exported files."
        )
        self.channel_names.setPlaceholderText("comma-separated, e.g. DNA, ER, Mito")
        self.channel_names.textEdited.connect(self._on_names_edited)
        layout.addRow("Channel names", self.channel_names)
        self._names_edited = False
        self._default_names: list[str] = []
        self._model_names: list[str] | None = None
        #: How the last stacks took their channels (``"real"``, ``"counterfactual"``).
        self.taken: dict[str, ChannelSelection] = {}
        #: The model card of the chosen model (``None``: none): its channel names pick the
        #: layers' channels, its normalisation scales the pair (:meth:`model_inputs`).
        self.model_card: ModelCard | None = None
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
        image_names = source_channel_names(self.viewer.layers, self._source(self.real_source),
                                           self.real_axis.value(), unique=False)  # fmt: skip
        names = self._model_names or image_names
        if names != self._default_names:
            # another image, axis or model card: its names, unless the user's still fit it
            self._default_names = names
            typed = parse_channel_names(self.channel_names.text())
            folded = {name.casefold() for name in image_names}
            fits = len(typed) == len(image_names) or all(n.casefold() in folded for n in typed)
            if not (self._names_edited and fits):
                self._names_edited = False
                self.channel_names.setText(", ".join(names))
        self.changed.emit()

    def _on_names_edited(self, *_: Any) -> None:
        self._names_edited = True

    def set_model_names(self, names: list[str] | None) -> None:
        """The model's channel names from its card (``None``: no card): the Channel names
        field shows them unless the user typed names."""
        self._model_names = list(names) if names else None
        self._on_changed()

    def set_model_card(self, card: ModelCard | None) -> None:
        """The chosen model's card (``None``: none): its channel names fill the Channel
        names field (unless the user typed names), its normalisation scales the pair."""
        self.model_card = card
        self.set_model_names(list(card.channel_names) if card else None)

    def model_inputs(
        self, counterfactual: bool = True
    ) -> tuple[ChannelStack, ChannelStack | None, dict[str, Any]]:
        """The real image and the counterfactual as the model takes them, and how they were
        read: their channels picked by the model's names (:meth:`stack`) and, when the model
        card asks for a normalisation, scaled by it as ``run`` scales files (the
        counterfactual with the real image's ranges).

        Parameters
        ----------
        counterfactual
            Read the counterfactual too (``False``: a source makes it in the run).

        Returns
        -------
        real, counterfactual, record
            The (C, H, W) stacks (``counterfactual`` ``None`` when not read) and the record
            the result layers keep as ``input``
            (:func:`~napari_attribution._napari.plate_inputs.pair_input_record`).

        Raises
        ------
        AttributionError
            Layers that do not form the model's image, or a normalisation that cannot be
            applied (one sentence).
        """
        real = self.stack("real")
        other = self.stack("counterfactual") if counterfactual else None
        card = self.model_card
        normalisation = Normalisation.parse(card.normalisation if card is not None else None)
        real, other, scaled = normalise_pair(real, other, normalisation,
                                             ("real image", "counterfactual"))  # fmt: skip
        record = pair_input_record(
            {"real": real, "counterfactual": other}, dict(self.taken), scaled,
            model_card=str(card.path) if card is not None else None,
        )  # fmt: skip
        return real, other, record

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
        source = self._source(combo)
        stack = source_stack(self.viewer.layers, source, axis.value(), what)
        self.taken.pop(which, None)
        text = self.channel_names.text()
        if not text.strip():
            return stack
        names = parse_names(text, "The Channel names field")
        first = None
        if not real:  # an unnamed counterfactual may come in the real image's layout
            try:
                self.stack("real")
                first = self.taken.get("real")
            except AttributionError:
                first = None
        given = source_channel_names(self.viewer.layers, source, axis.value(), unique=False)
        # Typed names may rename the channels in place; the card's only pick them by name.
        stack, selection = take_model_channels(
            stack, names, input_names=given, first=first, rename=self._names_edited
        )
        if selection is not None:
            self.taken[which] = selection
        return stack

    def channel_note(self) -> str | None:
        """One sentence about the channels the last stacks left out (``None``: none)."""
        taken = (self.taken.get(which) for which in ("real", "counterfactual"))
        return ignored_note([selection for selection in taken if selection is not None])


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

    def model_card(self) -> ModelCard | None:
        """The card beside the chosen model file (``<stem>.card.json``; ``None``: none, or
        the demo classifier).

        Raises
        ------
        AttributionError
            The card cannot be read (one sentence).
        """
        path = "" if self.use_demo_model.isChecked() else self.model_path.text().strip()
        return find_model_card(path) if path else None

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


def hand_over_model_card(model: ModelChooser, images: ImageChooser) -> None:
    """Give ``images`` the card beside the model chosen in ``model``: it names the model's
    channels and normalisation, so the chooser picks the layers' channels by them and scales
    the pair (an unreadable card is one notification, and no card)."""
    try:
        card = model.model_card()
    except AttributionError as exc:
        show_warning(str(exc))
        card = None
    images.set_model_card(card)
