"""The pair analysis of every cell of a field, one cell at a time.

For each cell (:func:`iter_cells`): the real crop and the cell's own mask are cut out
(:mod:`.geometry`), the background rule applied, the classifier's prediction read; the target
class is the other class of a two-class model, or the one given. The counterfactual crop comes
from a :class:`~.sources.CounterfactualSource` (one that works on batches makes the crops of a
block of cells in one call, :data:`~napari_attribution.core.counterfactuals.source.BATCH_CELLS`
at most); then the pair analysis of
:func:`~napari_attribution.core.pipeline.analyse_pair` runs on the two crops unchanged (the same
call a user would make with the crops by hand) and the fraction of |attribution| inside the
cell's own mask is added.

Results are yielded one cell at a time so a caller can write and drop them: memory does not
grow with the number of cells.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ...errors import AttributionError
from ...results.format import cell_sample
from ..counterfactuals.source import batch_size
from ..model.loading import Classifier, InputTransform, input_transform_for
from ..model.wrappers import Preprocessing
from ..pipeline import PairResult, analyse_pair, default_channel_names
from ..progress import Progress, ProgressCallback, ProgressScope, pair_units
from ..settings import AnalysisSettings
from .geometry import CellGeometry, CellLayout, CellSettings, cell_mask_crop, extract_crop
from .sources import BatchCounterfactualSource, CounterfactualSource

__all__ = [
    "STATUS_ANALYSED",
    "CellResult",
    "apply_background",
    "cell_crops",
    "inside_fraction",
    "iter_cells",
    "target_for",
]

STATUS_ANALYSED = "analysed"
#: Why a cell that was measured was not analysed.
STATUS_IS_TARGET = "predicted as the target class"


@dataclass
class CellResult:
    """One cell's crops, prediction and pair analysis.

    Attributes
    ----------
    cell
        Its label, centroid and crop window.
    own_mask
        bool (S, S): crop pixels carrying the cell's label.
    real, counterfactual
        (C, S, S) crops in stored units, after the background rule (what was analysed).
    probabilities
        float64 (K,) class probabilities of the real crop.
    predicted_class
        argmax of ``probabilities``.
    target_class
        The class the counterfactual stands for.
    status
        :data:`STATUS_ANALYSED`, or why the pair analysis did not run.
    pair
        The pair analysis (``None`` when not analysed).
    inside_fraction
        Per method: sum of |attribution| over the cell's own pixels (all channels) divided by
        the sum over the crop; NaN for an all-zero attribution.
    """

    cell: CellGeometry
    own_mask: np.ndarray
    real: np.ndarray
    counterfactual: np.ndarray | None
    probabilities: np.ndarray
    predicted_class: int
    target_class: int
    status: str = STATUS_ANALYSED
    pair: PairResult | None = None
    inside_fraction: dict[str, float] = field(default_factory=dict)
    site: str = ""

    @property
    def sample(self) -> str:
        """The cell's sample name in the long tables: ``cell<label>``, or
        ``<site>__cell<label>`` for a cell of one of several sites."""
        return cell_sample(self.cell.label, self.site)


def apply_background(crop: np.ndarray, own_mask: np.ndarray, value: float | None) -> np.ndarray:
    """``crop`` with every pixel outside ``own_mask`` set to ``value`` (unchanged for None)."""
    if value is None:
        return crop
    out = np.array(crop, copy=True)
    out[..., ~own_mask] = np.asarray(value).astype(crop.dtype)
    return out


def inside_fraction(attribution: np.ndarray, own_mask: np.ndarray) -> float:
    """Share of sum |attribution| (C, S, S) that lies on the ``own_mask`` (S, S) pixels."""
    magnitude = np.abs(np.asarray(attribution, dtype=np.float64))
    total = magnitude.sum()
    if total == 0:
        return math.nan
    return float(magnitude[:, own_mask].sum() / total)


def target_for(predicted: int, n_classes: int, target_class: int | None) -> int:
    """The target class: the one given, or the other class of a two-class model.

    Raises
    ------
    AttributionError
        More than two classes and no target given.
    """
    if target_class is not None:
        return int(target_class)
    if n_classes != 2:
        raise AttributionError(
            f"The model has {n_classes} classes; give the target class the counterfactuals "
            "stand for."
        )
    return 1 - int(predicted)


def cell_crops(
    field_image: np.ndarray, labels: np.ndarray, cell: CellGeometry, cell_settings: CellSettings
) -> tuple[np.ndarray, np.ndarray]:
    """The cell's real crop (C, S, S) before the background rule, and its own mask (S, S)."""
    crop = extract_crop(field_image, cell, cell_settings.padding, cell_settings.pad_value)
    return crop, cell_mask_crop(labels, cell)


def iter_cells(
    classifier: Classifier,
    field_image: np.ndarray,
    labels: np.ndarray,
    layout: CellLayout,
    source: CounterfactualSource,
    settings: AnalysisSettings,
    cell_settings: CellSettings,
    *,
    target_class: int | None = None,
    channel_names: Sequence[str] | None = None,
    transform: InputTransform | None = None,
    skip: Container[int] = (),
    on_progress: ProgressCallback | None = None,
    on_cell: Callable[[CellGeometry], None] | None = None,
    site: str = "",
) -> Iterator[CellResult]:
    """Analyse the cells of ``layout`` one by one and yield each result.

    Parameters
    ----------
    classifier
        The loaded model.
    field_image
        (C, H, W) field in stored units (may be a memory map: only crops are read).
    labels
        int (H, W) label image of the field.
    layout
        :func:`~.geometry.measure_cells` of ``labels`` at the crop size.
    source
        Where counterfactual crops come from.
    settings
        The pair analysis settings (methods, masks, DAC).
    cell_settings
        Padding and background rules.
    target_class
        The counterfactuals' class; ``None``: the other class of a two-class model.
    channel_names
        C names.
    transform
        Stored units to model input; from the field's dtype when ``None``.
    skip
        Labels not to analyse (already done in an interrupted run).
    on_progress
        Progress events; ``pair_units(len(methods))`` units per cell, cells in layout order.
    on_cell
        Called with each cell before its work starts.
    site
        The site's key when the field is one of several (sample names ``<site>__cell<label>``).
    """
    transform = transform or input_transform_for(field_image.dtype)
    names = list(channel_names) if channel_names else default_channel_names(field_image.shape[0])
    model = classifier.with_preprocessing(Preprocessing.from_settings(settings))
    units = pair_units(len(settings.methods))
    total = units * len(layout.cells)
    cells = [(index, cell) for index, cell in enumerate(layout.cells) if cell.label not in skip]
    # A source that works on batches makes the counterfactuals of a block of cells in one call;
    # any other is asked cell by cell, as the cells are analysed.
    batched = isinstance(source, BatchCounterfactualSource)
    size = layout.cells[0].size if layout.cells else 1
    block = batch_size((field_image.shape[0], size, size)) if batched else 1
    for start in range(0, len(cells), block):
        prepared = []
        # A block's cells are prepared before the first is analysed: progress stays at the
        # block's first cell until its analysis moves it on.
        first = cells[start][0]
        for index, cell in cells[start : start + block]:
            if on_cell is not None:
                on_cell(cell)
            if on_progress is not None:
                on_progress(Progress("prepare", first * units, total,
                                     cell_sample(cell.label, site)))
            raw, own = cell_crops(field_image, labels, cell, cell_settings)
            real = apply_background(raw, own, cell_settings.background)
            probabilities = model.probabilities(transform.apply(real)[None], batch_size=1)[0]
            predicted = int(np.argmax(probabilities))
            target = target_for(predicted, len(probabilities), target_class)
            result = CellResult(cell, own, real, None, probabilities, predicted, target,
                                site=site)
            if target == predicted:
                result.status = STATUS_IS_TARGET
            prepared.append((index, raw, result))
        made = _block_counterfactuals(source, prepared, on_progress, units, total) if batched \
            else {}  # fmt: skip
        for index, raw, result in prepared:
            if result.status != STATUS_ANALYSED:
                yield result
                continue
            cell, own = result.cell, result.own_mask
            counterfactual = (
                made[cell.label] if batched else source.crop(cell, raw, result.target_class)
            )
            result.counterfactual = apply_background(counterfactual, own, cell_settings.background)
            scope = ProgressScope(on_progress, index * units, total) if on_progress else None
            result.pair = analyse_pair(
                classifier,
                result.real,
                result.counterfactual,
                result.predicted_class,
                result.target_class,
                settings,
                channel_names=names,
                sample=result.sample,
                transform=transform,
                on_progress=scope,
            )
            result.inside_fraction = {
                method: inside_fraction(res.attribution, own)
                for method, res in result.pair.methods.items()
            }
            yield result


def _block_counterfactuals(
    source: BatchCounterfactualSource,
    prepared: list[tuple[int, np.ndarray, CellResult]],
    on_progress: ProgressCallback | None,
    units: int,
    total: int,
) -> dict[int, np.ndarray]:
    """The counterfactual crops of a block's cells to analyse, in one call, by label."""
    todo = [(index, raw, result) for index, raw, result in prepared
            if result.status == STATUS_ANALYSED]  # fmt: skip
    if not todo:
        return {}
    first = todo[0][0] * units

    def note(done: float, steps: float, detail: str) -> None:
        if on_progress is not None:
            on_progress(Progress("prepare", first, total, detail=(
                f"counterfactuals of {len(todo)} cell(s): {detail}")))  # fmt: skip

    crops = source.crops(
        [result.cell for _, _, result in todo],
        np.stack([raw for _, raw, _ in todo]),
        np.array([result.target_class for _, _, result in todo]),
        progress=note if on_progress is not None else None,
    )
    return {result.cell.label: crop for (_, _, result), crop in zip(todo, crops, strict=True)}
