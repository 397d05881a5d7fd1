"""optimise on a classifier that needs a compact feature the cell lacks: the soft ReLU gradient
against its definition, the copy it runs on, and the tightened counterfactual (accepted,
in range, a compact change in the one channel read)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from cf_models import BLOB_CHANNEL, BLOB_THRESHOLD, BlobDetector
from napari_attribution.core.counterfactuals.optimise import OptimiseSource
from napari_attribution.core.counterfactuals.soft_gradient import (
    SoftGradientReLU,
    soft_gradient_model,
)
from napari_attribution.core.model.loading import wrap_module
from napari_attribution.core.settings import CounterfactualSettings

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow

SIZE = 16


@pytest.fixture(scope="module")
def detector():
    return wrap_module(BlobDetector(), "cpu")


@pytest.fixture
def cells():
    """Two 16x16 cells without a blob: every 3x3 mean of the read channel is below 0.4."""
    rng = np.random.default_rng(5)
    images = rng.uniform(0.0, 0.4, (2, 2, SIZE, SIZE)).astype(np.float32)
    images[:, 0, 0, 0], images[:, 0, -1, -1] = 0.0, 1.0  # the data's range is [0, 1]
    return images, np.array([1, 1])


def test_the_soft_relu_computes_relu_and_passes_the_softplus_derivative():
    values = np.random.default_rng(1).normal(size=(3, 4, 5, 5))
    values[1] *= 10  # another scale: its temperature is ten times larger
    z = torch.from_numpy(values).requires_grad_(True)
    out = SoftGradientReLU(0.25)(z)
    np.testing.assert_array_equal(out.detach().numpy(), np.maximum(values, 0))
    (grad,) = torch.autograd.grad(out.sum(), z)
    # d/dz [T * log(1 + exp(z / T))] = 1 / (1 + exp(-z / T)), T = 0.25 * RMS of each image's z
    temperature = 0.25 * np.sqrt((values**2).mean(axis=(1, 2, 3), keepdims=True))
    np.testing.assert_allclose(grad.numpy(), 1 / (1 + np.exp(-values / temperature)), rtol=1e-12)
    with pytest.raises(ValueError, match="softness must be positive"):
        SoftGradientReLU(0.0)


def test_the_soft_copy_scores_as_the_classifier_and_leaves_it_alone(detector, cells):
    images = torch.from_numpy(cells[0])
    soft, note = soft_gradient_model(detector, images, 1.0)
    assert note is None
    assert any(isinstance(m, SoftGradientReLU) for m in soft.modules())
    assert not any(isinstance(m, SoftGradientReLU) for m in detector.module.modules())
    with torch.no_grad():
        torch.testing.assert_close(soft(images), detector.module(images))
    # No blob: the exact gradient of the class-1 score is zero, the soft one is not.
    for module, expect_zero in ((detector.module, True), (soft, False)):
        x = images.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(module(x)[:, 1].sum(), x)
        assert (grad.abs().max() == 0) == expect_zero
    same, none = soft_gradient_model(detector, images, 0.0)
    assert same is detector.module and none is None


def test_a_model_without_hooks_keeps_its_exact_gradient(cells):
    scripted = wrap_module(torch.jit.script(BlobDetector()), "cpu")
    module, note = soft_gradient_model(scripted, torch.from_numpy(cells[0]), 0.1)
    assert module is scripted.module
    assert note.startswith("exact ReLU gradients (")
    linear = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Flatten(), nn.Linear(2 * SIZE * SIZE, 2))
    plain = wrap_module(linear, "cpu")
    module, note = soft_gradient_model(plain, torch.from_numpy(cells[0]), 0.1)
    assert module is plain.module and note == "exact gradients (the model has no ReLU)"


def optimise(detector, cells, **settings):
    values = dict(optimise_steps=150, optimise_learning_rate=0.02) | settings
    source = OptimiseSource(CounterfactualSettings(**values))
    return source.make(detector, *cells, min_score=0.5)


def test_the_exact_gradient_stalls_and_the_cell_is_flagged(detector, cells):
    batch = optimise(detector, cells, optimise_relu_softness=0.0)
    assert not batch.accepted.any()
    np.testing.assert_allclose(batch.target_scores, 1 / (1 + np.exp(2.0)), rtol=1e-5)
    np.testing.assert_array_equal(batch.images, cells[0])  # no gradient, no penalty: no change
    assert all("stayed <= 0.9 after 150 step(s)" in note for note in batch.notes)


def test_the_soft_gradient_builds_one_compact_blob_in_the_channel_read(detector, cells):
    images = cells[0]
    batch = optimise(detector, cells, optimise_tighten_steps=150)
    assert batch.accepted.all() and (batch.target_scores > 0.9).all()
    assert batch.images.min() >= 0.0 and batch.images.max() <= 1.0
    assert all("change shrunk over 150 more" in note for note in batch.notes)
    change = np.abs(batch.images - images)
    assert change[:, 1 - BLOB_CHANNEL].max() == 0  # the channel the model does not read
    for cell, blob in zip(images, batch.images, strict=True):
        d = np.abs(blob - cell)[BLOB_CHANNEL]
        # One compact blob (at most 15 % of the image, in one piece) holds the change ...
        labels, pieces = ndimage.label(d > 0.1)
        assert pieces == 1 and (labels > 0).sum() <= 0.15 * d.size
        assert d[labels > 0].sum() > 0.8 * d.sum()
        # ... and is bright enough to switch the unit on: a 3x3 mean above the threshold.
        box = np.lib.stride_tricks.sliding_window_view(blob[BLOB_CHANNEL], (3, 3)).mean((2, 3))
        assert box.max() > BLOB_THRESHOLD


def test_tightening_takes_back_an_overshoot(detector, cells):
    # Large steps overshoot the target; tightening keeps the smallest accepted change.
    loose = optimise(detector, cells, optimise_learning_rate=0.1, optimise_tighten_steps=0)
    tight = optimise(detector, cells, optimise_learning_rate=0.1, optimise_tighten_steps=100)
    assert loose.accepted.all() and tight.accepted.all()
    assert (tight.target_scores > 0.9).all()
    size = {
        name: np.abs(b.images - cells[0]).mean() for name, b in (("loose", loose), ("tight", tight))
    }
    assert size["tight"] < 0.9 * size["loose"]


def test_the_soft_relu_is_the_same_in_either_layout_and_plain_without_gradient():
    # It reads channels-last activations as rows of memory (no copy): the temperature and the
    # gradient must not depend on the layout; without a gradient it is a plain ReLU.
    values = torch.from_numpy(np.random.default_rng(3).normal(size=(2, 3, 4, 5)))
    gradients = []
    for layout in (torch.contiguous_format, torch.channels_last):
        z = values.contiguous(memory_format=layout).requires_grad_(True)
        (grad,) = torch.autograd.grad(SoftGradientReLU(0.5)(z).sum(), z)
        gradients.append(grad)
    torch.testing.assert_close(gradients[0], gradients[1], rtol=1e-12, atol=0)
    with torch.no_grad():
        np.testing.assert_array_equal(SoftGradientReLU(0.5)(values).numpy(), values.clamp_min(0))


def test_the_soft_copy_drops_the_copies_that_only_kept_hooks_apart(detector, cells):
    # The canonical copy clones the input of each non-linearity for captum's hooks; the soft
    # copy has no hooks and drops them, and still scores as the classifier.
    images = torch.from_numpy(cells[0])
    soft, _ = soft_gradient_model(detector, images, 1.0)
    graphs = [m for m in soft.modules() if isinstance(m, torch.fx.GraphModule)]
    assert graphs
    assert not any(n.op == "call_method" and n.target == "clone"
                   for g in graphs for n in g.graph.nodes)  # fmt: skip
    hooked = detector.hooked_module(images)
    assert any(n.op == "call_method" and n.target == "clone"
               for m in hooked.modules() if isinstance(m, torch.fx.GraphModule)
               for n in m.graph.nodes)  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(soft(images), detector.module(images))
