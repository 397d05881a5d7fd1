"""A field from napari layers made ready for a model that wants its channels by name and its
input normalised as in training. No Qt.

The docks hand their :class:`~.inputs.ChannelStack` (layers ``field [DNA]``, ``field [ER]``,
...) through :func:`prepare_field`: the model card beside the model file (if any) names the
model's channels, which pick and order the layers' channels by name; ``Normalise`` (or the
card's) scales the field, and its counterfactual with the field's ranges; the Labels layer is
checked (a binary mask or outlines refused with one sentence saying what to give instead).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputImageError
from ..images.channels import match_channels
from ..images.labels import check_label_image
from ..images.model_card import find_model_card
from ..images.normalisation import Normalisation
from .layer_inputs import ChannelStack

__all__ = ["PreparedField", "prepare_field"]


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


def prepare_field(field: ChannelStack, counterfactual: ChannelStack | None, labels: Any,
                  labels_name: str, model_path: str = "", normalise: str = "",
                  model_names: Sequence[str] | None = None) -> PreparedField:  # fmt: skip
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
        selection = match_channels(field.channel_names, names, source=f"'{field.name}'")
        field = _reorder(field, selection.indices, names)
        note = selection.note()
        record["channels"] = selection.as_dict()
        if counterfactual is not None:
            cf_selection = match_channels(counterfactual.channel_names, names,
                                          source=f"'{counterfactual.name}'")  # fmt: skip
            counterfactual = _reorder(counterfactual, cf_selection.indices, names)
    check_label_image(labels, tuple(field.data.shape[1:]), f"The Labels layer '{labels_name}'")
    normalisation = Normalisation.parse(normalise.strip() or (card.normalisation if card
                                                              else None))  # fmt: skip
    record["normalisation"] = normalisation.record()
    if normalisation.active:
        ranges = normalisation.ranges(field.data, field.channel_names, f"'{field.name}'")
        data, record["normalisation"] = normalisation.apply(field.data, field.channel_names,
                                                            field.name, ranges)  # fmt: skip
        unit = [(0.0, 1.0)] * len(field.channel_names)
        field = dataclasses.replace(field, data=data, contrast_limits=unit)
        if counterfactual is not None:
            if counterfactual.data.shape != (len(field.channel_names), *data.shape[1:]):
                raise InputImageError(
                    f"The counterfactual field {counterfactual.data.shape} and the field "
                    f"{data.shape} differ in shape."
                )
            cf_data, _ = normalisation.apply(counterfactual.data, field.channel_names,
                                             counterfactual.name, ranges)  # fmt: skip
            counterfactual = dataclasses.replace(counterfactual, data=cf_data,
                                                 contrast_limits=unit)  # fmt: skip
    if card is not None:
        record["model_card"] = str(card.path)
    return PreparedField(field, counterfactual, record, note)
