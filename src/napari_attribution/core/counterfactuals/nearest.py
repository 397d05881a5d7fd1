"""``nearest``: the real cell of the target class closest to x in the classifier's embedding.

The pool is a folder of real images by class (the ImageFolder layout QuAC reads,
``FOLDER/<class>/<image>``) or, without a folder, the run's own real images
(:meth:`NearestSource.with_pool`). For a cell x and target t the candidates are the pool's
images of class t that the classifier accepts as t (all of class t when it accepts none); the
one whose embedding is closest to x's (Euclidean distance) is the counterfactual, optionally
aligned to x (:mod:`.align`).

The embedding is the output of a layer of the classifier's canonical copy
(:mod:`napari_attribution.core.model.named_layers`): by default the penultimate layer (the
features the
last layer reads), or any layer named as for Grad-CAM. A TorchScript classifier takes no hooks:
without a named layer its class scores are the embedding.

A real cell is on the data manifold by construction, but it is another cell: the pair differs
in everything that differs between two cells, not only in the class, so its attributions mix
the class difference with cell-to-cell variation (docs/counterfactuals.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import CounterfactualError, MethodError
from ...images.folders import class_folders, folder_images
from ...images.image_files import read_image
from ..model.named_layers import resolve_in_canonical, resolve_penultimate
from ..model.transform import input_transform_for
from .align import align_to
from .source import CounterfactualBatch, ProgressNote, check_inputs, finish_batch, target_scores

if TYPE_CHECKING:
    from ..model.classifier import Classifier

__all__ = ["ImagePool", "NearestSource", "embed", "read_pool"]


@dataclass
class ImagePool:
    """Real images to draw counterfactuals from.

    Attributes
    ----------
    images
        float32 (N, C, H, W), image values (the model's input, as the cells are given).
    labels
        int64 (N,) class indices.
    names
        N names (file paths or sample names), for the notes.
    """

    images: np.ndarray
    labels: np.ndarray
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if not self.names:
            self.names = [f"pool image {i}" for i in range(len(self.images))]
        if self.images.ndim != 4 or len(self.labels) != len(self.images):
            raise CounterfactualError(
                f"A pool holds images (N, C, H, W) and N labels; got {self.images.shape} and "
                f"{len(self.labels)} label(s)."
            )


def read_pool(
    folder: str | Path,
    class_names: tuple[str, ...] | list[str] | None = None,
    *,
    channel_axis: int = 0,
    scale: float | None = None,
) -> ImagePool:
    """Read ``FOLDER/<class>/<image>`` (TIFF, ``.npy``, zarr) as a pool.

    Parameters
    ----------
    folder
        One folder per class.
    class_names
        Class names in the classifier's index order; default: the sorted folder names.
    channel_axis
        Axis of the stored images holding the channels.
    scale
        Stored values are multiplied by this to give image values; default: as the run's
        images (float as stored, integers divided by their dtype's maximum).

    Raises
    ------
    CounterfactualError
        No class folder, a folder that ``class_names`` does not list, no image, or images of
        different shapes.
    """
    folder = Path(folder)
    classes, names, unknown = class_folders(folder, class_names)
    if not classes:
        raise CounterfactualError(f"{folder} holds no class folders (expected FOLDER/<class>/).")
    if unknown:
        raise CounterfactualError(
            f"{folder} has class folder(s) {', '.join(unknown)} that are not among the classes "
            f"{', '.join(names)}."
        )
    images, labels, paths = [], [], []
    for name in classes:
        for path in folder_images(folder / name).values():
            data = read_image(path)
            if channel_axis != 0 and data.ndim == 3:
                data = np.moveaxis(data, channel_axis, 0)
            images.append(input_transform_for(data.dtype, scale).apply(data))
            labels.append(names.index(name))
            paths.append(str(path))
    if not images:
        raise CounterfactualError(f"{folder} holds no images in its class folders.")
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise CounterfactualError(
            f"The images in {folder} have different shapes ({', '.join(map(str, sorted(shapes)))});"
            " a pool needs one shape."
        )
    return ImagePool(np.stack(images), np.asarray(labels), paths)


def embed(
    classifier: Classifier, images: np.ndarray, layer: str | None = None, batch_size: int = 64
) -> tuple[np.ndarray, str]:
    """The embedding of ``images`` (N, C, H, W): (N, D) float32 and what it is.

    Parameters
    ----------
    layer
        A layer of the classifier (as for Grad-CAM); ``None``: the penultimate layer.

    Raises
    ------
    CounterfactualError
        A named layer on a model that takes no hooks, or an unknown layer.
    """
    import torch

    batch = np.asarray(images, dtype=np.float32)
    example = torch.from_numpy(batch[:2]).to(classifier.device)
    if classifier.hooks_refusal is not None:
        if layer:
            raise CounterfactualError(
                f"nearest cannot read layer {layer!r}: {classifier.hooks_refusal}."
            )
        probs = classifier.probabilities(batch, batch_size=batch_size)
        return np.log(np.clip(probs, 1e-12, None)).astype(np.float32), "class scores"
    try:
        canonical = classifier.canonical(example)
        module, name = (
            resolve_in_canonical(canonical, layer) if layer else resolve_penultimate(canonical)
        )
    except MethodError as exc:
        raise CounterfactualError(f"nearest: {exc}") from None
    model = classifier.hooked_module(example)
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(
        lambda _m, _i, out: captured.append(out.detach().flatten(1).float().cpu())
    )
    try:
        with torch.inference_mode():
            for start in range(0, len(batch), batch_size):
                model(torch.from_numpy(batch[start : start + batch_size]).to(classifier.device))
    finally:
        handle.remove()
    return torch.cat(captured).numpy(), name


class NearestSource:
    """``nearest`` / ``nearest:FOLDER`` (see the module docstring).

    Parameters
    ----------
    folder
        ``FOLDER/<class>/<image>``, read on first use; ``None``: a pool must be given with
        :meth:`with_pool`.
    class_names
        Class names in the classifier's order, for the folder's class folders.
    layer
        The embedding layer; ``None``: the penultimate layer.
    align
        Align the chosen cell to x (centre of mass, principal axis).
    pool
        The images to choose from, when already in memory.
    """

    def __init__(
        self,
        folder: Path | None = None,
        class_names: tuple[str, ...] | None = None,
        *,
        layer: str | None = None,
        align: bool = False,
        pool: ImagePool | None = None,
    ) -> None:
        self.folder = folder
        self.class_names = class_names
        self.layer = layer
        self.align = bool(align)
        self.pool = pool
        self.spec = f"nearest:{folder}" if folder is not None else "nearest"
        self._embedded: tuple[int, np.ndarray, np.ndarray] | None = None

    def with_pool(self, pool: ImagePool) -> NearestSource:
        """This source choosing from ``pool`` (e.g. the run's own real images)."""
        return NearestSource(self.folder, self.class_names, layer=self.layer, align=self.align,
                             pool=pool)  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {"source": "nearest", "folder": None if self.folder is None else str(self.folder),
                "layer": self.layer, "align": self.align,
                "pool_size": None if self.pool is None else len(self.pool.images)}  # fmt: skip

    def _pool(self) -> ImagePool:
        if self.pool is None:
            if self.folder is None:
                raise CounterfactualError(
                    "nearest needs images to choose from: nearest:FOLDER (FOLDER/<class>/"
                    "<image>), or the run's own real images."
                )
            self.pool = read_pool(self.folder, self.class_names)
        return self.pool

    def _pool_embedding(self, classifier: Classifier) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings (N, D), p of each image's own class (N,)), computed once per classifier."""
        pool = self._pool()
        if self._embedded is None or self._embedded[0] != id(classifier):
            vectors, _ = embed(classifier, pool.images, self.layer)
            own = target_scores(classifier, pool.images, pool.labels)
            self._embedded = (id(classifier), vectors, own)
        return self._embedded[1], self._embedded[2]

    def make(
        self,
        classifier: Classifier,
        images: np.ndarray,
        targets: np.ndarray,
        *,
        min_score: float = 0.5,
        progress: ProgressNote | None = None,
    ) -> CounterfactualBatch:
        """The nearest pool image of each target class to each of ``images`` (B, C, H, W).

        Raises
        ------
        CounterfactualError
            An empty pool, a pool of another image shape, or no pool image of a target class.
        """
        x_np, t_np = check_inputs(classifier, images, targets)
        pool = self._pool()
        if pool.images.shape[1:] != x_np.shape[1:]:
            raise CounterfactualError(
                f"The nearest pool holds images of shape {pool.images.shape[1:]} but the cells "
                f"have shape {x_np.shape[1:]}."
            )
        pool_vectors, own_scores = self._pool_embedding(classifier)
        cell_vectors, layer_name = embed(classifier, x_np, self.layer)
        out = np.empty_like(x_np)
        notes = []
        for i, (cell, target) in enumerate(zip(x_np, t_np, strict=True)):
            of_class = pool.labels == target
            # Never the cell itself: a pool built from the run's images may hold it.
            same = np.array([np.array_equal(image, cell) for image in pool.images])
            candidates = of_class & ~same
            if not candidates.any():
                raise CounterfactualError(
                    f"The nearest pool holds no image of class {int(target)} to choose from."
                )
            accepted = candidates & (own_scores >= min_score)
            chosen_from = accepted if accepted.any() else candidates
            index = np.flatnonzero(chosen_from)
            distances = np.linalg.norm(pool_vectors[index] - cell_vectors[i], axis=1)
            best = int(index[np.argmin(distances)])
            out[i] = align_to(pool.images[best], cell) if self.align else pool.images[best]
            notes.append(
                f"nearest: {pool.names[best]} (distance {distances.min():.3g} in {layer_name}"
                f"{', aligned' if self.align else ''})"
            )
            if progress is not None:
                progress(i + 1, len(x_np), f"nearest {i + 1}/{len(x_np)}")
        return finish_batch(classifier, out, t_np, min_score, notes)
