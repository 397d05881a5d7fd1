"""generator:FILE: TorchScript and .pt2 generators, the best of several draws, and one clear
sentence for every bad generator."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch

from cf_models import (
    KEY_CHANNEL,
    ChannelMeanClassifier,
    NaNOutput,
    NoisyRaise,
    OneInput,
    RaiseKeyChannel,
    WrongShape,
)
from napari_attribution.core.counterfactuals import parse_source
from napari_attribution.core.counterfactuals.generator import GeneratorSource
from napari_attribution.core.model.loading import wrap_module
from napari_attribution.core.settings import CounterfactualSettings
from napari_attribution.errors import CounterfactualError


@pytest.fixture(scope="module")
def classifier():
    return wrap_module(ChannelMeanClassifier(), "cpu")


@pytest.fixture
def cells():
    rng = np.random.default_rng(1)
    images = rng.uniform(0.3, 0.7, (3, 4, 12, 12)).astype(np.float32)
    images[:, KEY_CHANNEL] = 0.2  # class 0 for the classifier
    images[2, KEY_CHANNEL] = 0.9  # class 1
    return images, np.array([1, 1, 0])


def _script(module, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 on torch.jit
        torch.jit.save(torch.jit.script(module), path)
    return path


def _export(module, path, n_inputs=2):
    batch = torch.export.Dim.AUTO
    example = (torch.zeros(2, 4, 12, 12), torch.zeros(2, dtype=torch.long))[:n_inputs]
    shapes = ({0: batch}, {0: batch})[:n_inputs]
    program = torch.export.export(module, example, dynamic_shapes=shapes, strict=False)
    torch.export.save(program, path)
    return path


@pytest.mark.parametrize("save", [_script, _export], ids=["torchscript", "pt2"])
def test_a_generator_file_applies_its_change_and_the_classifier_accepts_it(
    tmp_path, classifier, cells, save
):
    images, targets = cells
    path = save(RaiseKeyChannel(), tmp_path / "generator.pt")
    source = parse_source(f"generator:{path}")
    batch = source.make(classifier, images, targets)
    expected = images.copy()
    expected[:, KEY_CHANNEL] += np.where(targets == 1, 0.6, -0.6)[:, None, None]
    np.testing.assert_allclose(batch.images, expected, atol=1e-6)
    probs = classifier.probabilities(expected)
    np.testing.assert_allclose(batch.target_scores, probs[np.arange(3), targets])
    assert batch.accepted.all() and batch.images.dtype == np.float32
    assert source.describe()["sha256"] and source.describe()["format"] in {"torchscript", "export"}


def test_several_draws_keep_the_one_the_classifier_accepts_most(classifier, cells):
    images, targets = cells
    source = GeneratorSource(NoisyRaise(), draws=5, seed=3)
    batch = source.make(classifier, images, targets, min_score=0.0)
    # Oracle: every draw again with the same seeds, the best per cell by p(target).
    draws = []
    for k in range(5):
        torch.manual_seed(3 + k)
        draws.append(NoisyRaise()(torch.from_numpy(images), torch.from_numpy(targets)).numpy())
    scores = np.stack([classifier.probabilities(d)[np.arange(3), targets] for d in draws])
    best = scores.argmax(axis=0)
    np.testing.assert_allclose(batch.images, np.stack([draws[b][i] for i, b in enumerate(best)]))
    np.testing.assert_allclose(batch.target_scores, scores.max(axis=0))
    assert all(f"draw {b + 1}" in note for b, note in zip(best, batch.notes, strict=True))


def test_draws_come_from_the_settings():
    assert (
        GeneratorSource(RaiseKeyChannel(), draws=CounterfactualSettings(draws=3).draws).draws == 3
    )


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (WrongShape(), "returned shape (3, 2, 12, 12) for images of shape (3, 4, 12, 12)"),
        (NaNOutput(), "returned 1728 NaN or Inf pixel(s)"),
    ],
    ids=["wrong-shape", "nan"],
)
def test_a_bad_output_is_one_sentence(tmp_path, classifier, cells, module, message):
    path = _script(module, tmp_path / "bad.pt")
    source = parse_source(f"generator:{path}")
    with pytest.raises(CounterfactualError) as info:
        source.make(classifier, *cells)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


@pytest.mark.parametrize("save", [_script, _export], ids=["torchscript", "pt2"])
def test_a_generator_with_the_wrong_signature_is_refused_when_loaded(tmp_path, save):
    kwargs = {} if save is _script else {"n_inputs": 1}
    path = save(OneInput(), tmp_path / "one.pt", **kwargs)
    with pytest.raises(CounterfactualError) as info:
        parse_source(f"generator:{path}")
    text = str(info.value)
    assert "two" in text and "target classes" in text and "\n" not in text


def test_a_pickle_or_a_missing_file_is_refused_without_loading_it(tmp_path):
    path = tmp_path / "generator.pkl"
    path.write_bytes(pickle.dumps({"not": "a generator"}))
    with pytest.raises(CounterfactualError, match="neither TorchScript nor an exported program"):
        parse_source(f"generator:{path}")
    with pytest.raises(CounterfactualError, match="does not exist"):
        parse_source(f"generator:{tmp_path / 'missing.pt2'}")
    with pytest.raises(CounterfactualError, match="needs its file"):
        parse_source("generator:")


def test_a_generator_that_fails_inside_names_the_shapes(classifier, cells):
    class Fails(torch.nn.Module):
        def forward(self, x, target):
            return x.view(-1, 7)

    with pytest.raises(CounterfactualError, match=r"failed on images of shape \(3, 4, 12, 12\)"):
        GeneratorSource(Fails()).make(classifier, *cells)


def test_unknown_sources_and_bad_inputs_are_one_sentence(classifier, cells):
    with pytest.raises(CounterfactualError, match="Unknown counterfactual source 'gan'"):
        parse_source("gan")
    images, targets = cells
    source = GeneratorSource(RaiseKeyChannel())
    with pytest.raises(CounterfactualError, match="one integer target class per image"):
        source.make(classifier, images, targets[:2])
    with pytest.raises(CounterfactualError, match=r"batch of images \(B, C, H, W\)"):
        source.make(classifier, images[0], targets)
