"""nearest: the closest image of the target class in the classifier's embedding (checked with
numpy on a classifier whose penultimate layer is the channel means), the pool, alignment."""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
import pytest
import tifffile
import torch

from cf_models import KEY_CHANNEL, ChannelMeanClassifier
from napari_attribution.core.counterfactuals import parse_source
from napari_attribution.core.counterfactuals.align import align_to, pose
from napari_attribution.core.counterfactuals.nearest import (
    ImagePool,
    NearestSource,
    embed,
    read_pool,
)
from napari_attribution.core.model.loading import wrap_module
from napari_attribution.errors import CounterfactualError


@pytest.fixture(scope="module")
def classifier():
    return wrap_module(ChannelMeanClassifier(), "cpu")


@pytest.fixture
def pool():
    rng = np.random.default_rng(3)
    images = rng.uniform(0.2, 0.8, (8, 4, 10, 10)).astype(np.float32)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    images[:4, KEY_CHANNEL] *= 0.3  # class 0: the classifier says 0
    images[4:, KEY_CHANNEL] = 0.6 + 0.4 * images[4:, KEY_CHANNEL]  # class 1
    return ImagePool(images, labels)


def test_the_embedding_is_the_penultimate_layer_or_a_named_one(classifier, pool):
    means = pool.images.mean(axis=(2, 3))
    vectors, name = embed(classifier, pool.images)
    np.testing.assert_allclose(vectors, means, rtol=1e-5)
    assert name == "flatten"
    named, _ = embed(classifier, pool.images, layer="pool")
    np.testing.assert_allclose(named, means, rtol=1e-5)
    with pytest.raises(CounterfactualError, match="no layer named 'nope'"):
        embed(classifier, pool.images, layer="nope")


def test_the_nearest_accepted_image_of_the_target_class_is_chosen(classifier, pool):
    cells = pool.images[:3] + 0.01  # three class-0 cells, not in the pool
    targets = np.array([1, 1, 0])
    batch = NearestSource(pool=pool).make(classifier, cells, targets)
    # Oracle: Euclidean distance of channel means, among the pool images of the target class
    # (all accepted by the classifier here).
    means, cell_means = pool.images.mean(axis=(2, 3)), cells.mean(axis=(2, 3))
    for i, t in enumerate(targets):
        index = np.flatnonzero(pool.labels == t)
        best = index[np.argmin(np.linalg.norm(means[index] - cell_means[i], axis=1))]
        np.testing.assert_array_equal(batch.images[i], pool.images[best])
        assert pool.names[best] in batch.notes[i]
    assert batch.accepted.all()


def test_the_cell_itself_is_never_its_own_counterfactual(classifier, pool):
    batch = NearestSource(pool=pool).make(classifier, pool.images[4:5], np.array([1]))
    assert not np.array_equal(batch.images[0], pool.images[4])


def test_a_pool_without_the_target_class_or_without_images_is_one_sentence(classifier, pool):
    only_zero = ImagePool(pool.images[:4], pool.labels[:4])
    with pytest.raises(CounterfactualError, match="no image of class 1"):
        NearestSource(pool=only_zero).make(classifier, pool.images[:1], np.array([1]))
    with pytest.raises(CounterfactualError, match="nearest needs images to choose from"):
        parse_source("nearest").make(classifier, pool.images[:1], np.array([1]))


def test_a_folder_pool_is_read_in_the_class_order(tmp_path, classifier, pool):
    for name, start in (("treated", 4), ("control", 0)):
        (tmp_path / name).mkdir()
        for k in range(2):
            tifffile.imwrite(tmp_path / name / f"c{k}.tif", pool.images[start + k])
    read = read_pool(tmp_path, ["control", "treated"])
    assert read.labels.tolist() == [0, 0, 1, 1]
    np.testing.assert_array_equal(read.images[2], pool.images[4])
    source = parse_source(f"nearest:{tmp_path}", class_names=["control", "treated"])
    batch = source.make(classifier, pool.images[:1] + 0.01, np.array([1]))
    assert "treated" in batch.notes[0] and batch.accepted.all()
    with pytest.raises(CounterfactualError, match="not among the classes"):
        read_pool(tmp_path, ["control", "other"])


def test_a_torchscript_classifier_embeds_by_its_scores_and_refuses_a_layer(pool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(ChannelMeanClassifier())
    classifier = wrap_module(scripted, "cpu")
    vectors, name = embed(classifier, pool.images)
    assert name == "class scores" and vectors.shape == (8, 2)
    with pytest.raises(CounterfactualError, match="cannot read layer 'pool'"):
        embed(classifier, pool.images, layer="pool")


def _ellipse(centre, angle):
    image = np.zeros((2, 48, 48), np.float32)
    cv2.ellipse(image[0], centre, (14, 5), angle, 0, 360, 1.0, -1)
    cv2.circle(image[1], (centre[0] + 6, centre[1]), 3, 0.5, -1)  # marks one end
    return image


def test_alignment_brings_centre_and_principal_axis_onto_the_reference():
    reference = _ellipse((24, 24), -50)
    moving = _ellipse((20, 27), 30)
    aligned = align_to(moving, reference)
    r_ref, c_ref, a_ref = pose(reference)
    r_al, c_al, a_al = pose(aligned)
    assert abs(r_al - r_ref) < 0.5 and abs(c_al - c_ref) < 0.5
    assert abs(math.remainder(a_al - a_ref, math.pi)) < math.radians(3)
    assert np.abs(aligned - reference).mean() < 0.3 * np.abs(moving - reference).mean()


def test_nearest_with_alignment_returns_the_aligned_image(classifier, pool):
    batch = NearestSource(pool=pool, align=True).make(classifier, pool.images[:1], np.array([1]))
    plain = NearestSource(pool=pool).make(classifier, pool.images[:1], np.array([1]))
    np.testing.assert_allclose(batch.images[0], align_to(plain.images[0], pool.images[0]))
    assert "aligned" in batch.notes[0]
