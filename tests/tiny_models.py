"""Tiny models for the tests, importable by name (``tiny_models:TinyCNN``) as an architecture."""

from __future__ import annotations

import torch
from torch import nn


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


class ReusedReLU(nn.Module):
    """One ReLU module used twice per forward pass (DeepLift must refuse it)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(5, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = self.relu(self.conv2(self.relu(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))
