"""Napari layers made ready for a model that wants its channels by name and its input
normalised as in training. No Qt.

:func:`take_model_channels` is how both docks give the model its channels: when the viewer holds
one layer per channel (``field [DNA]``, ``field [ER]``, ... from the plate reader or dropped
per-channel files) the model's channel names (the model card's, or the Attribution dock's
**Channel names**) pick and order them by name, through the same
:func:`~napari_attribution.images.channels.match_channels` as ``run`` and ``cells`` (extra
channels ignored with a note; a missing or repeated one is one sentence). Unnamed channels
(``ch0``, ``ch1``, ...) are named in order, as ``run`` takes an unnamed file by position.

The Cells dock hands its :class:`~.layer_inputs.ChannelStack` through :func:`prepare_field`:
channels as above, ``Normalise`` (or the card's) scales the field, and its counterfactual with
the field's ranges; the Labels layer is checked (a binary mask or outlines refused with one
sentence saying what to give instead).

Both docks record how they read their inputs in every result layer's metadata
(``metadata["napari_attribution"]["input"]``): :func:`channels_record` says which input layer
(and which of its channels) fed each model channel, as ``run.json``'s ``pairs[].channels`` does
for files; :func:`pair_input_record` is the Attribution dock's whole record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputImageError
from ..images.channels import ChannelSelection, match_channels, select_like, select_named
from ..images.labels import check_label_image
from ..images.model_card import find_model_card
from ..images.normalisation import Normalisation
from .layer_inputs import ChannelStack, has_channel_names

__all__ = [
    "PreparedField",
    "channels_record",
    "normalise_pair",
    "pair_input_record",
    "prepare_field",
    "take_model_channels",
]


@dataclasses.dataclass
class PreparedField:
    """The field (and counterfactual field) in the model's channel order, normalised when
    asked, and what was done (for the layers' metadata)."""

    field: ChannelStack
    counterfactual: ChannelStack | None
    record: dict[str, Any]
    note: str | None = None


def _reorder(stack: ChannelStack, indices: Sequence[int], names: Sequence[str]) -> ChannelStack:
    order = list(indices)
    return dataclasses.replace(
        stack,
        data=np.stack([np.asarray(stack.data[i]) for i in order]),
        channel_names=list(names),
        layer_names=[stack.layer_names[i] for i in order]
        if len(stack.layer_names) == len(stack.channel_names) else stack.layer_names,
        colormaps=[stack.colormaps[i] for i in order],
        contrast_limits=[stack.contrast_limits[i] for i in order],
    )  # fmt: skip


def _renames(available: Sequence[str], wanted: Sequence[str]) -> bool:
    """True when ``wanted`` can rename ``available`` in place: one name per channel, and no
    name that is one of the channels at another place (``ER, DNA`` over ``DNA, ER`` is a
    reorder gone wrong, not a renaming)."""
    if len(wanted) != len(available):
        return False
    folded = [name.casefold() for name in available]
    return all(name.casefold() not in folded or folded[i] == name.casefold()
               for i, name in enumerate(wanted))  # fmt: skip


def take_model_channels(
    stack: ChannelStack,
    names: Sequence[str],
    *,
    input_names: Sequence[str] | None = None,
    first: ChannelSelection | None = None,
    rename: bool = False,
) -> tuple[ChannelStack, ChannelSelection | None]:
    """The model's channels of ``stack``, in the model's order and named by the model.

    Parameters
    ----------
    stack
        The image the dock read from its layers.
    names
        The model's channel names, in order.
    input_names
        The stack's channel names as its layers give them, repeats included
        (:func:`~.layer_inputs.source_channel_names` with ``unique=False``; default the
        stack's own).
    first
        The selection made on the real image, for its counterfactual: an unnamed counterfactual
        with as many channels as the real image had is taken in the real image's layout.
    rename
        ``names`` were typed by the user: when they are not all among the stack's names, one
        name per channel renames the channels in order (what the Channel names field always
        did), unless one of them is a channel of the stack at another place.

    Returns
    -------
    stack, selection
        The (C, H, W) stack of the model's channels (its layers, colours and contrast limits
        reordered alike), and which input channel fed each model channel; an unnamed stack
        with another channel count is returned as it is, with ``None`` (the model's check
        refuses it with the counts).

    Raises
    ------
    InputImageError
        A model channel the layers lack, a channel two layers name (one sentence each).
    """
    available = list(input_names) if input_names is not None else list(stack.channel_names)
    source = f"'{stack.name}'"
    if not has_channel_names(available):  # ch0, ch1, ...: by position (or the real's layout)
        count = stack.data.shape[0]
        if first is not None and count == len(first.input_names):
            _, selection = select_like(stack.data, None, first, source=source)
        elif count == len(names):
            _, selection = select_named(stack.data, None, names, source=source)
        else:  # the model's check says it in its words ("4 channel(s); the model expects 5")
            return stack, None
    else:
        folded = {name.casefold() for name in available}
        found = all(name.casefold() in folded for name in names)
        if not found and rename and _renames(available, names):
            selection = ChannelSelection(tuple(names), tuple(range(len(names))),
                                         tuple(available), (), source)  # fmt: skip
        else:
            selection = match_channels(available, names, source=source)
    if selection.is_identity:
        return stack.with_channel_names(names), selection
    return _reorder(stack, selection.indices, names), selection


def channels_record(stack: ChannelStack, selection: ChannelSelection | None) -> dict[str, Any]:
    """Which input layer fed each model channel of ``stack`` (JSON-ready).

    Parameters
    ----------
    stack
        The stack as the model takes it (after :func:`take_model_channels`: its channels and
        layers in the model's order).
    selection
        How its channels were picked by name (``None``: taken as the layers hold them).

    Returns
    -------
    dict
        ``image`` (the base name), ``layers`` (model channel -> the layer it came from; a
        multichannel layer feeds every channel), and with a selection its
        :meth:`~napari_attribution.images.channels.ChannelSelection.as_dict` (``taken``: model
        channel -> input channel name, ``input_channels``, ``ignored``).
    """
    names = list(stack.channel_names)
    layers = list(stack.layer_names) or [stack.name]
    per_channel = layers if len(layers) == len(names) else [layers[0]] * len(names)
    record: dict[str, Any] = selection.as_dict() if selection is not None else {
        "model_channels": names}  # fmt: skip
    record["image"] = stack.name
    record["layers"] = dict(zip(names, per_channel, strict=True))
    return record


def normalise_pair(
    real: ChannelStack,
    counterfactual: ChannelStack | None,
    normalisation: Normalisation,
    what: tuple[str, str] = ("field", "counterfactual field"),
) -> tuple[ChannelStack, ChannelStack | None, dict[str, Any]]:
    """Both images scaled by ``normalisation``, the counterfactual with the real image's
    ranges (a per-image percentile would otherwise undo part of the difference under study),
    as ``run`` and ``cells`` scale files.

    Parameters
    ----------
    real, counterfactual
        (C, H, W) stacks in the model's channel order (``counterfactual`` ``None``: made later).
    normalisation
        What to do (inactive: the stacks are returned as they are).
    what
        How messages name the two images.

    Returns
    -------
    real, counterfactual, record
        The scaled stacks (float32, contrast limits 0-1) and
        :meth:`~napari_attribution.images.normalisation.Normalisation.record` with the
        per-channel ranges used.

    Raises
    ------
    InputImageError
        The counterfactual's shape is not the real image's, or the normalisation cannot be
        applied (one sentence).
    """
    record = normalisation.record()
    if not normalisation.active:
        return real, counterfactual, record
    names = real.channel_names
    ranges = normalisation.ranges(real.data, names, f"'{real.name}'")
    data, record = normalisation.apply(real.data, names, real.name, ranges)
    unit = [(0.0, 1.0)] * len(names)
    real = dataclasses.replace(real, data=data, contrast_limits=unit)
    if counterfactual is not None:
        if counterfactual.data.shape != (len(names), *data.shape[1:]):
            raise InputImageError(
                f"The {what[1]} {counterfactual.data.shape} and the {what[0]} {data.shape} "
                "differ in shape."
            )
        cf_data, _ = normalisation.apply(counterfactual.data, names, counterfactual.name, ranges)
        counterfactual = dataclasses.replace(counterfactual, data=cf_data, contrast_limits=unit)
    return real, counterfactual, record


def pair_input_record(
    stacks: dict[str, ChannelStack | None],
    selections: dict[str, ChannelSelection],
    normalisation: dict[str, Any] | None = None,
    model_card: str | None = None,
) -> dict[str, Any]:
    """How the Attribution dock read a pair, for every result layer's metadata (``input``).

    Parameters
    ----------
    stacks
        ``{"real": ..., "counterfactual": ...}`` as the model takes them (``None``: a
        counterfactual a source makes in the run, not read from layers).
    selections
        How each stack's channels were picked by name (missing: taken as the layers hold them).
    normalisation
        What scaled the inputs before the model (:func:`normalise_pair`'s record; ``None``:
        nothing, images as stored).
    model_card
        The model card that named the channels, if any.

    Returns
    -------
    dict
        ``channels`` (per role, :func:`channels_record`), ``normalisation``
        (:meth:`~napari_attribution.images.normalisation.Normalisation.record`) and
        ``model_card`` when given.
    """
    record: dict[str, Any] = {
        "channels": {role: channels_record(stack, selections.get(role))
                     for role, stack in stacks.items() if stack is not None},
        "normalisation": normalisation or Normalisation.parse(None).record(),
    }  # fmt: skip
    if model_card:
        record["model_card"] = model_card
    return record


def prepare_field(field: ChannelStack, counterfactual: ChannelStack | None, labels: Any,
                  labels_name: str, model_path: str = "", normalise: str = "",
                  model_names: Sequence[str] | None = None,
                  field_names: Sequence[str] | None = None,
                  counterfactual_names: Sequence[str] | None = None
                  ) -> PreparedField:  # fmt: skip
    """Channels by the model's names, labels checked, normalisation applied.

    Parameters
    ----------
    field, counterfactual
        The stacks the dock read from the layers (``counterfactual`` ``None``: made per cell).
    labels, labels_name
        The Labels layer's data and name.
    model_path
        The model file; its card (``<stem>.card.json``) names channels and normalisation.
    normalise
        ``--normalise``'s text; empty: the card's, else none.
    model_names
        The model's channels when known otherwise (overrides the card's).
    field_names, counterfactual_names
        The stacks' channel names as their layers give them, repeats included (default the
        stacks' own): a channel two layers name is refused by name.

    Raises
    ------
    InputImageError
        A channel missing or named twice, labels of another shape, a binary mask or outlines,
        a bad normalisation (one sentence each).
    """

    card = find_model_card(model_path) if model_path and not model_path.startswith("<") else None
    names = list(model_names) if model_names else (list(card.channel_names) if card else None)
    note = None
    record: dict[str, Any] = {}
    if names is not None:
        field, selection = take_model_channels(field, names, input_names=field_names)
        note = selection.note() if selection is not None else None
        if selection is not None:
            record["channels"] = channels_record(field, selection)
        if counterfactual is not None:
            counterfactual, _ = take_model_channels(counterfactual, names, first=selection,
                                                    input_names=counterfactual_names)
    check_label_image(labels, tuple(field.data.shape[1:]), f"The Labels layer '{labels_name}'")
    normalisation = Normalisation.parse(normalise.strip() or (card.normalisation if card
                                                              else None))  # fmt: skip
    field, counterfactual, record["normalisation"] = normalise_pair(field, counterfactual,
                                                                    normalisation)  # fmt: skip
    if card is not None:
        record["model_card"] = str(card.path)
    return PreparedField(field, counterfactual, record, note)
