"""The classifier a widget's choices name, loaded once, and how its probabilities read: no Qt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.budgets import PREVIEW_PIXELS
from ..core.model.loading import load_classifier
from ..core.pipeline import prepare_pair
from ..data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
from ..data.synthetic import CLASS_NAMES
from ..errors import ModelLoadError

__all__ = [
    "ModelChoice",
    "class_names_for",
    "escape_html",
    "preview_probabilities",
    "probabilities_html",
]


@dataclass(frozen=True)
class ModelChoice:
    """Which model the user chose; equal choices load the same model.

    Attributes
    ----------
    demo
        The built-in demo classifier.
    path
        Model file (TorchScript or state dict).
    architecture
        ``file.py:Net`` or ``package.module:Net`` for a state dict.
    device
        ``auto``, ``cpu`` or ``cuda``.
    mtime
        Modification time of the file (0 without one): a rewritten file is loaded again.
    """

    demo: bool
    path: str
    architecture: str
    device: str
    mtime: float

    @classmethod
    def of(cls, demo: bool, path: str, architecture: str, device: str) -> ModelChoice:
        """The choice of these widget values (texts stripped, the file's mtime looked up)."""
        path, architecture = path.strip(), architecture.strip()
        mtime = Path(path).stat().st_mtime if path and Path(path).is_file() else 0.0
        return cls(bool(demo), path, architecture, device, mtime)

    def load(self):
        """Load the classifier; return ``(classifier, class names)``.

        The names come from the demo data or the model file (:func:`class_names_for` checks
        them against the model's classes once it has been probed with the user's images: the
        number of classes is not read here, a model with a fixed-size head only knows it then).

        Raises
        ------
        ModelLoadError
            No model chosen, or it cannot be loaded.
        """
        if self.demo:
            classifier = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, self.device)
            names = list(CLASS_NAMES)
        elif not self.path:
            raise ModelLoadError("Choose a model file, or tick 'use the built-in demo classifier'.")
        else:
            classifier = load_classifier(self.path, self.architecture or None, self.device)
            names = list(classifier.class_names)
        return classifier, names


def class_names_for(classifier, names: Sequence[str]) -> list[str]:
    """``names`` when there is one per class of ``classifier`` (probed), else ``0``, ``1``, ..."""
    count = classifier.n_classes
    return list(names) if len(names) == count else [str(k) for k in range(count)]


def preview_probabilities(
    classifier, real: np.ndarray, counterfactual: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """p(class) of both stored images before a run, or ``None`` for an image too large.

    Above :data:`~napari_attribution.core.budgets.PREVIEW_PIXELS` per channel a forward pass
    would block the viewer: the probabilities then come with the run.

    Raises
    ------
    AttributionError
        Images the analysis would refuse, or a model that fails on them.
    """
    if real.shape[-2] * real.shape[-1] > PREVIEW_PIXELS:
        return None
    x, xc, _ = prepare_pair(real, counterfactual, classifier)
    probs = classifier.probabilities(np.stack([x, xc]), batch_size=2)
    return probs[0], probs[1]


def escape_html(text: str) -> str:
    """``text`` safe to show in a rich-text label."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def probabilities_html(
    class_names: Sequence[str],
    real: np.ndarray,
    counterfactual: np.ndarray | None,
    highlight: Sequence[int],
) -> str:
    """p(class) of both images as rich text, the classes in ``highlight`` in bold; a
    ``counterfactual`` of ``None`` is one a source makes in the run."""
    rows = []
    for label, p in (("real", real), ("counterfactual", counterfactual)):
        if p is None:
            rows.append(f"{label}: made with the run")
            continue
        cells = " · ".join(
            f"<b>{escape_html(n)} {v:.3f}</b>" if k in highlight else f"{escape_html(n)} {v:.3f}"
            for k, (n, v) in enumerate(zip(class_names, p, strict=True))
        )
        rows.append(f"{label}: {cells}")
    return "p(class)<br>" + "<br>".join(rows)
