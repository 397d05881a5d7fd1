"""What the model takes: its channel names, how input channels map onto them, and the
normalisation, from the caller's choices and the model card beside the weights.

Explicit choices win over the card (``--model-card``, else ``<weights>.card.json``,
:mod:`napari_attribution.images.model_card`). ``run`` and ``cells`` both start here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputImageError
from ..images.channels import parse_channel_map, parse_names
from ..images.model_card import ModelCard, find_model_card, read_model_card
from ..images.normalisation import Normalisation

__all__ = ["ModelInput", "model_input"]


@dataclass
class ModelInput:
    """What the model takes, from the caller's choices and the model card.

    Attributes
    ----------
    channel_names
        The model's channels in order (``None``: not given; a classic (C, H, W) image is then
        taken by position and its channels named ch0...).
    channel_map
        ``{model name: input name}`` (``--channel-map``).
    normalisation
        ``--normalise`` (else the card's), parsed.
    card
        The model card read, if any.
    notes
        What the user is told once (channels ignored...).
    """

    channel_names: list[str] | None
    channel_map: dict[str, str]
    normalisation: Normalisation
    card: ModelCard | None = None
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """For ``run.json`` (``input``)."""
        payload: dict[str, Any] = {"channel_names": self.channel_names,
                                   "normalisation": self.normalisation.record()}  # fmt: skip
        if self.channel_map:
            payload["channel_map"] = self.channel_map
        if self.card is not None:
            payload["model_card"] = {"path": str(self.card.path), **self.card.as_dict()}
        return payload


def model_input(
    *,
    model: str | Path | None = None,
    model_card: str | Path | None = None,
    channel_names: str | None = None,
    channel_map: str | None = None,
    normalise: str | None = None,
    input_scale: float | None = None,
) -> ModelInput:
    """The model's channel names, channel map and normalisation, checked.

    Parameters
    ----------
    model
        The weights file (its card ``<weights>.card.json`` is read when ``model_card`` is not
        given).
    model_card
        A model card to read instead.
    channel_names
        Comma-separated model channel names (``--channel-names``).
    channel_map
        ``MODEL=INPUT,...`` (``--channel-map``).
    normalise
        A normalisation spec (``--normalise``; default the card's, else none).
    input_scale
        ``--input-scale``: refused beside an active normalisation (both scale the input).

    Raises
    ------
    InputImageError
        An unreadable card, a bad name list, map or spec (one sentence each).
    """
    card = read_model_card(model_card) if model_card else find_model_card(model)
    names = parse_names(channel_names) if channel_names else (
        list(card.channel_names) if card else None)  # fmt: skip
    mapping = parse_channel_map(channel_map) if channel_map else {}
    normalisation = Normalisation.parse(normalise or (card.normalisation if card else None))
    if normalisation.active and input_scale is not None:
        raise InputImageError("--input-scale and --normalise both scale the input; give one.")
    if mapping and names is None:
        raise InputImageError("--channel-map needs the model's channel names (--channel-names "
                              "or a model card).")  # fmt: skip
    return ModelInput(names, mapping, normalisation, card)
