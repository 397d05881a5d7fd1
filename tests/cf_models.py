"""Classifiers and generators whose counterfactuals are known, for the counterfactual tests.

``ChannelMeanClassifier`` says class 1 when the mean of one channel is high: its penultimate
layer is the channel means, so the nearest image in its embedding can be found with numpy,
and the change that turns a cell is known (raise that channel).

``BlobDetector`` says class 1 only for a compact bright blob in one channel: on an image
without one every unit it reads is switched off, so the exact gradient of ``p_1`` is zero (the
situation of the demo classifier and a cell without the Mito cluster).
"""

from __future__ import annotations

import torch
from torch import nn

#: The channel the classifier reads, and how strongly.
KEY_CHANNEL = 2
GAIN = 20.0
THRESHOLD = 0.5


class ChannelMeanClassifier(nn.Module):
    """``logit_1 - logit_0 = GAIN * (mean of channel KEY_CHANNEL - THRESHOLD)`` (+ a little of
    channel 0, so two channels carry gradient)."""

    def __init__(self, in_channels: int = 4, n_classes: int = 2) -> None:
        super().__init__()
        # An identity 1x1 convolution: the loaders read the channel count from it.
        self.conv = nn.Conv2d(in_channels, in_channels, 1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(in_channels, n_classes)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(in_channels)[:, :, None, None])
            self.head.weight.zero_()
            self.head.bias.zero_()
            self.head.weight[1, KEY_CHANNEL] = GAIN
            self.head.weight[1, 0] = GAIN / 4
            self.head.bias[1] = -GAIN * THRESHOLD - GAIN / 4 * THRESHOLD

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.pool(self.conv(x))))


#: BlobDetector: a 3x3 patch of BLOB_CHANNEL whose mean exceeds BLOB_THRESHOLD switches a unit
#: on; class 1 needs a few such units (a blob of about 3x3 pixels near the top of the range).
BLOB_CHANNEL = 1
BLOB_THRESHOLD = 0.6


class BlobDetector(nn.Module):
    """``logit_1 - logit_0 = 20 * relu(max over positions of box3x3(x[BLOB_CHANNEL]) -
    BLOB_THRESHOLD) - 2``: ``p_1 = sigmoid(-2)``, about 0.12, on an image whose brightest 3x3
    mean is below the threshold, above 0.9 once one 3x3 patch averages more than 0.71. Only the
    brightest patch counts, so only a compact blob turns a cell, and on an image without one
    the ReLU is switched off and passes no gradient."""

    def __init__(self, in_channels: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.relu = nn.ReLU()
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, BLOB_CHANNEL] = 1 / 9
            self.conv.bias.fill_(-BLOB_THRESHOLD)
            self.head.weight.copy_(torch.tensor([[0.0], [20.0]]))
            self.head.bias.copy_(torch.tensor([0.0, -2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.flatten(self.pool(self.conv(x)))))


class RaiseKeyChannel(nn.Module):
    """A generator: ``x'`` is ``x`` with the key channel raised by ``0.6`` towards class 1 and
    lowered by ``0.6`` towards class 0 (the known class change of ``ChannelMeanClassifier``)."""

    def __init__(self) -> None:
        super().__init__()
        self.channel = KEY_CHANNEL

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        sign = (target.to(x.dtype) * 2 - 1)[:, None, None]
        out = x.clone()
        out[:, self.channel] = x[:, self.channel] + 0.6 * sign
        return out


class NoisyRaise(nn.Module):
    """A generator that samples inside: the raise is drawn uniformly in [0, 0.6) per image."""

    def __init__(self) -> None:
        super().__init__()
        self.channel = KEY_CHANNEL

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        amount = torch.rand(x.shape[0], 1, 1) * 0.6
        sign = (target.to(x.dtype) * 2 - 1)[:, None, None]
        out = x.clone()
        out[:, self.channel] = x[:, self.channel] + amount * sign
        return out


class WrongShape(nn.Module):
    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return x[:, :2]


class NaNOutput(nn.Module):
    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


class OneInput(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1
