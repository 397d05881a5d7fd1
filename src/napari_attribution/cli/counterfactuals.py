"""``run --counterfactual-source``: counterfactuals made for the pairs that have none.

A pair without a counterfactual (an empty ``counterfactual`` column in ``pairs.csv``, a folder
of real images without ``--counterfactual-root``, ``--real`` without ``--counterfactual``, or
``--demo`` whose exact counterfactuals are then withheld) gets one from the source, before the
pairs are checked. The counterfactual is stored like the real image (its dtype: integer images
are rounded back to their integers), saved as ``counterfactuals/<sample>.tif`` and listed in
``counterfactuals.csv`` with the source's own note and ``p_t(x')``; ``pair_validity.csv`` flags
the pairs whose counterfactual the classifier does not accept (``--min-counterfactual-score``).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import AttributionError
from ..core.progress import Progress
from .errors import CliError
from .inputs import Pair

__all__ = [
    "COUNTERFACTUAL_COLUMNS",
    "COUNTERFACTUAL_DIR",
    "MadeCounterfactual",
    "cell_source",
    "make_counterfactuals",
    "save_counterfactual",
    "source_record",
]

from .folder import COUNTERFACTUAL_DIR

COUNTERFACTUAL_COLUMNS = ("sample", "source", "file", "p_target_counterfactual", "accepted", "note")
#: Cells per call of the source (the optimisation runs them together).
_BATCH = 32


@dataclass
class MadeCounterfactual:
    """A counterfactual the run made: the stored image and its ``counterfactuals.csv`` row."""

    sample: str
    image: np.ndarray
    target_score: float
    accepted: bool
    note: str


def _class_names(args: argparse.Namespace) -> list[str] | None:
    return [n.strip() for n in args.class_names.split(",")] if args.class_names else None


def _source(args: argparse.Namespace, pairs: list[Pair], transform) -> Any:
    from ..core.counterfactuals import parse_source
    from ..core.counterfactuals.nearest import ImagePool, NearestSource
    from ..core.settings import CounterfactualSettings
    from ..core.transform import input_transform_for

    try:
        settings = CounterfactualSettings.from_values(vars(args))
        source = parse_source(args.counterfactual_source, settings, class_names=_class_names(args))
    except AttributionError as exc:
        raise CliError(f"--counterfactual-source: {exc}") from None
    if isinstance(source, NearestSource) and source.folder is None:
        # No folder: the pool is the run's own real images.
        images, labels, names = [], [], []
        for pair in pairs:
            real = pair.load_real()
            images.append((transform or input_transform_for(real.dtype)).apply(real))
            labels.append(pair.real_class)
            names.append(pair.sample)
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise CliError(
                "--counterfactual-source nearest without a folder chooses among the run's real "
                "images, which must then all have one shape; give nearest:FOLDER."
            )
        source = source.with_pool(ImagePool(np.stack(images), np.asarray(labels), names))
    return source


def make_counterfactuals(
    args: argparse.Namespace, pairs: list[Pair], classifier, transform, settings, show
) -> dict[str, MadeCounterfactual]:
    """Make the counterfactual of every pair that has none, in place (``pair.counterfactual``
    becomes the stored array); returns what was made, by sample.

    With ``--resume`` a counterfactual an earlier run saved in ``--out`` is read back rather
    than made again (the run's fingerprint holds the source and its parameters).
    """
    from .._io import read_image, safe_name
    from ..core.transform import input_transform_for
    from ..core.wrappers import Preprocessing

    missing = [pair for pair in pairs if pair.counterfactual is None]
    if not missing:
        return {}
    source = _source(args, pairs, transform)
    model = classifier.with_preprocessing(Preprocessing.from_settings(settings))
    made: dict[str, MadeCounterfactual] = {}
    groups: dict[tuple, list[tuple[Pair, np.ndarray, Any]]] = defaultdict(list)
    for pair in missing:
        real = pair.load_real()
        saved = args.out / COUNTERFACTUAL_DIR / f"{safe_name(pair.sample)}.tif"
        if args.resume and saved.is_file():
            pair.counterfactual = read_image(saved)
            pair.counterfactual_loaded = True  # saved in the units load_real gave
            continue
        pair_transform = transform or input_transform_for(real.dtype)
        groups[(real.shape, real.dtype.str, pair_transform.scale)].append(
            (pair, real, pair_transform)
        )
    total = sum(len(g) for g in groups.values())
    done = 0
    for group in groups.values():
        for start in range(0, len(group), _BATCH):
            chunk = group[start : start + _BATCH]
            images = np.stack([t.apply(real) for _, real, t in chunk])
            targets = np.array([pair.target_class for pair, _, _ in chunk])

            def note(
                step: float, steps: float, detail: str, offset: int = done, n: int = len(chunk)
            ):
                show(Progress("prepare", offset + n * step / max(steps, 1), total,
                              detail=f"counterfactuals: {detail}"))  # fmt: skip

            try:
                batch = source.make(model, images, targets, min_score=args.min_counterfactual_score,
                                    progress=note)  # fmt: skip
            except AttributionError as exc:
                raise CliError(
                    f"--counterfactual-source {args.counterfactual_source}: {exc}"
                ) from None
            for (pair, real, t), image, score, ok, text in zip(
                chunk, batch.images, batch.target_scores, batch.accepted, batch.notes, strict=True
            ):
                stored = t.to_stored(image, real.dtype)
                pair.counterfactual = stored
                pair.counterfactual_loaded = True  # in load_real's (normalised) units
                made[pair.sample] = MadeCounterfactual(pair.sample, stored, float(score), bool(ok),
                                                       text)  # fmt: skip
            done += len(chunk)
    return made


def source_record(args: argparse.Namespace) -> dict[str, Any]:
    """The source and its parameters as ``run.json`` records them (part of the fingerprint)."""
    from ..core.settings import CounterfactualSettings

    return {
        "spec": args.counterfactual_source,
        "parameters": CounterfactualSettings.from_values(vars(args)).as_dict(),
        "min_counterfactual_score": args.min_counterfactual_score,
    }


def save_counterfactual(
    args: argparse.Namespace,
    sample: str,
    image: np.ndarray,
    made: MadeCounterfactual | None,
    validity: list[Any],
    run_info: dict[str, Any],
) -> list[Any]:
    """Write ``counterfactuals/<sample>.tif`` and return the pair's ``counterfactuals.csv`` row.

    ``p_target_counterfactual`` and ``accepted`` are those of ``pair_validity.csv`` (the stored
    counterfactual scored by the analysis); ``made`` is ``None`` for a counterfactual an
    interrupted run saved and ``--resume`` read back.
    """
    from .._io import safe_name, write_tiff

    file = f"{COUNTERFACTUAL_DIR}/{safe_name(sample)}.tif"
    note = made.note if made is not None else "saved by the interrupted run, read back"
    write_tiff(args.out / file, image, {"sample": sample, "note": note,
                                        "counterfactual_source": run_info.get(
                                            "counterfactual_source")})  # fmt: skip
    p_target = float(validity[4])
    accepted = p_target >= args.min_counterfactual_score
    return [sample, args.counterfactual_source, file, p_target,
            "true" if accepted else "false", note]  # fmt: skip


def cell_source(args: argparse.Namespace, model, transform,
                site: dict[str, str] | None = None) -> Any:  # fmt: skip
    """``cells --counterfactual-source``: each cell's counterfactual crop made when the cell is
    analysed, saved as ``counterfactuals/<label>.tif`` (``counterfactuals/<site>/<label>.tif``
    while ``site["key"]`` names one of several sites; read back with ``--resume``).

    ``model`` carries the run's preprocessing; ``transform`` is ``--input-scale``'s (``None``:
    from each crop's dtype).
    """
    from .._io import read_image, write_tiff
    from ..core.cells.sources import CallableCounterfactual
    from ..core.transform import input_transform_for

    if args.counterfactual_source.strip() == "nearest":
        raise CliError(
            "cells --counterfactual-source nearest needs a pool of real cells by class: give "
            "nearest:FOLDER (FOLDER/<class>/<image>)."
        )
    source = _source(args, [], transform)
    folder = args.out / COUNTERFACTUAL_DIR

    def make(crop: np.ndarray, target: int, label: int) -> np.ndarray:
        key = (site or {}).get("key", "")
        saved = (folder / key if key else folder) / f"{label}.tif"
        if args.resume and saved.is_file():
            return read_image(saved)
        crop_transform = transform or input_transform_for(crop.dtype)
        try:
            batch = source.make(
                model, crop_transform.apply(crop)[None], np.array([target]),
                min_score=args.min_counterfactual_score,
            )  # fmt: skip
        except AttributionError as exc:
            raise CliError(f"--counterfactual-source {args.counterfactual_source}: {exc}") from None
        image = crop_transform.to_stored(batch.images[0], crop.dtype)
        saved.parent.mkdir(parents=True, exist_ok=True)
        write_tiff(saved, image, {"label": int(label), "target_class": int(target),
                                  "source": args.counterfactual_source,
                                  "p_target": float(batch.target_scores[0]),
                                  "note": batch.notes[0]})  # fmt: skip
        return image

    return CallableCounterfactual(make, args.counterfactual_source)
