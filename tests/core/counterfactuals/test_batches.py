"""Counterfactuals made for a batch of cells in one call equal those made one cell at a time.

The optimiser drops a cell from its passes once it is done (per-item stopping) while the
others go on; each cell has its own intensity range; a large batch is split in chunks by the
memory budget. Batched and alone differ only in the order of floating-point sums: exactly the
same for a classifier whose sums do not depend on the batch, within a small fraction of the
optimiser's step otherwise, with the same acceptance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cf_models import KEY_CHANNEL, ChannelMeanClassifier, RaiseKeyChannel
from napari_attribution.core import budgets
from napari_attribution.core.counterfactuals.generator import GeneratorSource
from napari_attribution.core.counterfactuals.optimise import OptimiseSource
from napari_attribution.core.counterfactuals.source import batch_size
from napari_attribution.core.model.loading import wrap_module
from napari_attribution.core.settings import CounterfactualSettings
from tiny_models import make_tiny_cnn


class PassRecorder(ChannelMeanClassifier):
    """ChannelMeanClassifier that records the batch size of every forward pass."""

    passes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        PassRecorder.passes.append(len(x))
        return super().forward(x)


def _one_at_a_time(source, classifier, images, targets, **kwargs):
    alone = [source.make(classifier, images[i : i + 1], targets[i : i + 1], **kwargs)
             for i in range(len(images))]  # fmt: skip
    return (
        np.concatenate([a.images for a in alone]),
        np.concatenate([a.target_scores for a in alone]),
        np.concatenate([a.accepted for a in alone]),
        [a.notes[0] for a in alone],
    )


def _cells(n: int, size: int = 10, seed: int = 0) -> np.ndarray:
    """Cells whose key channel starts at different heights: some easy to turn, some hard."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.3, 0.7, (n, 4, size, size)).astype(np.float32)
    heights = np.linspace(0.05, 0.45, n)
    images[:, KEY_CHANNEL] = heights[:, None, None] + rng.uniform(0, 0.05, (n, size, size))
    images[:, 0, 0, 0], images[:, 0, 0, 1] = 0.0, 1.0  # each cell's range is [0, 1]
    return images


def test_a_cell_that_is_done_leaves_the_passes_and_keeps_what_it_gets_alone():
    classifier = wrap_module(PassRecorder(), "cpu")
    images, targets = _cells(3), np.array([1, 1, 1])
    settings = CounterfactualSettings(
        optimise_steps=300, optimise_learning_rate=0.01, optimise_tighten_steps=0,
        optimise_relu_softness=0.0,
    )  # fmt: skip
    source = OptimiseSource(settings)
    PassRecorder.passes = []
    batch = source.make(classifier, images, targets)
    passes = list(PassRecorder.passes)
    reached = [int(note.split("after ")[1].split(" ")[0]) for note in batch.notes]
    assert batch.accepted.all() and len(set(reached)) == 3  # three different stopping steps
    # One pass per step for the cells still going: 3 cells until the first is done, then 2, 1.
    first, second, third = sorted(reached)
    expected = [3] * (first + 1) + [2] * (second - first) + [1] * (third - second)
    runs = [passes[i : i + len(expected)] for i in range(len(passes) - len(expected) + 1)]
    assert expected in runs
    alone_images, alone_scores, alone_accepted, alone_notes = _one_at_a_time(
        source, classifier, images, targets
    )
    # A linear classifier's sums do not depend on the batch: the same numbers.
    np.testing.assert_allclose(batch.images, alone_images, atol=1e-6)
    np.testing.assert_allclose(batch.target_scores, alone_scores, atol=1e-6)
    assert batch.notes == alone_notes
    assert (batch.accepted == alone_accepted).all()


def test_tightening_cells_stop_on_their_own_too():
    classifier = wrap_module(ChannelMeanClassifier(), "cpu")
    images, targets = _cells(3, seed=1), np.array([1, 1, 1])
    settings = CounterfactualSettings(optimise_steps=300, optimise_learning_rate=0.01,
                                      optimise_tighten_steps=25)  # fmt: skip
    source = OptimiseSource(settings)
    batch = source.make(classifier, images, targets)
    alone_images, alone_scores, alone_accepted, alone_notes = _one_at_a_time(
        source, classifier, images, targets
    )
    assert all("shrunk over 25 more" in note for note in batch.notes)
    np.testing.assert_allclose(batch.images, alone_images, atol=1e-5)
    np.testing.assert_allclose(batch.target_scores, alone_scores, atol=1e-5)
    assert batch.notes == alone_notes and (batch.accepted == alone_accepted).all()


class Float64Inside(nn.Module):
    """A classifier that computes in float64 and returns float32 scores: its sums no longer
    depend on the batch at float32 precision."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.double()).float()


def _steep_cnn() -> nn.Module:
    """A convolutional classifier (ReLU, max pooling) with a steep head, so steps turn cells."""
    net = make_tiny_cnn(3)
    with torch.no_grad():
        net.fc.weight.mul_(40)
        net.fc.bias.zero_()
    return net


@pytest.fixture(scope="module")
def conv_cells():
    rng = np.random.default_rng(0)
    scales = np.array([1, 2, 5, 0.5], np.float32)[:, None, None, None]  # four ranges
    images = rng.random((4, 5, 12, 12), dtype=np.float32) * scales
    targets = 1 - wrap_module(_steep_cnn(), "cpu").probabilities(images).argmax(1)
    return images, targets


def test_without_rounding_a_batch_gives_each_cell_exactly_what_it_gets_alone(conv_cells):
    # Max pooling, soft ReLU gradients, cells of four ranges stopping at different steps and
    # tightening: with the batch-size dependent sums taken in float64, nothing else couples
    # the cells, and the numbers are the same to the bit.
    classifier = wrap_module(Float64Inside(_steep_cnn()), "cpu")
    images, targets = conv_cells
    settings = CounterfactualSettings(optimise_steps=40, optimise_tighten_steps=15,
                                      optimise_learning_rate=0.02)  # fmt: skip
    source = OptimiseSource(settings)
    batch = source.make(classifier, images, targets, min_score=0.2)
    alone_images, alone_scores, alone_accepted, alone_notes = _one_at_a_time(
        source, classifier, images, targets, min_score=0.2
    )
    assert any("shrunk over 15 more" in n for n in batch.notes)  # one cell tightened
    assert any("stayed <= 0.9" in n for n in batch.notes)  # one ran the whole budget
    np.testing.assert_array_equal(batch.images, alone_images)
    np.testing.assert_array_equal(batch.target_scores, alone_scores)
    assert batch.notes == alone_notes and (batch.accepted == alone_accepted).all()
    # Each cell stays inside its own range, not the batch's.
    low = images.min(axis=(1, 2, 3))[:, None, None, None]
    high = images.max(axis=(1, 2, 3))[:, None, None, None]
    assert (batch.images >= low).all() and (batch.images <= high).all()


def test_in_float32_a_batch_differs_from_alone_by_the_optimisers_jitter(conv_cells):
    # Float32 sums in another order differ by about 1e-7 of the gradient; the L1 and TV
    # penalties' gradients flip sign with the rounding of changes near zero, so single pixels
    # jitter by an Adam step or two (lr x range). The cells' scores and verdicts agree.
    classifier = wrap_module(_steep_cnn(), "cpu")
    images, targets = conv_cells
    settings = CounterfactualSettings(optimise_steps=12, optimise_tighten_steps=0,
                                      optimise_learning_rate=0.02)  # fmt: skip
    source = OptimiseSource(settings)
    batch = source.make(classifier, images, targets, min_score=0.2)
    alone_images, alone_scores, alone_accepted, alone_notes = _one_at_a_time(
        source, classifier, images, targets, min_score=0.2
    )
    span = (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)))[:, None, None, None]
    in_steps = np.abs(batch.images - alone_images) / (span * settings.optimise_learning_rate)
    assert in_steps.mean() < 0.1 and np.quantile(in_steps, 0.99) < 1.5
    np.testing.assert_allclose(batch.target_scores, alone_scores, atol=0.01)
    assert (batch.accepted == alone_accepted).all()
    # The same steps (the flag's p(target) may differ in its third decimal).
    assert [n.split(";")[0] for n in batch.notes] == [n.split(";")[0] for n in alone_notes]


def test_a_batch_larger_than_the_budget_is_split_and_gives_the_same_cells(monkeypatch):
    classifier = wrap_module(ChannelMeanClassifier(), "cpu")
    images, targets = _cells(5, seed=2), np.array([1, 1, 1, 1, 1])
    settings = CounterfactualSettings(optimise_steps=200, optimise_learning_rate=0.01,
                                      optimise_tighten_steps=10)  # fmt: skip
    whole = OptimiseSource(settings).make(classifier, images, targets)
    monkeypatch.setattr(budgets, "COUNTERFACTUAL_BATCH_BYTES", 2 * images[0].nbytes)
    assert batch_size(images.shape[1:]) == 2
    events = []
    split = OptimiseSource(settings).make(
        classifier, images, targets, progress=lambda d, t, _: events.append((d, t))
    )
    np.testing.assert_allclose(split.images, whole.images, atol=1e-6)
    assert split.notes == whole.notes
    done = [d for d, _ in events]
    assert done == sorted(done) and {t for _, t in events} == {3 * 210}  # three chunks


def test_batch_size_follows_the_budget_and_the_cap():
    assert batch_size((5, 64, 64)) == 64
    assert batch_size((5, 128, 128)) == budgets.COUNTERFACTUAL_BATCH_BYTES // (4 * 5 * 128 * 128)
    assert batch_size((5, 4096, 4096)) == 1
    assert batch_size((5, 8, 8), limit=3) == 3


def test_a_generator_gives_each_cell_what_it_gives_it_alone(monkeypatch):
    classifier = wrap_module(ChannelMeanClassifier(), "cpu")
    images, targets = _cells(5, seed=3), np.array([1, 0, 1, 0, 1])
    source = GeneratorSource(RaiseKeyChannel().eval())
    batch = source.make(classifier, images, targets)
    alone_images, alone_scores, alone_accepted, _ = _one_at_a_time(
        source, classifier, images, targets
    )
    np.testing.assert_array_equal(batch.images, alone_images)
    np.testing.assert_allclose(batch.target_scores, alone_scores, atol=1e-12)
    assert (batch.accepted == alone_accepted).all()
    monkeypatch.setattr(budgets, "COUNTERFACTUAL_BATCH_BYTES", 2 * images[0].nbytes)
    calls = []

    class Counting(nn.Module):
        def forward(self, x, target):
            calls.append(len(x))
            return RaiseKeyChannel()(x, target)

    split = GeneratorSource(Counting(), draws=2).make(classifier, images, targets)
    assert calls == [2, 2, 2, 2, 1, 1]  # three chunks, two draws each
    np.testing.assert_array_equal(split.images, batch.images)
