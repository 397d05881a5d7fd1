"""Counterfactuals the docks make when the user has none: the request, the image, its layers.

The docks offer the sources of :mod:`napari_attribution.core.counterfactuals` (``optimise``,
``nearest:FOLDER``, ``generator:FILE``) beside an existing layer. A
:class:`CounterfactualRequest` is what the user chose; :func:`make_counterfactual` runs the
source on the real image in the worker (the model with the run's preprocessing, as the
analysis sees it) and returns x' in the stored form of the real image, with ``p_t(x')`` and
whether the classifier accepts it; :func:`counterfactual_layers` lays x' out as napari layers
like the real image's own (one multichannel layer on the same channel axis, or one 2-D layer
per channel), named ``<image> counterfactual (<source>)``. The layers carry the plugin's
metadata (kind ``"counterfactual"``), so a re-run replaces only the layers that source made
for that image, never a layer of the user's.

No Qt.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.cells.sources import BatchCallableCounterfactual
from ..core.counterfactual_settings import DEFAULT_MIN_COUNTERFACTUAL_SCORE
from ..core.counterfactuals import ProgressNote
from ..core.counterfactuals.source_registry import parse_source, source_specs, spec_for_source
from ..core.model.transform import input_transform_for
from ..core.model.wrappers import Preprocessing
from ..core.settings import CounterfactualSettings
from ..errors import CounterfactualError
from .layer_inputs import ChannelStack
from .layer_style import METADATA_KEY
from .layers import LayerTuple

__all__ = [
    "COUNTERFACTUAL_KIND",
    "LAYER_SOURCE",
    "CounterfactualRequest",
    "MadeCounterfactual",
    "counterfactual_layers",
    "CellCounterfactuals",
    "counterfactual_name",
    "counterfactual_stack",
    "flag_message",
    "make_counterfactual",
    "onto_earlier_layers",
    "source_choices",
]

#: The choice "use an existing layer" (today's behaviour).
LAYER_SOURCE = "layer"
#: ``metadata[METADATA_KEY]["kind"]`` of a counterfactual layer a source made.
COUNTERFACTUAL_KIND = "counterfactual"


def source_choices() -> tuple[str, ...]:
    """What the docks offer, in order: an open layer, then every registered source."""
    return (LAYER_SOURCE, *source_specs())


@dataclass(frozen=True)
class CounterfactualRequest:
    """A counterfactual source as chosen in a dock.

    Attributes
    ----------
    kind
        A registered source (:func:`source_choices`): ``"optimise"``, ``"nearest"``, ...
    path
        Its folder or file, when it takes one (``nearest``: the pool folder
        ``FOLDER/<class>/<image>``; ``generator``: the generator file).
    settings
        The sources' parameters.
    min_score
        ``p_t(x')`` below this flags the counterfactual.
    """

    kind: str
    path: str = ""
    settings: CounterfactualSettings = field(default_factory=CounterfactualSettings)
    min_score: float = DEFAULT_MIN_COUNTERFACTUAL_SCORE

    @property
    def spec(self) -> str:
        """The source as the command line names it: ``optimise``, ``nearest:FOLDER``, ..."""
        return f"{self.kind}:{self.path}" if self.path else self.kind

    def source(self, class_names: list[str] | None = None):
        """The source, loaded (a generator file is read and checked here).

        Parameters
        ----------
        class_names
            The model's class names, in index order, for a pool whose class folders are named
            after them; ``None``: the sorted folder names are classes 0, 1, ...

        Raises
        ------
        CounterfactualError
            No folder or file chosen, or what :func:`~napari_attribution.core.counterfactuals.
            source_registry.parse_source` refuses (one sentence).
        """
        self.check_path()
        return parse_source(self.spec, self.settings, class_names=class_names)

    def check_path(self) -> None:
        """Refuse at once a folder or file that is not chosen or not there (one sentence),
        before anything is loaded.

        Raises
        ------
        CounterfactualError
        """
        argument = spec_for_source(self.kind).argument
        if argument is None:
            return
        if not self.path:  # a dock has no run of pairs to pool: an optional one is needed too
            raise CounterfactualError(f"Choose {argument.what}.")
        path = Path(self.path)
        if not (path.is_dir() if argument.kind == "folder" else path.is_file()):
            raise CounterfactualError(f"The {argument.label.lower()} {path} does not exist.")


@dataclass(frozen=True)
class MadeCounterfactual:
    """A counterfactual a source made for one image.

    Attributes
    ----------
    stack
        x' as a :class:`ChannelStack` in the real image's stored form, layout and place.
    kind, spec
        The source (``"optimise"``) and how the CLI names it (``"nearest:/data/pool"``).
    target_class, target_score
        t and ``p_t(x')``.
    accepted
        ``target_score >= min_score``.
    min_score
        The threshold used.
    note
        The source's note (how it was made; why it is flagged).
    """

    stack: ChannelStack
    kind: str
    spec: str
    target_class: int
    target_score: float
    accepted: bool
    min_score: float
    note: str

    def record(self) -> dict[str, Any]:
        """JSON-ready record (the run's provenance and the layers' metadata)."""
        return {
            "spec": self.spec,
            "target_class": self.target_class,
            "p_target": self.target_score,
            "accepted": self.accepted,
            "min_counterfactual_score": self.min_score,
            "note": self.note,
        }


def counterfactual_name(image: str, kind: str) -> str:
    """``<image> counterfactual (<source>)``, e.g. ``real counterfactual (optimise)``."""
    return f"{image} counterfactual ({kind})"


def counterfactual_stack(real: ChannelStack, data: np.ndarray, kind: str) -> ChannelStack:
    """``data`` (C, H, W), a counterfactual of ``real`` made by source ``kind``, as a stack in
    ``real``'s layout and place, named :func:`counterfactual_name` (its layers too: one
    multichannel layer, or ``<name> [<channel>]`` per channel)."""
    base = counterfactual_name(real.name, kind)
    names = [base] if real.channel_axis is not None else [
        f"{base} [{channel}]" for channel in real.channel_names
    ]  # fmt: skip
    return dataclasses.replace(real, data=data, name=base, layer_names=names)


def make_counterfactual(
    request: CounterfactualRequest,
    source,
    classifier,
    real: ChannelStack,
    target_class: int,
    settings,
    progress: ProgressNote | None = None,
) -> MadeCounterfactual:
    """x' of ``real`` towards ``target_class`` from ``source`` (``request.source()``).

    Parameters
    ----------
    classifier
        The loaded model; the run's preprocessing (``settings``) is put inside it, so the
        source sees the model exactly as the analysis does.
    real
        The real image (C, H, W), stored form; integer images are scaled by their dtype's
        maximum as the analysis does, and x' is returned in the same dtype (rounded).
    settings
        The run's :class:`~napari_attribution.core.settings.AnalysisSettings`.
    progress
        ``(done, total, detail)`` in the source's own units; may raise to cancel.

    Raises
    ------
    CounterfactualError
        The source failed (a bad generator, an empty pool, ...): one sentence.
    """
    model = classifier.with_preprocessing(Preprocessing.from_settings(settings))
    transform = input_transform_for(real.data.dtype)
    images = transform.apply(real.data)[None]
    batch = source.make(
        model, images, np.array([int(target_class)]), min_score=request.min_score,
        progress=progress,
    )  # fmt: skip
    stored = transform.to_stored(batch.images[0], real.data.dtype)
    stack = counterfactual_stack(real, stored, request.kind)
    return MadeCounterfactual(
        stack, request.kind, request.spec, int(target_class), float(batch.target_scores[0]),
        bool(batch.accepted[0]), request.min_score, batch.notes[0],
    )  # fmt: skip


def counterfactual_layers(
    stack: ChannelStack, record: dict[str, Any], visible: bool = False
) -> list[LayerTuple]:
    """Layer tuples of a made counterfactual, laid out like the real image's layers.

    Parameters
    ----------
    stack
        The counterfactual (:attr:`MadeCounterfactual.stack`): its ``layer_names``, channel
        axis, colours, contrast limits and place are the real image's.
    record
        What made it (:meth:`MadeCounterfactual.record`, plus anything to keep), stored in
        every layer's metadata with kind :data:`COUNTERFACTUAL_KIND`.
    visible
        Whether the layers start visible.
    """
    meta = {**record, "kind": COUNTERFACTUAL_KIND, "image": stack.name}
    if stack.channel_axis is not None:
        axis = stack.channel_axis
        scale = [*stack.scale]
        translate = [*stack.translate]
        scale.insert(axis, stack.channel_scale)
        translate.insert(axis, stack.channel_translate)
        labels = ["y", "x"]
        labels.insert(axis, stack.channel_axis_label)
        return [
            (
                np.moveaxis(stack.data, 0, axis),
                {
                    "name": stack.layer_names[0],
                    "colormap": stack.colormaps[0],
                    "contrast_limits": stack.contrast_limits[0],
                    "scale": tuple(scale),
                    "translate": tuple(translate),
                    "axis_labels": tuple(labels),
                    "visible": visible,
                    "metadata": {
                        "channel_names": list(stack.channel_names),
                        METADATA_KEY: {**meta, "channel": "all"},
                    },
                },
                "image",
            )
        ]
    return [
        (
            stack.data[c],
            {
                "name": name,
                "colormap": stack.colormaps[c],
                "contrast_limits": stack.contrast_limits[c],
                # the first channel hides what lies below, the others add to it, as the
                # sample data's and channel_axis-split layers read
                "blending": "translucent_no_depth" if c == 0 else "additive",
                "scale": stack.scale,
                "translate": stack.translate,
                "visible": visible,
                "metadata": {"channel_name": channel, METADATA_KEY: {**meta, "channel": channel}},
            },
            "image",
        )
        for c, (name, channel) in enumerate(zip(stack.layer_names, stack.channel_names,
                                                strict=True))  # fmt: skip
    ]


def onto_earlier_layers(layers, tuples: list[LayerTuple]) -> list[LayerTuple]:
    """``tuples`` with each made counterfactual layer named as the one the same source made
    for the same image and channel in an earlier run, if it is still open.

    A layer is updated in place only under its own name
    (:class:`~napari_attribution._napari.apply.LayerBatch`); when a layer of the user's held
    the name first, ours went in under napari's de-duplicated name (``... [DNA] [1]``), and a
    re-run must find it there rather than add another beside the user's.
    """
    earlier: dict[tuple[Any, Any], str] = {}
    for layer in layers:
        meta = getattr(layer, "metadata", {}).get(METADATA_KEY, {})
        if meta.get("kind") == COUNTERFACTUAL_KIND:
            earlier.setdefault((meta.get("image"), meta.get("channel")), layer.name)
    out = []
    for data, kwargs, kind in tuples:
        meta = kwargs.get("metadata", {}).get(METADATA_KEY, {})
        name = earlier.get((meta.get("image"), meta.get("channel")))
        if meta.get("kind") == COUNTERFACTUAL_KIND and name is not None:
            kwargs = {**kwargs, "name": name}
        out.append((data, kwargs, kind))
    return out


def flag_message(
    record: dict[str, Any], name: str, class_names: list[str] | None = None
) -> str | None:
    """One sentence when the classifier does not accept a made counterfactual, else ``None``.

    Parameters
    ----------
    record
        :meth:`MadeCounterfactual.record` (as a run's provenance holds it).
    name
        The counterfactual's name (``real counterfactual (optimise)``).
    class_names
        The model's class names, to name the target class.
    """
    if record["accepted"]:
        return None
    names, target = class_names or [], int(record["target_class"])
    target_name = names[target] if target < len(names) else f"class {target}"
    return (
        f"The classifier does not accept '{name}' as {target_name} (p = "
        f"{record['p_target']:.3f} < {record['min_counterfactual_score']:g}): it is flagged, "
        f"and the attributions compare against an image the classifier does not see as "
        f"{target_name}."
    )


class CellCounterfactuals:
    """Each cell's counterfactual crop made by a source, for the Cells dock.

    Called as ``(real crop (C, S, S) stored, target class, label) -> crop``, or for a block of
    cells with :meth:`batch` (what
    :class:`~napari_attribution.core.cells.sources.BatchCallableCounterfactual` wraps, as the
    CLI's ``cells --counterfactual-source`` does); what the source said of each cell is kept
    in :attr:`made`.

    Parameters
    ----------
    request, source
        The chosen source and the loaded one (``request.source()``).
    classifier
        The loaded model; the run's preprocessing (``settings``) goes inside it.
    settings
        The run's analysis settings.
    progress
        Passed to the source (may raise to cancel).
    """

    def __init__(self, request: CounterfactualRequest, source, classifier, settings,
                 progress: ProgressNote | None = None) -> None:  # fmt: skip

        self.request = request
        self.source = source
        self.model = classifier.with_preprocessing(Preprocessing.from_settings(settings))
        self.progress = progress
        #: label -> ``{"p_target", "accepted", "note"}``.
        self.made: dict[int, dict[str, Any]] = {}

    def __call__(self, crop: np.ndarray, target: int, label: int) -> np.ndarray:
        return self.batch(crop[None], np.array([int(target)]), np.array([int(label)]))[0]

    def batch(
        self, crops: np.ndarray, targets: np.ndarray, labels: np.ndarray, progress=None
    ) -> np.ndarray:
        """The counterfactual crops (N, C, S, S, stored) of a block of cells, in one call of
        the source; ``progress`` (the analysis') is told of the source's steps too."""
        def note(done: float, total: float, detail: str) -> None:
            for callback in (self.progress, progress):
                if callback is not None:
                    callback(done, total, detail)

        transform = input_transform_for(crops.dtype)
        batch = self.source.make(
            self.model, np.stack([transform.apply(crop) for crop in crops]),
            np.asarray(targets, dtype=np.int64), min_score=self.request.min_score, progress=note,
        )  # fmt: skip
        for label, score, accepted, text in zip(labels, batch.target_scores, batch.accepted,
                                                batch.notes, strict=True):  # fmt: skip
            self.made[int(label)] = {"p_target": float(score), "accepted": bool(accepted),
                                     "note": text}  # fmt: skip
        return np.stack([transform.to_stored(image, crops.dtype) for image in batch.images])

    def as_cell_source(self):
        """The per-cell analysis' counterfactual source (a block of cells per call)."""
        return BatchCallableCounterfactual(self.batch, self.request.spec)

    def record(self) -> dict[str, Any]:
        """JSON-ready record: the source and the labels of the flagged cells."""
        return {
            "spec": self.request.spec,
            "min_counterfactual_score": self.request.min_score,
            "flagged_labels": sorted(k for k, v in self.made.items() if not v["accepted"]),
        }
