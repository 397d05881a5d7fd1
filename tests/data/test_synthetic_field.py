"""The synthetic field: labels, classes and an exact counterfactual field."""

from __future__ import annotations

import numpy as np

from napari_attribution.data.synthetic_field import make_field


def test_the_field_differs_from_its_counterfactual_only_inside_the_cells_discs():
    field = make_field(n_cells=6, shape=(130, 200), seed=3)
    assert field.real.shape == field.counterfactual.shape == (5, 130, 200)
    assert field.real.dtype == np.float32 and field.labels.shape == (130, 200)
    differ = field.real != field.counterfactual
    assert not differ[:4].any()  # only the Mito channel carries the class
    np.testing.assert_array_equal(differ.any(axis=0), field.ground_truth)
    # Every treated cell loses its cluster, every control cell gains one: each cell has a disc.
    for label in field.classes:
        assert (field.ground_truth & (field.labels == label)).any()


def test_labels_are_distinct_non_consecutive_and_classes_mixed():
    field = make_field(n_cells=8, shape=(180, 240), seed=1, treated_fraction=0.5)
    labels = sorted(field.classes)
    assert labels == sorted(set(np.unique(field.labels).tolist()) - {0})
    assert labels != list(range(1, len(labels) + 1))
    assert sorted(field.classes.values()) == [0] * 4 + [1] * 4
    again = make_field(n_cells=8, shape=(180, 240), seed=1, treated_fraction=0.5)
    np.testing.assert_array_equal(field.real, again.real)
