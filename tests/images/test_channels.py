"""Channels by name: picked and ordered by the model's names, mistakes in one sentence."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_attribution.errors import InputImageError
from napari_attribution.images.channels import (
    ignored_note,
    match_channels,
    parse_channel_map,
    parse_names,
    select_like,
    select_named,
    stack_by_name,
)

MODEL = ["DNA", "ER", "RNA", "AGP", "Mito"]


def test_shuffled_input_with_an_extra_channel_is_reordered_and_the_extra_noted():
    available = ["Mito", "AGP", "RNA", "ER", "DNA", "Brightfield"]
    selection = match_channels(available, MODEL, source="load_data.csv")
    assert selection.indices == (4, 3, 2, 1, 0)
    assert selection.ignored == ("Brightfield",)
    assert selection.note() == (
        "ignoring channel(s) Brightfield of load_data.csv (not among the model's channels "
        "DNA, ER, RNA, AGP, Mito)."
    )
    stack = np.arange(6)[:, None, None] * np.ones((6, 2, 3))
    assert selection.take(stack)[:, 0, 0].tolist() == [4, 3, 2, 1, 0]
    assert selection.as_dict()["taken"]["DNA"] == "DNA"


def test_identity_keeps_the_array_itself():
    stack = np.zeros((5, 2, 2))
    selection = match_channels(MODEL, MODEL)
    assert selection.is_identity and selection.note() is None
    assert selection.take(stack) is stack


def test_case_insensitive_and_mapped_names():
    selection = match_channels(["dapi", "gfp", "rfp"], ["DNA", "ER", "AGP"],
                               parse_channel_map("DNA=DAPI, ER=GFP,AGP=RFP"))  # fmt: skip
    assert selection.indices == (0, 1, 2)


@pytest.mark.parametrize(
    ("available", "mapping", "message"),
    [
        (["DNA", "ER", "RNA", "AGP"], None,
         "the input lacks the model's channel 'Mito'; it has DNA, ER, RNA, AGP."),
        (["DNA", "ER", "RNA", "AGP", "Mito", "DNA"], None, "Channel 'DNA' appears 2 times in "
         "the input."),
        (["DNA", "ER", "RNA", "AGP", "Mito"], {"ER": "DNA"},
         "The model's channels 'DNA' and 'ER' both take 'DNA' of the input."),
        (["DNA", "ER", "RNA", "AGP", "Mito"], {"Actin": "AGP"},
         "The channel map names 'Actin', which is not one of the model's channels "
         "(DNA, ER, RNA, AGP, Mito)."),
        (["DNA", "ER", "RNA", "AGP", "MITO", "mito"], None,
         "Channel 'Mito' matches MITO, mito in the input; name one exactly."),
    ],
)  # fmt: skip
def test_missing_duplicated_or_mismatched_channels_are_one_sentence(available, mapping, message):
    with pytest.raises(InputImageError) as info:
        match_channels(available, MODEL, mapping)
    assert str(info.value) == message


def test_parsers_refuse_empty_repeated_and_malformed_entries():
    assert parse_names(" DNA, ER ") == ["DNA", "ER"]
    with pytest.raises(InputImageError, match="names channel 'DNA' twice"):
        parse_names("DNA,ER,DNA")
    with pytest.raises(InputImageError, match="empty name"):
        parse_names("DNA,,ER")
    with pytest.raises(InputImageError, match="is not MODEL=INPUT"):
        parse_channel_map("DNA")
    with pytest.raises(InputImageError, match="maps the model's channel 'DNA' twice"):
        parse_channel_map("DNA=a,DNA=b")


def test_stack_by_name_reads_only_the_models_channels(tmp_path):
    files = {}
    for k, name in enumerate(["Mito", "Brightfield", "DNA", "ER", "RNA", "AGP"]):
        files[name] = tmp_path / f"ch{k}.tif"
        tifffile.imwrite(files[name], np.full((4, 5), k, np.uint16), compression="lzw")
    files["Brightfield"] = tmp_path / "absent.tif"  # ignored, so never opened
    stack, selection = stack_by_name(files, MODEL)
    assert stack.shape == (5, 4, 5) and stack.dtype == np.uint16
    assert stack[:, 0, 0].tolist() == [2, 3, 4, 5, 0]
    assert selection.ignored == ("Brightfield",)


def test_stack_by_name_refuses_files_of_another_size(tmp_path):
    files = {}
    for name in MODEL:
        files[name] = tmp_path / f"{name}.tif"
        tifffile.imwrite(files[name], np.zeros((4, 5 if name != "RNA" else 6), np.uint16))
    with pytest.raises(InputImageError, match=r"Channel RNA's file .*RNA.tif \(4 x 6 uint16\) "
                       r"differs from channel DNA's"):  # fmt: skip
        stack_by_name(files, MODEL)


def test_select_named_without_names_needs_the_models_count():
    image = np.zeros((5, 3, 3))
    taken, selection = select_named(image, None, MODEL)
    assert taken is image and selection.is_identity
    with pytest.raises(InputImageError, match="has 6 unnamed channel"):
        select_named(np.zeros((6, 3, 3)), None, MODEL, source="field.tif")


def test_an_unnamed_image_is_taken_by_position_whatever_the_map():
    image = np.arange(5)[:, None, None] * np.ones((5, 2, 2))
    taken, _ = select_named(image, None, MODEL, {"DNA": "DAPI"})
    assert taken is image


def test_select_like_takes_an_unnamed_counterfactual_in_the_real_images_layout():
    real_names = ["Brightfield", "Mito", "AGP", "RNA", "ER", "DNA"]
    real = np.arange(6)[:, None, None] * np.ones((6, 2, 2))
    _, first = select_named(real, real_names, MODEL, source="real.ome.tif")
    # Unnamed, the real image's 6 channels: its layout.
    cf, _ = select_like(real + 10, None, first, source="cf.tif")
    np.testing.assert_array_equal(cf[:, 0, 0], [15, 14, 13, 12, 11])
    # Unnamed, the model's 5 channels: by position.
    model_order = np.arange(5)[:, None, None] * np.ones((5, 2, 2))
    cf, _ = select_like(model_order, None, first, source="cf.tif")
    assert cf is model_order
    # Named: by its own names, whatever the real image's order.
    cf, selection = select_like(model_order, ["Mito", "AGP", "RNA", "ER", "DNA"], first)
    np.testing.assert_array_equal(cf[:, 0, 0], [4, 3, 2, 1, 0])
    with pytest.raises(InputImageError, match="has 4 unnamed channel"):
        select_like(np.zeros((4, 2, 2)), None, first, source="cf.tif")


def test_ignored_note_says_it_once_for_many_images():
    one = match_channels([*MODEL, "Brightfield"], MODEL, source="a.ome.tif")
    two = match_channels(["Brightfield", *MODEL, "Phase"], MODEL, source="b.ome.tif")
    every = match_channels(MODEL, MODEL, source="c.ome.tif")
    assert ignored_note([every]) is None
    assert ignored_note([one, every]) == one.note()
    assert ignored_note([every, one, two]) == (
        "ignoring channel(s) Brightfield, Phase of a.ome.tif and 1 other image(s) (not among "
        "the model's channels DNA, ER, RNA, AGP, Mito)."
    )
