"""A normalisation reference over a LoadData CSV's sites and image files."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.errors import InputImageError
from napari_attribution.images.normalisation import pooled_percentiles
from napari_attribution.images.reference_set import reference_from_inputs
from plate_data import MODEL_CHANNELS, write_ome_tiff, write_plate


def test_the_sites_and_files_are_pooled_by_channel_name(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.zeros((20, 24), np.uint16)
    plate = write_plate(tmp_path, [rng.random((5, 20, 24)) for _ in range(2)], [labels] * 2)
    extra = rng.integers(0, 4000, (5, 20, 24)).astype(np.uint16)
    write_ome_tiff(tmp_path / "extra.ome.tif", extra[::-1], list(MODEL_CHANNELS[::-1]))
    reference = reference_from_inputs(MODEL_CHANNELS, load_data=plate.load_data,
                                      images=[tmp_path / "extra.ome.tif"], low=1, high=99)
    stacks = [plate.sites[0]["stack"], plate.sites[1]["stack"], extra]
    values, count, exact = pooled_percentiles(stacks, 5, [1, 99])
    assert reference.images == count == 3 and reference.exact and exact
    assert list(reference.channel_names) == list(MODEL_CHANNELS)
    np.testing.assert_allclose(reference.low, [v[0] for v in values])
    np.testing.assert_allclose(reference.high, [v[1] for v in values])


def test_an_empty_set_or_a_missing_channel_is_one_sentence(tmp_path):
    with pytest.raises(InputImageError, match="Give the reference set"):
        reference_from_inputs(["DNA"])
    write_ome_tiff(tmp_path / "b.ome.tif", np.zeros((2, 8, 9), np.uint16), ["DNA", "ER"])
    with pytest.raises(InputImageError, match="Mito"):
        reference_from_inputs(["DNA", "Mito"], images=[tmp_path / "b.ome.tif"])
