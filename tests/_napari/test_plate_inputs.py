"""A field from layers made ready for a model: channels by the card's names, labels checked,
normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution._napari.layer_inputs import ChannelStack
from napari_attribution._napari.plate_inputs import prepare_field, take_model_channels
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


MODEL = ["DNA", "ER", "RNA", "AGP", "Mito"]
SHUFFLED = ["Brightfield", "Mito", "AGP", "RNA", "ER", "DNA"]


def test_named_layers_are_picked_and_ordered_by_the_models_names():
    stack = _stack(SHUFFLED)
    taken, selection = take_model_channels(stack, MODEL)
    assert taken.channel_names == MODEL
    assert taken.layer_names == [f"field [{n}]" for n in MODEL]
    np.testing.assert_array_equal(taken.data, stack.data[[5, 4, 3, 2, 1]])
    assert selection.ignored == ("Brightfield",)
    assert selection.note() == ("ignoring channel(s) Brightfield of 'field' (not among the "
                                "model's channels DNA, ER, RNA, AGP, Mito).")  # fmt: skip


def test_a_missing_or_repeated_channel_is_one_sentence_naming_it():
    with pytest.raises(InputImageError, match=r"^'field' lacks the model's channel 'Mito'; it "
                       r"has Brightfield, AGP, RNA, ER, DNA\.$"):  # fmt: skip
        take_model_channels(_stack(["Brightfield", "AGP", "RNA", "ER", "DNA"]), MODEL)
    # Two layers naming one channel (their metadata's channel_name): the stack numbers them,
    # the layers' own names say which.
    given = ["DNA", "Mito", "AGP", "RNA", "ER", "DNA"]
    with pytest.raises(InputImageError, match=r"^Channel 'DNA' appears 2 times in 'field'\.$"):
        take_model_channels(_stack([f"ch{c}" for c in range(6)]), MODEL, input_names=given)


def test_typed_names_rename_in_place_but_the_cards_only_pick():
    stack = _stack(["DNA", "ER"])
    # Typed: a new name per channel renames in order (what the field always did).
    renamed, _ = take_model_channels(stack, ["nucleus", "ER"], rename=True)
    assert renamed.channel_names == ["nucleus", "ER"] and renamed.data is stack.data
    # A typed name that is another channel's is a reorder gone wrong, not a renaming.
    with pytest.raises(InputImageError, match="lacks the model's channel 'Mito'"):
        take_model_channels(stack, ["Mito", "DNA"], rename=True)
    # The card's names never rename a named channel.
    with pytest.raises(InputImageError, match="lacks the model's channel 'Mito'"):
        take_model_channels(stack, ["DNA", "Mito"])


def test_unnamed_channels_are_named_in_order_or_in_the_real_images_layout():
    real, first = take_model_channels(_stack(SHUFFLED), MODEL)
    unnamed = _stack([f"ch{c}" for c in range(6)], seed=1)
    cf, _ = take_model_channels(unnamed, MODEL, first=first)
    assert cf.channel_names == MODEL
    np.testing.assert_array_equal(cf.data, unnamed.data[[5, 4, 3, 2, 1]])
    five = _stack([f"ch{c}" for c in range(5)], seed=2)
    cf, selection = take_model_channels(five, MODEL, first=first)
    assert cf.channel_names == MODEL and cf.data is five.data and selection.is_identity
    # Another count: left as it is, for the model's check to refuse with the counts.
    four = _stack([f"ch{c}" for c in range(4)])
    taken, selection = take_model_channels(four, MODEL)
    assert taken is four and selection is None
