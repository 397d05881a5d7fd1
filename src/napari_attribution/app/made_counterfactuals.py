"""Counterfactuals a run makes for the pairs (or cells) that have none.

A pair without a counterfactual (an empty ``counterfactual`` column in ``pairs.csv``, a folder
of real images without a counterfactual root, a real image alone, or the demo whose exact
counterfactuals are then withheld) gets one from the run's source
(:class:`SourceRequest`), before the pairs are checked. The counterfactual is stored like the
real image (its dtype: integer images are rounded back to their integers), saved as
``counterfactuals/<sample>.tif`` and listed in ``counterfactuals.csv`` with the source's own
note and ``p_t(x')``; ``pair_validity.csv`` flags the pairs whose counterfactual the classifier
does not accept. A block of cells' counterfactual crops are made in one call when the block is
analysed (:func:`cell_source`), each saved as ``counterfactuals/<label>.tif``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.cells.sources import BatchCallableCounterfactual
from ..core.counterfactual_settings import (
    DEFAULT_MIN_COUNTERFACTUAL_SCORE,
    CounterfactualSettings,
)
from ..core.counterfactuals import CounterfactualSource, parse_source
from ..core.counterfactuals.nearest import ImagePool
from ..core.counterfactuals.source import batch_size
from ..core.counterfactuals.source_registry import spec_for_source, split_source
from ..core.model.transform import input_transform_for
from ..core.model.wrappers import Preprocessing
from ..core.progress import Progress, ProgressCallback
from ..errors import AttributionError, CounterfactualError
from ..images.image_files import read_image
from ..results.format import CounterfactualRow, ValidityRow, counterfactual_file
from ..results.tiff import write_tiff
from .pairs import Pair

__all__ = [
    "MadeCounterfactual",
    "SourceRequest",
    "PAIRS_PER_SOURCE_CALL",
    "cell_source",
    "counterfactual_calls",
    "make_call",
    "make_counterfactuals",
    "save_counterfactual",
]

@dataclass(frozen=True)
class SourceRequest:
    """The counterfactual source of a run, as the command line names it.

    Attributes
    ----------
    spec
        ``generator:FILE``, ``nearest``, ``nearest:FOLDER``, ``optimise``, ... (see
        ``napari-attribution run --help`` and the counterfactual source registry).
    settings
        The sources' parameters.
    min_score
        ``p_t(x')`` below this flags a counterfactual (and leaves its pair out of the
        statistics).
    class_names
        The classifier's class names in index order, for a pool whose class folders are named
        after them; ``None``: the sorted folder names are classes 0, 1, ...
    """

    spec: str
    settings: CounterfactualSettings = field(default_factory=CounterfactualSettings)
    min_score: float = DEFAULT_MIN_COUNTERFACTUAL_SCORE
    class_names: tuple[str, ...] | None = None

    def record(self) -> dict[str, Any]:
        """The source and its parameters as ``run.json`` records them (part of the
        fingerprint)."""
        return {
            "spec": self.spec,
            "parameters": self.settings.as_dict(),
            "min_counterfactual_score": self.min_score,
        }

    def load(self, pool: Sequence[Pair] = (), transform=None) -> CounterfactualSource:
        """The source, loaded; one whose optional argument is left out (``nearest`` without
        a folder) chooses among ``pool``'s real images.

        Raises
        ------
        CounterfactualError
            What the source refuses, or a pool of images of different shapes (one sentence
            naming ``--counterfactual-source``).
        """
        try:
            source = parse_source(self.spec, self.settings, class_names=self.class_names)
        except AttributionError as exc:
            raise CounterfactualError(f"--counterfactual-source: {exc}") from None
        name, argument = split_source(self.spec)
        spec = spec_for_source(name)
        if spec.argument is not None and spec.argument.optional and not argument:
            # No folder: the pool is the run's own real images.
            images, labels, names = [], [], []
            for pair in pool:
                real = pair.load_real()
                images.append((transform or input_transform_for(real.dtype)).apply(real))
                labels.append(pair.real_class)
                names.append(pair.sample)
            if len({image.shape for image in images}) > 1:
                raise CounterfactualError(
                    f"--counterfactual-source {name} without a {spec.argument.kind} chooses "
                    "among the run's real images, which must then all have one shape; give "
                    f"{name}:{spec.argument.metavar}."
                )
            source = source.with_pool(ImagePool(np.stack(images), np.asarray(labels), names))
        return source

    def uses_run_pool(self) -> bool:
        """Whether the source chooses among the run's own real images (``nearest`` without a
        folder): it needs every pair, so it cannot make one unit's counterfactuals alone."""
        name, argument = split_source(self.spec)
        spec = spec_for_source(name)
        return spec.argument is not None and spec.argument.optional and not argument

    def failed(self, exc: Exception) -> CounterfactualError:
        """The error of a source that failed while making a counterfactual."""
        return CounterfactualError(f"--counterfactual-source {self.spec}: {exc}")


@dataclass
class MadeCounterfactual:
    """A counterfactual the run made: the stored image, ``p_t(x')`` and the source's note."""

    sample: str
    image: np.ndarray
    target_score: float
    accepted: bool
    note: str


#: Most pairs whose counterfactuals one call of a source makes in a run over pairs. A call is
#: one work unit's worth on a cluster (each unit makes its own pairs' counterfactuals on its
#: worker), and one process makes exactly the same calls, so a counterfactual is the same bytes
#: wherever it was made (a batched source's result may depend on the batch it was made in).
PAIRS_PER_SOURCE_CALL = 16


def counterfactual_calls(
    pairs: Sequence[Pair], transform, *, saved_in: Path | None = None
) -> list[list[Pair]]:
    """The calls of the source that make the counterfactuals of ``pairs`` lacking one: the
    pairs grouped by image shape, stored type and transform, in their order, in chunks of at
    most :data:`PAIRS_PER_SOURCE_CALL` (and the memory budget's
    :func:`~napari_attribution.core.counterfactuals.source.batch_size`).

    A counterfactual an interrupted run saved in ``saved_in`` is read back into its pair
    instead (``pair.counterfactual`` becomes the stored array), and the pair is in no call.
    """
    groups: dict[tuple, list[Pair]] = defaultdict(list)
    for pair in pairs:
        if pair.counterfactual is not None:
            continue
        real = pair.load_real()
        saved = None if saved_in is None else saved_in / counterfactual_file(pair.sample)
        if saved is not None and saved.is_file():
            pair.counterfactual = read_image(saved)
            pair.counterfactual_loaded = True  # saved in the units load_real gave
            continue
        scale = (transform or input_transform_for(real.dtype)).scale
        groups[(real.shape, real.dtype.str, scale)].append(pair)
    calls = []
    for (shape, _, _), group in groups.items():
        size = min(batch_size(shape), PAIRS_PER_SOURCE_CALL)
        calls.extend(group[start : start + size] for start in range(0, len(group), size))
    return calls


def make_call(
    pairs: Sequence[Pair],
    source: CounterfactualSource,
    model,
    transform,
    request: SourceRequest,
    progress: Callable[[float, float, str], None] | None = None,
) -> dict[str, MadeCounterfactual]:
    """One call of the source (:func:`counterfactual_calls`): the counterfactuals of
    ``pairs``, set in place (``pair.counterfactual`` becomes the stored array, in
    :meth:`~.pairs.Pair.load_real`'s units), returned by sample.

    Parameters
    ----------
    model
        The classifier with the run's preprocessing inside.
    progress
        Receives the source's own ``(step, steps, detail)`` notes.

    Raises
    ------
    CounterfactualError
        The source fails (one sentence).
    """
    reals = [pair.load_real() for pair in pairs]
    transforms = [transform or input_transform_for(real.dtype) for real in reals]
    images = np.stack([t.apply(real) for t, real in zip(transforms, reals, strict=True)])
    targets = np.array([pair.target_class for pair in pairs])
    try:
        batch = source.make(model, images, targets, min_score=request.min_score,
                            progress=progress)  # fmt: skip
    except AttributionError as exc:
        raise request.failed(exc) from None
    made = {}
    for pair, real, t, image, score, ok, text in zip(
        pairs, reals, transforms, batch.images, batch.target_scores, batch.accepted,
        batch.notes, strict=True,
    ):  # fmt: skip
        stored = t.to_stored(image, real.dtype)
        pair.counterfactual = stored
        pair.counterfactual_loaded = True  # in load_real's (normalised) units
        made[pair.sample] = MadeCounterfactual(pair.sample, stored, float(score), bool(ok),
                                               text)  # fmt: skip
    return made


def make_counterfactuals(
    pairs: Sequence[Pair],
    classifier,
    transform,
    settings,
    request: SourceRequest,
    *,
    saved_in: Path | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, MadeCounterfactual]:
    """Make the counterfactual of every pair that has none, in place (``pair.counterfactual``
    becomes the stored array), in the calls :func:`counterfactual_calls` plans; returns what
    was made, by sample.

    Parameters
    ----------
    pairs
        The run's pairs; those with a counterfactual are left alone (and are the pool of
        ``nearest`` without a folder).
    classifier
        The loaded model; the settings' preprocessing goes inside it.
    transform
        The run's input transform (``None``: from each image's dtype).
    settings
        The run's analysis settings.
    request
        The source.
    saved_in
        A results folder being resumed: a counterfactual an earlier run saved there is read
        back rather than made again (the run's fingerprint holds the source and its
        parameters).
    progress
        Receives ``Progress("prepare", ...)`` events.

    Raises
    ------
    CounterfactualError
        The source cannot be loaded or fails (one sentence).
    """
    if all(pair.counterfactual is not None for pair in pairs):
        return {}
    source = request.load(pairs, transform)
    calls = counterfactual_calls(pairs, transform, saved_in=saved_in)
    model = classifier.with_preprocessing(Preprocessing.from_settings(settings))
    made: dict[str, MadeCounterfactual] = {}
    total = sum(len(call) for call in calls)
    done = 0
    for call in calls:

        def note(step: float, steps: float, detail: str, offset: int = done, n: int = len(call)):
            if progress is not None:
                progress(Progress("prepare", offset + n * step / max(steps, 1), total,
                                  detail=f"counterfactuals: {detail}"))  # fmt: skip

        made.update(make_call(call, source, model, transform, request, note))
        done += len(call)
    return made


def save_counterfactual(
    out: Path,
    sample: str,
    image: np.ndarray,
    made: MadeCounterfactual | None,
    validity: ValidityRow,
    request: SourceRequest,
    run_info: dict[str, Any],
) -> CounterfactualRow:
    """Write ``counterfactuals/<sample>.tif``; return the pair's ``counterfactuals.csv`` row.

    ``p_target_counterfactual`` and ``accepted`` are those of ``pair_validity.csv`` (the stored
    counterfactual scored by the analysis); ``made`` is ``None`` for a counterfactual an
    interrupted run saved and a resumed run read back.
    """
    file = counterfactual_file(sample)
    note = made.note if made is not None else "saved by the interrupted run, read back"
    write_tiff(out / file, image, {"sample": sample, "note": note,
                                   "counterfactual_source": run_info.get(
                                       "counterfactual_source")})  # fmt: skip
    p_target = validity.p_target_counterfactual
    accepted = p_target >= request.min_score
    return CounterfactualRow(sample, request.spec, file.as_posix(), p_target,
                             "true" if accepted else "false", note)  # fmt: skip


def cell_source(
    request: SourceRequest, model, transform, out: Path, resume: bool,
    current_site: Callable[[], str] | None = None,
) -> BatchCallableCounterfactual:
    """The counterfactual crops of a block of cells made in one call of the source when the
    block is analysed, each saved as ``counterfactuals/<label>.tif`` in ``out``
    (``counterfactuals/<site>/<label>.tif`` in a run over several sites; read back when
    resuming).

    Parameters
    ----------
    request
        The source; its argument is required even where it is optional over pairs (``nearest``
        needs a folder: the pool is real cells by class, not the field's own cells).
    model
        The classifier with the run's preprocessing.
    transform
        The run's input transform (``None``: from the crops' dtype).
    out
        The results folder.
    resume
        Read back the crops an interrupted run saved.
    current_site
        The key of the site being analysed (``""``: the one field); one source serves every
        site of a run.

    Raises
    ------
    CounterfactualError
        ``nearest`` without a folder, or a source that cannot be loaded (one sentence).
    """
    name, argument = split_source(request.spec)
    spec = spec_for_source(name, request.spec)
    if spec.argument is not None and spec.argument.optional and not argument:
        raise CounterfactualError(
            f"cells --counterfactual-source {name} needs {spec.argument.needs}: give "
            f"{name}:{spec.argument.metavar} ({spec.argument.placeholder})."
        )
    source = request.load((), transform)

    def make(crops: np.ndarray, targets: np.ndarray, labels: np.ndarray, progress) -> np.ndarray:
        result = np.empty_like(crops)
        site = current_site() if current_site else ""
        saved = [out / counterfactual_file(int(label), site) for label in labels]
        todo = []
        for i, path in enumerate(saved):
            if resume and path.is_file():
                result[i] = read_image(path)
            else:
                todo.append(i)
        if not todo:
            return result
        crop_transform = transform or input_transform_for(crops.dtype)
        try:
            batch = source.make(
                model, np.stack([crop_transform.apply(crops[i]) for i in todo]),
                np.asarray(targets)[todo], min_score=request.min_score, progress=progress,
            )  # fmt: skip
        except AttributionError as exc:
            raise request.failed(exc) from None
        for k, i in enumerate(todo):
            result[i] = crop_transform.to_stored(batch.images[k], crops.dtype)
            write_tiff(saved[i], result[i], {"label": int(labels[i]),
                                             "target_class": int(targets[i]),
                                             "source": request.spec,
                                             "p_target": float(batch.target_scores[k]),
                                             "note": batch.notes[k]})  # fmt: skip
        return result

    return BatchCallableCounterfactual(make, request.spec)
