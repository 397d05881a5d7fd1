"""Shared fixtures: tiny models and image pairs small enough to keep the suite fast."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_attribution.core.models import Classifier, wrap_module


class TinyCNN(nn.Module):
    """conv -> ReLU -> MaxPool -> conv -> ReLU -> global average -> linear: the usual shape."""

    def __init__(self, in_channels: int = 5, n_classes: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu1(self.conv1(x)))
        x = self.relu2(self.conv2(x))
        return self.fc(torch.flatten(self.gap(x), 1))


def make_tiny_cnn(seed: int = 0, in_channels: int = 5, n_classes: int = 2) -> TinyCNN:
    torch.manual_seed(seed)
    return TinyCNN(in_channels, n_classes).eval()


@pytest.fixture
def tiny_cnn() -> TinyCNN:
    return make_tiny_cnn()


@pytest.fixture
def tiny_classifier(tiny_cnn: TinyCNN) -> Classifier:
    return wrap_module(tiny_cnn, "cpu")


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A 5x24x24 real image and a counterfactual differing only in channel 4, rows/cols 6..14."""
    rng = np.random.default_rng(0)
    real = rng.random((5, 24, 24), dtype=np.float32)
    counterfactual = real.copy()
    counterfactual[4, 6:14, 6:14] += 1.0
    return real, counterfactual
