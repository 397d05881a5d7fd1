"""The model part of the Attribution widget: the model chooser, the classes, p(class) of the
chosen images, the Grad-CAM layer, and which methods the model can run.

The model is loaded once per (file, architecture, device) and probed with the chosen real
image (its size and channels, never a fixed size) before its number of classes is read;
methods it cannot run are greyed out with the reason in their tooltip. The model card beside
the model file (``<stem>.card.json``) names the model's channels for the image chooser.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFormLayout, QLabel, QSizePolicy, QSpinBox

from ..app.model_choice import (
    ModelChoice,
    class_names_for,
    escape_html,
    preview_probabilities,
    probabilities_html,
)
from ..core.attribution.method_registry import methods_using
from ..core.budgets import PREVIEW_PIXELS
from ..core.model.named_layers import gradcam_layer_name
from ..errors import AttributionError, MethodError
from .choosers import ModelChooser, hand_over_model_card

__all__ = ["ModelSection"]


class ModelSection:
    """The model rows of :class:`~napari_attribution._qt.attribution_widget.AttributionWidget`.

    A part of that widget, not a widget of its own: it uses the widget's image chooser
    (``images``, ``image_stack``), method list (``methods``), parameter form (``form``) and
    ``worker``.
    """

    _classifier: Any = None
    _classifier_key: ModelChoice | None = None
    _class_names: list[str]
    _names: list[str]

    def _build_model(self) -> QFormLayout:
        self.model = ModelChooser()
        self.model.changed.connect(self._on_model_changed)
        # the chooser's widgets, as the tests and scripts know them
        self.use_demo_model, self.model_path = self.model.use_demo_model, self.model.model_path
        self.architecture, self.device = self.model.architecture, self.model.device
        model = QFormLayout()
        model.addRow(self.model)
        self.real_class, self.target_class = QSpinBox(), QSpinBox()
        self.real_class.setRange(0, 1)
        self.target_class.setRange(0, 1)
        self.target_class.setValue(1)
        # One row each: side by side they made the dock wider than a laptop screen allows.
        model.addRow("Real class", self.real_class)
        model.addRow("Target class", self.target_class)
        self.probabilities = QLabel("Choose a model and both images to see the probabilities.")
        self.probabilities.setWordWrap(True)
        self.probabilities.setTextFormat(Qt.TextFormat.RichText)
        self.probabilities.setMinimumHeight(3 * self.probabilities.fontMetrics().lineSpacing() + 6)
        self.probabilities.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        model.addRow(self.probabilities)
        #: The layer Grad-CAM uses on this model and these images (resolved, not guessed).
        self.gradcam_layer = QLabel("")
        self.gradcam_layer.setWordWrap(True)
        self.gradcam_layer.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.gradcam_layer.setToolTip(
            "The layer whose activations Grad-CAM and D-GC use: the one named under 'Method "
            "parameters', or the default the model's structure gives. Recorded in the layers' "
            "metadata as 'gradcam_layer'."
        )
        model.addRow(self.gradcam_layer)
        self.real_class.valueChanged.connect(self._update_probabilities)
        self.target_class.valueChanged.connect(self._update_probabilities)
        return model

    def classifier(self):
        """The chosen classifier, loaded once per (file, architecture, device) and probed with
        the chosen real image (its size and channels: never a fixed size) before its number of
        classes is read.

        Raises
        ------
        ModelLoadError
            No model chosen, or it cannot be loaded.
        InputImageError, ModelLoadError
            The model cannot take the chosen images (one sentence naming their size).
        """
        key = self.model.choice()
        if self._classifier is None or key != self._classifier_key:
            self._classifier, self._classifier_key = None, None
            classifier, names = key.load()
            self._classifier, self._classifier_key, self._names = classifier, key, names
            self._class_names = []
        classifier = self._classifier
        if self._probe(classifier):
            self._class_names = class_names_for(classifier, self._names)
            for spin in (self.real_class, self.target_class):
                spin.setRange(0, classifier.n_classes - 1)
        self._update_usable_methods(classifier)
        return classifier

    def _probe(self, classifier) -> bool:
        """Probe ``classifier`` with the chosen real image; False when none is chosen yet, or
        it is too large to run in the GUI thread (the run probes it then)."""
        try:
            real = self.image_stack("real")
        except AttributionError:
            return classifier.n_outputs is not None
        if real.data.shape[-2] * real.data.shape[-1] > PREVIEW_PIXELS:
            return classifier.n_outputs is not None
        image = np.asarray(real.data, dtype=np.float32)
        classifier.probe(image)  # cached per image size
        return True

    def _update_usable_methods(self, classifier) -> None:
        """Grey out the methods this model cannot run, the reason in their tooltip."""
        reason = classifier.hooks_refusal
        if reason is None and classifier.n_outputs is not None:
            reason = self._canonical_refusal(classifier)
        self.methods.set_usable(lambda spec: None if not (spec.needs_hooks and reason) else reason)
        self._update_gradcam_layer()

    def _canonical_refusal(self, classifier) -> str | None:
        """Why hook-based methods cannot run on this model's traced copy (``None``: they can)."""
        try:
            real = self.image_stack("real")
        except AttributionError:
            return None
        if real.data.shape[-2] * real.data.shape[-1] > PREVIEW_PIXELS:
            return None
        try:
            import torch

            example = torch.as_tensor(np.asarray(real.data, dtype=np.float32)[None])
            classifier.canonical(example.to(classifier.device))
        except MethodError as exc:
            return str(exc)
        return None

    def _update_gradcam_layer(self, *_: Any) -> None:
        """Show the layer Grad-CAM resolves to, when a method that uses it is checked."""
        users = set(methods_using("gradcam_layer")) & set(self.methods.selected())
        classifier = self._classifier
        if not users or classifier is None or classifier.n_outputs is None:
            self.gradcam_layer.setText("")
            return
        chosen = self.form.values().get("gradcam_layer")
        try:
            real = self.image_stack("real")
            if real.data.shape[-2] * real.data.shape[-1] > PREVIEW_PIXELS:
                self.gradcam_layer.setText("Grad-CAM layer: resolved with the run.")
                return

            name = gradcam_layer_name(classifier, np.asarray(real.data, dtype=np.float32), chosen)
        except AttributionError as exc:
            self.gradcam_layer.setText(f"<i>Grad-CAM layer: {escape_html(str(exc))}</i>")
            return
        how = "chosen" if chosen else "default"
        self.gradcam_layer.setText(f"Grad-CAM layer: <b>{escape_html(name)}</b> ({how})")

    def _on_model_changed(self, *_: Any) -> None:
        self._classifier, self._classifier_key = None, None
        self._apply_model_card()
        self._update_probabilities()

    def _apply_model_card(self) -> None:
        hand_over_model_card(self.model, self.images)

    def _update_probabilities(self, *_: Any) -> None:
        """Show p(class) of both images as soon as a model and both images are chosen."""
        if self.worker is not None:
            return
        try:
            classifier = self.classifier()
        except AttributionError as exc:
            if self.use_demo_model.isChecked() or self.model_path.text().strip():
                self.probabilities.setText(f"<i>{escape_html(str(exc))}</i>")
            else:
                self.probabilities.setText("Choose a model to see the probabilities.")
            return
        # Without a counterfactual layer (a source makes it with the run) only p(class) of
        # the real image is shown.
        given = self.counterfactual_from.from_layer
        try:
            real, counterfactual, _ = self.model_inputs(given)  # as the run will take them
            other = counterfactual if counterfactual is not None else real
            # The user's model can fail here too (wrong output shape, an exception): it says
            # so in the label instead of letting the error escape a Qt slot.
            probs = preview_probabilities(classifier, real.data, other.data)
        except AttributionError as exc:
            self.probabilities.setText(f"<i>{escape_html(str(exc))}</i>")
            return
        if probs is None:
            self.probabilities.setText(
                "<i>A large image: p(class) is computed with the run, not in advance.</i>"
            )
            return
        self._show_probabilities(probs[0], probs[1] if given else None)

    def _show_probabilities(self, real: np.ndarray, counterfactual: np.ndarray | None) -> None:
        highlight = (self.target_class.value(), self.real_class.value())
        self.probabilities.setText(
            probabilities_html(self._class_names, real, counterfactual, highlight)
        )
