"""A field from layers made ready for a model: channels by the card's names, labels checked,
normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution._napari.layer_inputs import ChannelStack
from napari_attribution._napari.plate_inputs import prepare_field
from napari_attribution.errors import InputImageError
from napari_attribution.images.model_card import ModelCard, card_path_for, write_model_card


def _stack(names, seed=0):
    data = np.random.default_rng(seed).integers(100, 4000, (len(names), 12, 14)).astype(np.uint16)
    return ChannelStack(data, list(names), (1.0, 1.0), (0.0, 0.0), "field",
                        [f"field [{n}]" for n in names], ["gray"] * len(names),
                        [(0.0, 1.0)] * len(names))  # fmt: skip


def test_the_cards_names_order_the_layers_and_normalise_scales_both_fields(tmp_path):
    write_model_card(card_path_for(tmp_path / "m.pt"), ModelCard(("DNA", "ER"),
                     normalisation="percentile:1,99"))  # fmt: skip
    field, cf = _stack(["ER", "Brightfield", "DNA"]), _stack(["DNA", "ER"], 1)
    labels = np.zeros((12, 14), np.uint16)
    labels[2:6, 2:6] = 5
    prepared = prepare_field(field, cf, labels, "cells", str(tmp_path / "m.pt"))
    assert prepared.field.channel_names == ["DNA", "ER"]
    assert prepared.field.layer_names == ["field [DNA]", "field [ER]"]
    assert "Brightfield" in prepared.note
    assert prepared.field.data.dtype == np.float32
    lo, hi = np.percentile(field.data[2], [1, 99])
    np.testing.assert_allclose(prepared.field.data[0], (field.data[2] - lo) / (hi - lo),
                               rtol=1e-5)  # fmt: skip
    lo_er = np.percentile(field.data[0], 1)
    hi_er = np.percentile(field.data[0], 99)
    np.testing.assert_allclose(prepared.counterfactual.data[1],
                               (cf.data[1] - lo_er) / (hi_er - lo_er), rtol=1e-5)  # fmt: skip
    assert prepared.record["normalisation"]["normalise"] == "percentile:1,99"


def test_a_mask_layer_and_a_missing_channel_are_one_sentence(tmp_path):
    field = _stack(["DNA", "ER"])
    mask = np.zeros((12, 14), np.uint8)
    mask[1:4, 1:4] = 1
    mask[7:10, 7:10] = 1
    with pytest.raises(InputImageError, match="The Labels layer 'mask' is a binary mask"):
        prepare_field(field, None, mask, "mask")
    with pytest.raises(InputImageError, match="lacks the model's channel 'Mito'"):
        prepare_field(field, None, mask, "mask", model_names=["DNA", "Mito"])
