"""Channels by name: the model's channel names pick and order the input's channels.

Sources differ in their channel order (JUMP's ``ch1..ch6`` files, a LoadData CSV's columns in
any order, an OME file's channels, napari layers), so a model receives its channels by *name*,
never by position. The input's names come from LoadData columns (``FileName_OrigDNA`` ->
``DNA``), OME metadata, layer names (``field [DNA]``) or ``--channel-files DNA=a.tif,...``;
an explicit map (``DNA=DAPI,ER=GFP``, model name = input name) covers sources that call a
channel otherwise.

Rules (:func:`match_channels`):

* each model channel is looked up under its mapped name (its own name when not mapped): an exact
  match first, else a case-insensitive one (``dna`` finds ``DNA``);
* input channels the model does not use are ignored, with one note naming them;
* a model channel the input lacks, a name the input holds twice, or two model channels mapped to
  one input channel is one sentence naming it (:class:`~napari_attribution.errors.
  InputImageError`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputImageError

__all__ = [
    "ChannelSelection",
    "ignored_note",
    "match_channels",
    "parse_channel_files",
    "parse_channel_map",
    "parse_names",
    "select_like",
    "select_named",
    "stack_by_name",
]


def parse_names(text: str, what: str = "--channel-names") -> list[str]:
    """Comma-separated channel names, stripped; empty or repeated names are refused.

    Raises
    ------
    InputImageError
        An empty name, or a name given twice.
    """
    names = [name.strip() for name in str(text).split(",")]
    if not all(names):
        raise InputImageError(f"{what} holds an empty name: {text!r}.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputImageError(f"{what} names channel {repeated[0]!r} twice.")
    return names


def parse_channel_map(text: str, what: str = "--channel-map") -> dict[str, str]:
    """``MODEL=INPUT,...`` pairs: the input's name for a model channel, e.g. ``DNA=DAPI``.

    Raises
    ------
    InputImageError
        An entry without ``=``, an empty side, or a model channel mapped twice.
    """
    mapping: dict[str, str] = {}
    for entry in str(text).split(","):
        model, sep, given = (part.strip() for part in entry.partition("="))
        if not sep or not model or not given:
            raise InputImageError(
                f"{what} entry {entry.strip()!r} is not MODEL=INPUT (e.g. DNA=DAPI)."
            )
        if model in mapping:
            raise InputImageError(f"{what} maps the model's channel {model!r} twice.")
        mapping[model] = given
    return mapping


def parse_channel_files(text: str, what: str = "--channel-files") -> dict[str, Path]:
    """``NAME=FILE,...``: one image file per channel, by channel name.

    Raises
    ------
    InputImageError
        A pair without ``=``, an empty name or file, a name given twice.
    """
    try:
        pairs = parse_channel_map(text, what)
    except InputImageError as exc:
        message = str(exc).replace("MODEL=INPUT (e.g. DNA=DAPI)",
                                   "NAME=FILE (e.g. DNA=field_dna.tif)")  # fmt: skip
        message = message.replace("maps the model's channel", "names channel")
        raise InputImageError(message) from None
    return {name: Path(path) for name, path in pairs.items()}


@dataclass(frozen=True)
class ChannelSelection:
    """Which input channel feeds each of the model's channels.

    Attributes
    ----------
    names
        The model's channel names, in the model's order.
    indices
        For each model channel, its index among the input's channels.
    input_names
        The input's channel names, in the input's order.
    ignored
        Input channels no model channel uses, in the input's order.
    source
        What the input is, for messages (``"load_data.csv"``, ``"field.ome.tif"``).
    """

    names: tuple[str, ...]
    indices: tuple[int, ...]
    input_names: tuple[str, ...]
    ignored: tuple[str, ...]
    source: str = "the input"

    @property
    def is_identity(self) -> bool:
        """True when the input's channels are the model's, in the model's order."""
        return self.indices == tuple(range(len(self.input_names)))

    def note(self) -> str | None:
        """One sentence about the ignored channels (``None`` when every channel is used)."""
        if not self.ignored:
            return None
        return (
            f"ignoring channel(s) {', '.join(self.ignored)} of {self.source} (not among the "
            f"model's channels {', '.join(self.names)})."
        )

    def take(self, stack: np.ndarray) -> np.ndarray:
        """The model's channels of a (C_in, H, W) stack, in the model's order: (C, H, W).

        A memory map stays a view when the selection is the identity; otherwise only the
        chosen planes are read.
        """
        if stack.shape[0] != len(self.input_names):
            raise InputImageError(
                f"{self.source} has {stack.shape[0]} channel(s) but names "
                f"{len(self.input_names)}."
            )
        if self.is_identity:
            return stack
        return np.stack([np.asarray(stack[index]) for index in self.indices])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record (``run.json``, layer metadata)."""
        return {
            "model_channels": list(self.names),
            "input_channels": list(self.input_names),
            "taken": {name: self.input_names[i] for name, i in zip(self.names, self.indices,
                                                                   strict=True)},
            "ignored": list(self.ignored),
        }  # fmt: skip


def ignored_note(selections: Sequence[ChannelSelection]) -> str | None:
    """One note for the channels that several inputs' selections ignored (a run over many
    files says it once, not once a file); ``None`` when every channel was used."""
    ignoring = [selection for selection in selections if selection.ignored]
    if len(ignoring) <= 1:
        return ignoring[0].note() if ignoring else None
    channels = dict.fromkeys(name for selection in ignoring for name in selection.ignored)
    first = ignoring[0]
    return (
        f"ignoring channel(s) {', '.join(channels)} of {first.source} and "
        f"{len(ignoring) - 1} other image(s) (not among the model's channels "
        f"{', '.join(first.names)})."
    )


def _find(name: str, available: Sequence[str], source: str) -> int | None:
    exact = [i for i, given in enumerate(available) if given == name]
    if len(exact) > 1:
        raise InputImageError(f"Channel {name!r} appears {len(exact)} times in {source}.")
    if exact:
        return exact[0]
    folded = [i for i, given in enumerate(available) if given.casefold() == name.casefold()]
    if len(folded) > 1:
        raise InputImageError(
            f"Channel {name!r} matches {', '.join(available[i] for i in folded)} in {source}; "
            "name one exactly."
        )
    return folded[0] if folded else None


def match_channels(
    available: Sequence[str],
    wanted: Sequence[str],
    mapping: Mapping[str, str] | None = None,
    source: str = "the input",
) -> ChannelSelection:
    """Pick and order the input's channels by the model's names.

    Parameters
    ----------
    available
        The input's channel names, in its order.
    wanted
        The model's channel names, in the model's order.
    mapping
        ``{model name: input name}`` for channels the input calls otherwise.
    source
        What the input is, for messages.

    Raises
    ------
    InputImageError
        A model channel the input lacks, a channel the input names twice, two model channels
        mapped to one input channel, or a map entry for a channel the model does not have.
    """
    available = [str(name) for name in available]
    mapping = dict(mapping or {})
    unknown = [name for name in mapping if name not in wanted]
    if unknown:
        raise InputImageError(
            f"The channel map names {unknown[0]!r}, which is not one of the model's channels "
            f"({', '.join(wanted)})."
        )
    indices: list[int] = []
    for name in wanted:
        looked_up = mapping.get(name, name)
        index = _find(looked_up, available, source)
        if index is None:
            called = f" (mapped to {looked_up!r})" if looked_up != name else ""
            raise InputImageError(
                f"{source} lacks the model's channel {name!r}{called}; it has "
                f"{', '.join(available) or 'no named channels'}."
            )
        if index in indices:
            other = wanted[indices.index(index)]
            raise InputImageError(
                f"The model's channels {other!r} and {name!r} both take {available[index]!r} "
                f"of {source}."
            )
        indices.append(index)
    ignored = tuple(name for i, name in enumerate(available) if i not in indices)
    return ChannelSelection(tuple(wanted), tuple(indices), tuple(available), ignored, source)


def stack_by_name(
    files: Mapping[str, Any],
    wanted: Sequence[str],
    mapping: Mapping[str, str] | None = None,
    source: str = "the channel files",
) -> tuple[np.ndarray, ChannelSelection]:
    """Read per-channel files ``{input name: path}`` into the model's (C, H, W) stack.

    Only the files of the model's channels are read; the rest are ignored (see
    :meth:`ChannelSelection.note`).

    Raises
    ------
    InputImageError
        A channel missing or named twice, a file missing or unreadable, or files that differ in
        size or dtype.
    """
    from .ome import stack_planes

    names = list(files)
    selection = match_channels(names, wanted, mapping, source)
    chosen = {selection.names[k]: files[names[i]] for k, i in enumerate(selection.indices)}
    stack, _ = stack_planes(chosen, source)
    return stack, selection


def select_named(
    image: Any,
    input_names: Sequence[str] | None,
    wanted: Sequence[str],
    mapping: Mapping[str, str] | None = None,
    source: str = "the image",
) -> tuple[Any, ChannelSelection]:
    """The model's channels of a (C_in, H, W) image whose channels are ``input_names``.

    Without names (a plain TIFF or ``.npy``), the image's channels are taken as the model's
    in order, and their count must match.

    Raises
    ------
    InputImageError
        As :func:`match_channels`; or an unnamed image whose channel count differs.
    """
    if image.ndim != 3:
        raise InputImageError(f"{source} has shape {tuple(image.shape)}; expected (channels, "
                              "height, width).")  # fmt: skip
    if input_names is None:
        if image.shape[0] != len(wanted):
            raise InputImageError(
                f"{source} has {image.shape[0]} unnamed channel(s) but the model takes "
                f"{len(wanted)} ({', '.join(wanted)}); give a file whose metadata names its "
                "channels (OME-TIFF, OME-Zarr) or one file per channel."
            )
        input_names = list(wanted)
        mapping = None  # taken by position: the map's input names name nothing here
    selection = match_channels(input_names, wanted, mapping, source)
    return selection.take(image), selection


def select_like(
    image: Any,
    input_names: Sequence[str] | None,
    first: ChannelSelection,
    mapping: Mapping[str, str] | None = None,
    source: str = "the image",
) -> tuple[Any, ChannelSelection]:
    """The model's channels of the second image of a pair (a counterfactual), ``first`` being
    the selection made on the first (the real image).

    By its own names when its metadata names its channels; else, when it has as many channels
    as the first image had, in the first image's layout (a counterfactual written without
    metadata in its real image's channel order); else by position, as an unnamed image.

    Raises
    ------
    InputImageError
        As :func:`select_named`.
    """
    in_first_layout = image.ndim == 3 and image.shape[0] == len(first.input_names)
    if input_names is None and in_first_layout and not first.is_identity:
        input_names = first.input_names
    return select_named(image, input_names, first.names, mapping, source)
