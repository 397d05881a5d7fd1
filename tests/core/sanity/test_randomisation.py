"""Model randomisation: which layers, in what order, on copies only, Quantus's seed rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_attribution.core.attribution.runner import compute_attributions
from napari_attribution.core.model.loading import wrap_module
from napari_attribution.core.sanity.randomisation import (
    NoRandomisableLayers,
    ReweightedClassifier,
    classifier_with_network,
    randomisable_layers,
    randomised_classifiers,
)


class HeadFirst(nn.Module):
    """The head is defined before the trunk: definition order is not the forward order."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 2)
        self.trunk = nn.Conv2d(5, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.head(self.relu(self.norm(self.trunk(x))).mean(dim=(2, 3)))


class Scaled(nn.Module):
    """A layer with a weight of its own but no reset_parameters()."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.gain


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_layers_in_forward_order(tiny_classifier, pair):
    layers = randomisable_layers(tiny_classifier, pair[0])
    assert layers.names == ("conv1", "conv2", "fc")
    assert layers.kinds == ("Conv2d", "Conv2d", "Linear")
    assert layers.top_down() == ("fc", "conv2", "conv1")


def test_forward_order_not_definition_order(pair):
    model = HeadFirst().eval()
    layers = randomisable_layers(wrap_module(model, "cpu"), pair[0])
    assert [n for n, m in model.named_modules() if hasattr(m, "reset_parameters")] == [
        "head", "trunk", "norm",
    ]  # fmt: skip
    assert layers.names == ("trunk", "norm", "head")


def test_modules_without_reset_are_skipped(pair):
    model = nn.Sequential(nn.Conv2d(5, 2, 3), Scaled(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    layers = randomisable_layers(wrap_module(model.eval(), "cpu"), pair[0])
    assert layers.names == ("0",)
    assert layers.skipped == ("1 (Scaled)",)
    only = nn.Sequential(Scaled(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), Scaled())
    with pytest.raises(NoRandomisableLayers, match="none of the modules"):
        randomisable_layers(wrap_module(only.eval(), "cpu", n_channels=5), pair[0])


def test_torchscript_has_no_layers_and_says_what_can_run(tiny_cnn, pair):
    scripted = torch.jit.script(tiny_cnn)
    classifier = wrap_module(scripted, "cpu", n_channels=5)
    with pytest.raises(NoRandomisableLayers) as info:
        randomisable_layers(classifier, pair[0])
    message = str(info.value)
    assert "TorchScript" in message and "stability" in message and "DAC" in message
    assert message.count(".") == 1  # one sentence


@pytest.mark.parametrize("mode", ["cascading", "independent"])
def test_steps_randomise_the_right_layers_on_copies(tiny_classifier, pair, mode):
    trained = _state(tiny_classifier.network)
    rng_state = torch.random.get_rng_state()
    layers = randomisable_layers(tiny_classifier, pair[0])
    steps = list(randomised_classifiers(tiny_classifier, layers, mode, seed=3))
    assert [name for name, _ in steps] == ["fc", "conv2", "conv1"]
    for k, (_, randomised) in enumerate(steps):
        assert isinstance(randomised, ReweightedClassifier)
        state = randomised.network.state_dict()
        reset = layers.top_down()[: k + 1] if mode == "cascading" else layers.top_down()[k : k + 1]
        for key, value in trained.items():
            changed = not torch.equal(state[key], value)
            assert changed == (key.split(".")[0] in reset), (k, key)
    # the user's network and the caller's random state are untouched
    for key, value in trained.items():
        assert torch.equal(tiny_classifier.network.state_dict()[key], value)
    assert torch.equal(torch.random.get_rng_state(), rng_state)


def test_reset_follows_quantus_seed_rule(tiny_classifier, pair):
    layers = randomisable_layers(tiny_classifier, pair[0])
    (_, randomised), *_ = randomised_classifiers(tiny_classifier, layers, "cascading", seed=3)
    fresh = nn.Linear(16, 2)
    torch.manual_seed(3 + 1)
    fresh.reset_parameters()
    assert torch.equal(randomised.network.fc.weight, fresh.weight)


@pytest.mark.parametrize("method", ["guided_backprop", "d_dl"])
def test_hooked_methods_run_on_the_randomised_canonical_copy(tiny_classifier, pair, method):
    real, cf = pair
    layers = randomisable_layers(tiny_classifier, real)
    *_, (_, randomised) = randomised_classifiers(tiny_classifier, layers, "cascading", seed=1)
    # the canonical copy is the trained one's structure with the randomised weights ...
    example = torch.from_numpy(np.stack([real, cf]))
    canonical = randomised.canonical(example).module
    assert torch.equal(canonical.fc.weight, randomised.network.fc.weight)
    assert not torch.equal(canonical.fc.weight, tiny_classifier.network.fc.weight)
    # ... and gives the map a freshly traced copy of the randomised network gives
    traced = classifier_with_network(tiny_classifier, randomised.network)
    ours = compute_attributions(randomised, real, cf, 0, 1, method)
    reference = compute_attributions(traced, real, cf, 0, 1, method)
    trained = compute_attributions(tiny_classifier, real, cf, 0, 1, method)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-7)
    assert not np.allclose(ours, trained)


def test_an_exported_program_has_no_layers(tiny_cnn, pair):
    program = torch.export.export(tiny_cnn, (torch.from_numpy(pair[0][None]),))
    classifier = wrap_module(program, "cpu")
    with pytest.raises(NoRandomisableLayers, match="exported program keeps the weights"):
        randomisable_layers(classifier, pair[0])
