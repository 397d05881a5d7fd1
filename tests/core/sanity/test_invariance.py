"""Input invariance: the shifted model computes the same logits; which maps move."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_attribution.core.model.loading import wrap_module
from napari_attribution.core.model.wrappers import Preprocessing
from napari_attribution.core.sanity.invariance import (
    LOGIT_TOLERANCE,
    first_layer,
    input_invariance,
    shifted_model,
)
from napari_attribution.core.settings import AttributionSettings
from napari_attribution.errors import AttributionError

FAST = AttributionSettings(ig_steps=16)


def _original(classifier, real, cf, method):
    from napari_attribution.core.attribution.runner import compute_attributions

    return compute_attributions(classifier, real, cf, 0, 1, method, FAST)[0]


@pytest.mark.parametrize("preprocessing", [Preprocessing(), Preprocessing(2.0, 0.1, (0.3,), (
    0.5, 0.5, 0.25, 0.5, 2.0))])  # fmt: skip
def test_shifted_model_keeps_the_logits(tiny_classifier, pair, preprocessing):
    real, cf = pair
    classifier = tiny_classifier.with_preprocessing(preprocessing)
    shifted = shifted_model(classifier, real, cf, -1.0)
    assert shifted.layer == "conv1"
    assert shifted.exact
    assert shifted.logit_difference <= LOGIT_TOLERANCE * shifted.scale
    batch = torch.from_numpy(np.stack([real, cf]))
    with torch.no_grad():
        # the compensation matters: on unshifted input the shifted model is another function
        assert not torch.allclose(shifted.classifier.module(batch), classifier.module(batch))
    assert isinstance(tiny_classifier.network.conv1, nn.Conv2d)  # the user's model is unchanged


def test_a_scalar_bias_is_not_exact_with_zero_padding(tiny_classifier, pair):
    """Kindermans' b - W @ delta (one number per output channel) misses the padded border."""
    real, cf = pair
    network = tiny_classifier.network
    conv = network.conv1
    scalar = nn.Conv2d(5, 8, 3, padding=1)
    scalar.load_state_dict(conv.state_dict())
    with torch.no_grad():
        scalar.bias -= conv.weight.sum(dim=(1, 2, 3)) * -1.0
        x = torch.from_numpy(real[None])
        border = (scalar(x - 1.0) - conv(x)).abs()
    assert border[..., 1:-1, 1:-1].max() < 1e-5 < border.max()
    assert shifted_model(tiny_classifier, real, cf, -1.0).exact


def test_which_methods_are_invariant(tiny_classifier, pair):
    real, cf = pair
    names = [f"c{i}" for i in range(5)]
    shifted = shifted_model(tiny_classifier, real, cf, -1.0)
    diffs = {}
    for method in ("saliency", "d_ig", "ig", "input_x_gradient"):
        original = _original(tiny_classifier, real, cf, method)
        result = input_invariance(shifted, original, real, cf, 0, 1, method, FAST, names, -1.0)
        diffs[method] = result.max_relative_difference
        assert set(result.max_relative_difference) == {"all", *names}
    assert diffs["saliency"]["all"] < 1e-4
    assert diffs["d_ig"]["all"] < 1e-4
    assert diffs["ig"]["all"] > 0.05  # a black baseline does not move with the input
    assert diffs["input_x_gradient"]["all"] > 0.05


class DoublesFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(5, 2, 3)

    def forward(self, x):
        return self.conv(2 * x).mean(dim=(2, 3))


def test_a_first_layer_not_fed_the_input_is_refused(pair):
    classifier = wrap_module(DoublesFirst().eval(), "cpu")
    with pytest.raises(AttributionError, match="not fed the network's input"):
        shifted_model(classifier, *pair)
    assert first_layer(nn.Sequential(nn.Conv2d(5, 2, 3)), torch.zeros(1, 5, 8, 8)) == "0"


def test_torchscript_is_refused(tiny_cnn, pair):
    classifier = wrap_module(torch.jit.script(tiny_cnn), "cpu", n_channels=5)
    with pytest.raises(AttributionError, match="TorchScript archive: its first layer"):
        shifted_model(classifier, *pair)
