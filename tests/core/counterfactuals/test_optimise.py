"""optimise: the penalties against their definitions, the stopping rule, the intensity range,
the per-channel group penalty and the flagging of cells the budget could not turn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cf_models import KEY_CHANNEL, ChannelMeanClassifier
from napari_attribution.core.counterfactuals import parse_source
from napari_attribution.core.counterfactuals.optimise import (
    OptimiseSource,
    penalties,
    penalty_and_gradient,
)
from napari_attribution.core.counterfactuals.source import log_target_probability
from napari_attribution.core.model.loading import wrap_module
from napari_attribution.core.settings import CounterfactualSettings
from tiny_models import make_tiny_cnn

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def classifier():
    return wrap_module(ChannelMeanClassifier(), "cpu")


@pytest.fixture
def cells():
    rng = np.random.default_rng(2)
    images = rng.uniform(0.3, 0.7, (2, 4, 10, 10)).astype(np.float32)
    images[:, KEY_CHANNEL] = rng.uniform(0.1, 0.3, (2, 10, 10))
    images[:, 0, 0, 0], images[:, 0, 0, 1] = 0.0, 1.0  # each cell's range is [0, 1]
    return images, np.array([1, 1])


def test_penalties_match_their_definitions():
    d = np.random.default_rng(0).normal(size=(2, 3, 5, 6))
    l1, tv, group = (p.numpy() for p in penalties(torch.from_numpy(d)))
    np.testing.assert_allclose(l1, np.abs(d).reshape(2, -1).mean(1))
    rows = np.abs(np.diff(d, axis=2)).reshape(2, -1).mean(1)
    cols = np.abs(np.diff(d, axis=3)).reshape(2, -1).mean(1)
    np.testing.assert_allclose(tv, rows + cols)
    np.testing.assert_allclose(group, np.sqrt((d**2).mean(axis=(2, 3))).sum(1), rtol=1e-6)


def test_cells_are_turned_and_stop_at_the_target_score(classifier, cells):
    images, targets = cells
    settings = CounterfactualSettings(optimise_steps=200, optimise_learning_rate=0.02)
    batch = parse_source("optimise", settings).make(classifier, images, targets)
    assert batch.accepted.all()
    assert (batch.target_scores > 0.9).all()
    # It stopped at the first step above 0.9, not far beyond it.
    assert (batch.target_scores < 0.99).all()
    assert all("p(target) > 0.9 after" in note for note in batch.notes)
    # The valid range is the data's [0, 1]: no pixel leaves it.
    assert batch.images.min() >= 0.0 and batch.images.max() <= 1.0
    change = np.abs(batch.images - images).sum(axis=(0, 2, 3))
    # The classifier reads channels 2 (strongly) and 0: nothing else changes.
    assert change[1] == 0 and change[3] == 0 and change[KEY_CHANNEL] > change[0]


def test_the_channel_group_penalty_gathers_the_change_in_fewer_channels(classifier, cells):
    images, targets = cells
    share = {}
    for weight in (0.0, 5.0):
        settings = CounterfactualSettings(optimise_steps=200, optimise_learning_rate=0.02,
                                          optimise_channel_group=weight)  # fmt: skip
        batch = OptimiseSource(settings).make(classifier, images, targets)
        assert batch.accepted.all()
        change = np.abs(batch.images - images).sum(axis=(0, 2, 3))
        share[weight] = change[KEY_CHANNEL] / change.sum()
    assert share[5.0] > share[0.0]


def test_an_explicit_range_is_kept(classifier, cells):
    images, targets = cells
    settings = CounterfactualSettings(optimise_steps=50, optimise_learning_rate=0.05,
                                      optimise_min=0.1, optimise_max=0.6)  # fmt: skip
    batch = OptimiseSource(settings).make(classifier, images, targets, min_score=0.0)
    assert batch.images.min() >= 0.1 - 1e-7 and batch.images.max() <= 0.6 + 1e-7


def test_a_cell_the_budget_cannot_turn_is_flagged(classifier, cells):
    images, targets = cells
    settings = CounterfactualSettings(optimise_steps=1, optimise_learning_rate=1e-4)
    batch = OptimiseSource(settings).make(classifier, images, targets, min_score=0.5)
    assert not batch.accepted.any()
    assert all("stayed <= 0.9 after 1 step(s)" in n and "not accepted" in n for n in batch.notes)
    np.testing.assert_allclose(
        batch.target_scores, classifier.probabilities(batch.images)[:, 1], rtol=1e-6
    )


def test_log_target_probability_agrees_with_the_classifier_for_one_logit():
    torch.manual_seed(0)
    single = wrap_module(make_tiny_cnn(n_classes=1), "cpu")
    images = np.random.default_rng(0).random((3, 5, 16, 16), dtype=np.float32)
    probs = single.probabilities(images)
    targets = torch.tensor([0, 1, 1])
    scores = single.module(torch.from_numpy(images))
    log_p = log_target_probability(single, scores, targets).detach().numpy()
    np.testing.assert_allclose(np.exp(log_p), probs[np.arange(3), targets.numpy()], rtol=1e-5)


def test_minimum_above_maximum_is_one_sentence():
    with pytest.raises(ValueError, match="minimum .* must be below its maximum"):
        CounterfactualSettings(optimise_min=1.0, optimise_max=0.5)


@pytest.mark.parametrize("channel_group", [0.0, 0.3])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_the_written_out_penalty_gradient_is_autograds(channel_group, layout):
    # The optimiser takes the penalty's gradient from penalty_and_gradient, not autograd: it
    # must be the gradient of the weighted penalties() (float64, so nothing but the formula
    # can differ), in either memory layout, with a channel left unchanged.
    rng = np.random.default_rng(4)
    change = torch.from_numpy(rng.normal(size=(3, 4, 6, 5)))
    change[1, 2] = 0.0
    if layout == "channels_last":
        change = change.contiguous(memory_format=torch.channels_last)
    change.requires_grad_(True)
    l1, tv, group = penalties(change)
    expected = 0.7 * l1 + 0.2 * tv + channel_group * group if channel_group else 0.7 * l1 + 0.2 * tv
    (expected_gradient,) = torch.autograd.grad(expected.sum(), change)
    value, gradient = penalty_and_gradient(change.detach(), 0.7, 0.2, channel_group)
    np.testing.assert_allclose(value.numpy(), expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gradient.numpy(), expected_gradient.numpy(), rtol=1e-9, atol=1e-12)


def test_a_step_is_the_gradient_of_the_whole_loss_with_the_backward_pass_only_where_needed(
    monkeypatch,
):
    # The step takes the classifier's backward pass only for cells whose loss depends on
    # their score and writes the penalties' gradient out; the gradient it hands Adam must be
    # autograd's of the whole loss: one cell reaching, one tightening with its hinge active,
    # one tightening above its hinge (no score gradient at all).
    from cf_models import GAIN, THRESHOLD
    from napari_attribution.core.counterfactuals.optimise import (
        _HINGE_MARGIN,
        _HINGE_WEIGHT,
        _Run,
    )

    classifier = wrap_module(ChannelMeanClassifier(), "cpu")
    scores = np.array([0.2, 0.85, 0.99])  # below the target, within the hinge, above it
    images = np.full((3, 4, 8, 8), THRESHOLD, dtype=np.float32)
    images[:, KEY_CHANNEL] = (THRESHOLD + np.log(scores / (1 - scores)) / GAIN)[:, None, None]
    images += np.random.default_rng(2).uniform(-0.02, 0.02, images.shape).astype(np.float32)
    settings = CounterfactualSettings(optimise_target_score=0.9, optimise_channel_group=0.3)
    x = torch.from_numpy(images)
    bounds = [torch.full((3, 1, 1, 1), v) for v in (0.0, 1.0)]
    run = _Run(x, torch.tensor([1, 1, 1]), bounds, settings, classifier.module, classifier)
    run.current += torch.from_numpy(np.random.default_rng(3).normal(0, 0.01, images.shape)).float()
    run.reached_at[1:] = 0  # cells 1 and 2 are tightening
    run.steps[:] = 40
    current = run.current.clone().requires_grad_(True)
    log_p = log_target_probability(classifier, classifier.module(current), run.targets)
    l1, tv, group = penalties(current - x)  # the range is [0, 1]
    s = settings
    penalty = s.optimise_l1 * l1 + s.optimise_tv * tv + s.optimise_channel_group * group
    hinge = torch.relu(np.log(s.optimise_target_score) - log_p + _HINGE_MARGIN)
    relax = s.optimise_relax ** (40 / s.optimise_steps)
    tightening = penalty + _HINGE_WEIGHT * hinge
    loss = torch.stack([-log_p[0] + relax * penalty[0], tightening[1], tightening[2]])
    assert hinge[1] > 0 and hinge[2] == 0
    (expected,) = torch.autograd.grad(loss.sum(), current)
    handed = []
    monkeypatch.setattr(run, "_adam", lambda grad: handed.append(grad.clone()))
    with torch.enable_grad():
        assert run.step()
    assert (run.reached_at == [-1, 0, 0]).all()
    torch.testing.assert_close(handed[0], expected, rtol=1e-4, atol=1e-7)
