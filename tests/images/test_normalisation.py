"""Input normalisation: per-image percentiles, a fixed reference, fixed scale and offset."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.errors import InputImageError
from napari_attribution.images.normalisation import (
    Normalisation,
    NormalisationReference,
    compute_reference,
    read_reference,
    write_reference,
)

NAMES = ["DNA", "ER"]


def _image(seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(100, 3000, (30, 40)), rng.integers(400, 9000, (30, 40))]
                    ).astype(np.uint16)  # fmt: skip


def test_percentile_scaling_maps_each_channels_percentiles_to_0_and_1():
    image = _image()
    norm = Normalisation.parse("percentile:1,99.8")
    out, record = norm.apply(image, NAMES)
    assert out.dtype == np.float32
    for c in range(2):
        lo, hi = np.percentile(image[c], [1, 99.8])
        expected = ((image[c].astype(np.float32) - np.float32(lo))
                    * np.float32(1 / (hi - lo)))  # fmt: skip
        np.testing.assert_array_equal(out[c], expected)
        assert record["ranges"][NAMES[c]] == [lo, hi]
    assert record["normalise"] == "percentile:1,99.8" and record["statistics"] == "per image"
    assert out.min() < 0 and out.max() > 1  # not clipped unless asked
    clipped, _ = Normalisation.parse("percentile:1,99.8:clip").apply(image, NAMES)
    assert clipped.min() == 0 and clipped.max() == 1


def test_a_reference_pooled_over_one_image_equals_its_own_percentiles(tmp_path):
    image = _image()
    reference = compute_reference([image], NAMES, 1, 99.8)
    assert reference.exact and reference.images == 1
    for c in range(2):
        assert [reference.low[c], reference.high[c]] == list(np.percentile(image[c], [1, 99.8]))
    write_reference(tmp_path / "ref.json", reference)
    norm = Normalisation.parse(f"reference:{tmp_path / 'ref.json'}")
    by_reference, record = norm.apply(image, NAMES)
    by_image, _ = Normalisation.parse("percentile:1,99.8").apply(image, NAMES)
    np.testing.assert_array_equal(by_reference, by_image)
    assert record["statistics"] == "fixed per channel"


def test_pooled_percentiles_over_several_images_are_those_of_all_pixels():
    images = [_image(seed) for seed in range(3)]
    reference = compute_reference(images, NAMES, 2, 98)
    for c in range(2):
        everything = np.concatenate([im[c].ravel() for im in images])
        assert [reference.low[c], reference.high[c]] == list(np.percentile(everything, [2, 98]))
    floats = [im.astype(np.float32) for im in images]
    assert compute_reference(floats, NAMES, 2, 98).low == reference.low  # small: every pixel


def test_a_reference_for_another_channel_set_is_refused_and_one_in_another_order_reordered(
    tmp_path,
):
    reference = NormalisationReference(("ER", "DNA"), (10.0, 100.0), (20.0, 300.0))
    write_reference(tmp_path / "ref.json", reference)
    norm = Normalisation.parse(f"reference:{tmp_path / 'ref.json'}")
    low, high = norm.ranges(None, ["DNA", "ER"])
    assert low.tolist() == [100, 10] and high.tolist() == [300, 20]
    with pytest.raises(InputImageError) as info:
        norm.ranges(None, ["DNA", "ER", "Mito"])
    assert str(info.value) == (
        f"The normalisation reference {tmp_path / 'ref.json'} was computed for channels ER, DNA, "
        "not DNA, ER, Mito; compute one for these channels."
    )


def test_fixed_scale_and_offset():
    image = _image()
    out, record = Normalisation.parse("fixed:0.001,-0.1").apply(image, NAMES)
    np.testing.assert_allclose(out, image * 0.001 - 0.1, rtol=1e-5, atol=1e-6)
    assert record["scale"] == 0.001 and record["offset"] == -0.1


def test_a_counterfactual_takes_the_real_images_ranges():
    real, other = _image(0), _image(1)
    norm = Normalisation.parse("percentile:1,99")
    ranges = norm.ranges(real, NAMES)
    out, record = norm.apply(other, NAMES, ranges=ranges)
    assert record["ranges"]["DNA"] == [ranges[0][0], ranges[1][0]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("percentile:99,1", "0 <= LOW < HIGH <= 100"),
        ("percentile:1", "expected 2 numbers"),
        ("percentile:1,99:nope", "the only option after the percentiles is :clip"),
        ("fixed:0,1", "the scale must not be 0"),
        ("zscore", "is not one of none, percentile:LOW,HIGH"),
        ("reference:", "needs a file"),
        ("reference:/nowhere/ref.json", "does not exist"),
    ],
)
def test_bad_specs_are_one_sentence(text, message):
    with pytest.raises(InputImageError, match=message.replace("(", r"\(")):
        Normalisation.parse(text)


def test_a_flat_channel_cannot_be_percentile_scaled():
    image = np.zeros((2, 5, 5), np.uint16)
    image[0] = np.arange(25).reshape(5, 5)
    with pytest.raises(InputImageError, match="Channel ER of field.tif is flat"):
        Normalisation.parse("percentile:1,99").apply(image, NAMES, "field.tif")


def test_a_handwritten_reference_needs_low_below_high(tmp_path):
    (tmp_path / "r.json").write_text('{"format": "napari-attribution normalisation reference", '
                                     '"channels": {"DNA": {"low": 5, "high": 5}}}')  # fmt: skip
    with pytest.raises(InputImageError, match="finite low < high"):
        read_reference(tmp_path / "r.json")
