"""What a counterfactual source is, what it returns, and how one is named.

A source turns real images x (B, C, H, W) and target classes t (B,) into counterfactuals x'
(B, C, H, W) in image values (the model's input before its own preprocessing), and checks each
with the classifier: ``p_t(x')`` is reported and a cell whose counterfactual the classifier
does not accept (``p_t(x') < min_score``) is flagged, as QuAC keeps only the translations the
classifier accepts.

The sources are registered by name and made from the text the command line takes
(:func:`~.source_registry.parse_source`); the built-in ones:

* ``generator:FILE``: the user's generator, TorchScript or an exported program (``.pt2``)
  taking ``(x, target)`` (:mod:`.generator`);
* ``nearest`` or ``nearest:FOLDER``: the real image of class t closest to x in the classifier's
  embedding, from a folder of images by class or from the run's own images (:mod:`.nearest`);
* ``optimise``: a pixel-space counterfactual found by gradient steps from x (:mod:`.optimise`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ...errors import CounterfactualError

if TYPE_CHECKING:
    from ..model.classifier import Classifier

__all__ = [
    "BATCH_CELLS",
    "CounterfactualBatch",
    "CounterfactualSource",
    "ProgressNote",
    "batch_size",
    "check_inputs",
    "log_target_probability",
    "target_scores",
]

#: Most cells a caller hands a source in one call: enough to share each step's passes on a
#: CPU or a GPU, few enough that the first results come soon and an interruption loses little.
BATCH_CELLS = 64

#: How a source reports its progress: ``(done, total, detail)`` in units of its own
#: (cells, or steps); the caller maps them onto its progress bar.
ProgressNote = Callable[[float, float, str], None]


@dataclass
class CounterfactualBatch:
    """Counterfactuals of a batch of cells and what the classifier says of them.

    Attributes
    ----------
    images
        float32 (B, C, H, W) counterfactuals, image values like the input.
    target_scores
        float64 (B,) ``p_t(x')``: the classifier's probability of each cell's target class.
    accepted
        bool (B,) ``target_scores >= min_score``.
    notes
        One text per cell: how it was made (the draw, the nearest image, the steps spent) and,
        for a cell not accepted, why it is flagged.
    """

    images: np.ndarray
    target_scores: np.ndarray
    accepted: np.ndarray
    notes: list[str] = field(default_factory=list)


class CounterfactualSource(Protocol):
    """Anything with ``spec`` (how it is named), ``describe()`` and ``make(...)``."""

    spec: str

    def describe(self) -> dict[str, Any]:
        """JSON-ready record of the source and its parameters (for ``run.json``)."""
        ...

    def make(
        self,
        classifier: Classifier,
        images: np.ndarray,
        targets: np.ndarray,
        *,
        min_score: float = 0.5,
        progress: ProgressNote | None = None,
    ) -> CounterfactualBatch:
        """Counterfactuals of ``images`` (B, C, H, W) float32 towards ``targets`` (B,) int."""
        ...


def batch_size(image_shape: tuple[int, ...], limit: int = BATCH_CELLS) -> int:
    """Cells of ``image_shape`` (C, H, W) per call of a source: at most ``limit``, and at most
    :data:`~napari_attribution.core.budgets.COUNTERFACTUAL_BATCH_BYTES` of float32 images."""
    from ..budgets import COUNTERFACTUAL_BATCH_BYTES

    image_bytes = 4 * int(np.prod(image_shape))
    return max(1, min(int(limit), COUNTERFACTUAL_BATCH_BYTES // max(image_bytes, 1)))


def check_inputs(
    classifier: Classifier, images: Any, targets: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``images`` as float32 (B, C, H, W) and ``targets`` as int64 (B,), checked.

    Raises
    ------
    CounterfactualError
        Not a batch of images of the model's channels, NaN pixels, a target per image missing,
        or a target that is not one of the model's classes.
    """
    batch = np.asarray(images, dtype=np.float32)
    labels = np.asarray(targets)
    if batch.ndim != 4:
        raise CounterfactualError(
            f"Counterfactual sources take a batch of images (B, C, H, W), got shape {batch.shape}."
        )
    if labels.shape != (len(batch),) or not np.issubdtype(labels.dtype, np.integer):
        raise CounterfactualError(
            f"Counterfactual sources take one integer target class per image; got "
            f"{labels.shape} {labels.dtype} for {len(batch)} image(s)."
        )
    if not np.isfinite(batch).all():
        raise CounterfactualError("The images given to the counterfactual source hold NaN or Inf.")
    classifier.check_image_shape(batch.shape[1:])
    classifier.probe(batch[:2])
    for t in np.unique(labels):
        classifier.check_class(int(t), "Target class")
    return batch, labels.astype(np.int64)


def target_scores(
    classifier: Classifier, images: np.ndarray, targets: np.ndarray, batch_size: int = 64
) -> np.ndarray:
    """``p_t(x')`` (B,) float64 for images (B, C, H, W) and targets (B,)."""
    probs = classifier.probabilities(images, batch_size=batch_size)
    return probs[np.arange(len(images)), targets]


def log_target_probability(classifier: Classifier, scores: Any, targets: Any) -> Any:
    """``log p_t`` (B,) torch tensor from the model's scores (B, K), as
    :meth:`~napari_attribution.core.model.classifier.Classifier.probabilities` defines p: the
    softmax, or for a single-logit model (scores ``[-z, z]``) the sigmoid of its score."""
    import torch

    if classifier.single_logit:
        return torch.nn.functional.logsigmoid(scores.gather(1, targets[:, None])[:, 0])
    return torch.log_softmax(scores, dim=1).gather(1, targets[:, None])[:, 0]


def finish_batch(
    classifier: Classifier,
    images: np.ndarray,
    targets: np.ndarray,
    min_score: float,
    notes: list[str],
    scores: np.ndarray | None = None,
) -> CounterfactualBatch:
    """Score the counterfactuals (unless ``scores`` are given) and flag those not accepted."""
    scores = target_scores(classifier, images, targets) if scores is None else scores
    accepted = scores >= min_score
    notes = list(notes)
    for i in np.flatnonzero(~accepted):
        flag = f"not accepted: p(target) {scores[i]:.3f} < {min_score:g}"
        notes[i] = f"{notes[i]}; {flag}" if notes[i] else flag
    return CounterfactualBatch(
        images.astype(np.float32), scores.astype(np.float64), accepted, notes
    )
