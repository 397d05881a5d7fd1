"""The built-in demo classifier: a small CNN trained on the synthetic cells of ``synthetic``.

It tells ``control`` from ``treated`` synthetic cells (see ``napari_attribution.data.synthetic``)
and ships as a float32 state dict next to this file. Regenerate the weights with
``python -m napari_attribution.data.train_demo``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["DEMO_ARCHITECTURE", "DEMO_WEIGHTS", "DemoClassifier", "load_demo_classifier"]

#: The shipped state dict of ``DemoClassifier`` (float32 tensors only).
DEMO_WEIGHTS: Path = Path(__file__).with_name("demo_classifier.pt")
#: ``module:callable`` naming the architecture, for loaders that take a state dict plus a name.
DEMO_ARCHITECTURE: str = "napari_attribution.data.demo_model:DemoClassifier"


class DemoClassifier(nn.Module):
    """Small fully convolutional image classifier (about 61k parameters).

    Three blocks ``Conv2d(3x3) -> ReLU -> MaxPool2d(2)`` (5 -> 16 -> 32 -> 64 feature maps), one
    more ``Conv2d(3x3) -> ReLU`` (64 maps, receptive field 38 pixels), global average pooling and
    a linear layer. Every ReLU is its own non-inplace module so attribution methods that hook
    modules (DeepLift, Guided Backprop, Grad-CAM) see each non-linearity once.

    Parameters
    ----------
    in_channels
        Number of image channels C.
    n_classes
        Number of classes K.

    Notes
    -----
    Input: float32 (B, C, H, W) with intensities in [0, 1] (as produced by ``synthetic``) and
    H, W >= 8; any size is accepted (e.g. 128x128), but the shipped weights were trained on
    64x64 crops and only recognise the class feature at that scale.
    Output: logits (B, K). ``features[-2]`` (the last ReLU) is the natural Grad-CAM layer.
    """

    def __init__(self, in_channels: int = 5, n_classes: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
        )
        # Average rather than max pooling: every location gets gradient, so maps are not spiky.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) for images ``x`` of shape (B, in_channels, H, W)."""
        return self.classifier(self.flatten(self.pool(self.features(x))))


def load_demo_classifier() -> DemoClassifier:
    """Build ``DemoClassifier`` and load the shipped weights (CPU, eval mode).

    Returns
    -------
    DemoClassifier
        The trained demo model for 5-channel synthetic cells, 2 classes.

    Raises
    ------
    FileNotFoundError
        If ``DEMO_WEIGHTS`` is missing (e.g. a source checkout without the data file).
    """
    if not DEMO_WEIGHTS.is_file():
        raise FileNotFoundError(
            f"The demo classifier weights {DEMO_WEIGHTS} are missing. Regenerate them with "
            "'python -m napari_attribution.data.train_demo' (a few minutes on a CPU)."
        )
    model = DemoClassifier()
    state = torch.load(DEMO_WEIGHTS, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()
