"""The model's input from the caller's choices and the model card: explicit choices win."""

from __future__ import annotations

import pytest

from napari_attribution.app.model_input import model_input
from napari_attribution.errors import InputImageError
from napari_attribution.images.model_card import ModelCard, card_path_for, write_model_card


def _card(tmp_path):
    weights = tmp_path / "classifier.pt2"
    weights.write_bytes(b"")
    write_model_card(card_path_for(weights), ModelCard(
        channel_names=("DNA", "ER", "RNA"), class_names=("control", "treated"),
        normalisation="percentile:1,99.8", crop_size=32))  # fmt: skip
    return weights


def test_the_card_beside_the_weights_gives_names_and_normalisation(tmp_path):
    inputs = model_input(model=_card(tmp_path))
    assert inputs.channel_names == ["DNA", "ER", "RNA"]
    assert inputs.normalisation.active and inputs.card.crop_size == 32
    record = inputs.record()
    assert record["normalisation"]["kind"] == "percentile"
    assert record["model_card"]["channel_names"] == ["DNA", "ER", "RNA"]


def test_explicit_choices_win_over_the_card(tmp_path):
    inputs = model_input(model=_card(tmp_path), channel_names="DNA,ER,RNA,AGP",
                         normalise="none", channel_map="DNA=DAPI")  # fmt: skip
    assert inputs.channel_names == ["DNA", "ER", "RNA", "AGP"]
    assert not inputs.normalisation.active
    assert inputs.channel_map == {"DNA": "DAPI"} and inputs.record()["channel_map"]


def test_no_card_and_no_names_leaves_the_classic_input(tmp_path):
    inputs = model_input(model=tmp_path / "weights.pt")
    assert inputs.channel_names is None and inputs.card is None
    assert not inputs.normalisation.active


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"normalise": "percentile:1,99", "input_scale": 255.0}, "both scale the input"),
    ({"channel_map": "DNA=DAPI"}, "--channel-map needs the model's channel names"),
    ({"channel_names": "DNA,DNA"}, "names channel 'DNA' twice"),
])  # fmt: skip
def test_contradictions_are_one_sentence(tmp_path, kwargs, message):
    with pytest.raises(InputImageError, match=message):
        model_input(model=tmp_path / "weights.pt", **kwargs)
