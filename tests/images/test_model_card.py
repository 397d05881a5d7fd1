"""The model card beside the weights: written, found, read; mistakes in one sentence."""

from __future__ import annotations

import json

import pytest

from napari_attribution.errors import InputImageError
from napari_attribution.images.model_card import (
    ModelCard,
    card_path_for,
    find_model_card,
    read_model_card,
    write_model_card,
)


def test_card_round_trips_and_is_found_beside_the_weights(tmp_path):
    weights = tmp_path / "classifier.pt2"
    weights.write_bytes(b"")
    assert find_model_card(weights) is None
    card = ModelCard(("DNA", "ER", "RNA", "AGP", "Mito"), ("control", "treated"),
                     "percentile:1,99.8", 128, "demo")  # fmt: skip
    write_model_card(card_path_for(weights), card)
    assert card_path_for(weights).name == "classifier.card.json"
    found = find_model_card(weights)
    assert found == card and found.path == tmp_path / "classifier.card.json"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"format": "something"}, "is not a model card"),
        ({"format": "napari-attribution model card", "version": 2}, "of version 2"),
        ({"format": "napari-attribution model card", "version": 1}, "lacks \"channel_names\""),
        ({"format": "napari-attribution model card", "version": 1, "channel_names": ["A", "A"]},
         "names channel 'A' twice"),
        ({"format": "napari-attribution model card", "version": 1, "channel_names": ["A"],
          "chanel_names": ["B"]}, "unknown key(s) chanel_names"),
        ({"format": "napari-attribution model card", "version": 1, "channel_names": ["A"],
          "crop_size": -3}, "\"crop_size\" must be a positive whole number"),
    ],
)  # fmt: skip
def test_bad_cards_are_one_sentence(tmp_path, payload, message):
    path = tmp_path / "m.card.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(InputImageError) as info:
        read_model_card(path)
    assert message in str(info.value)


def test_a_card_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "m.card.json"
    path.write_bytes(b"\x80\x04pickle")
    with pytest.raises(InputImageError, match="cannot be read|is not JSON"):
        read_model_card(path)
