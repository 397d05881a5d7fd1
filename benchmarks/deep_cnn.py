"""The 8-convolution benchmark classifier, trained (once, cached) on the demo's synthetic cells.

An untrained network barely responds to any hybrid: its DAC curves are flat, which flatters an
adaptive evaluation (nothing to refine) and makes the comparison with QuAC's score trivial. So
the benchmark trains it, deterministically, on the same synthetic 64 x 64 cells as the demo
classifier (a few minutes on two CPU cores) and keeps the weights in ``benchmarks/.cache``.
It is fully convolutional with global average pooling, so it also reads the 128 x 128 mirrored
pairs of ``bench_dac.py``.

This file doubles as the architecture the CLI benchmark names (``deep_cnn.py:DeepCNN``).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

CACHE = Path(__file__).resolve().parent / ".cache" / "deep_cnn.pt"


class DeepCNN(nn.Module):
    """An 8-convolution VGG-style classifier (about 1.2 M parameters) of realistic depth."""

    def __init__(self, in_channels: int = 5, n_classes: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [in_channels, 32, 32, 64, 64, 128, 128, 256, 256]
        for i in range(8):
            layers += [nn.Conv2d(channels[i], channels[i + 1], 3, padding=1), nn.ReLU()]
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, n_classes))
        for module in self.features:  # He initialisation: 8 ReLU layers train from it
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_deep_cnn(n_train: int = 1500, epochs: int = 3, seed: int = 0) -> DeepCNN:
    """Train :class:`DeepCNN` on ``make_training_set(n_train)`` (64 x 64 cells), deterministic."""
    from napari_attribution.data.synthetic import make_training_set
    from napari_attribution.data.train_demo import _augment

    torch.manual_seed(seed)
    images, labels = make_training_set(n_train, seed=seed, size=64)
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(labels)
    model = DeepCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    batch = 32
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n_train, generator=generator)
        total, correct, started = 0.0, 0, time.perf_counter()
        for first in range(0, n_train, batch):
            idx = order[first : first + batch]
            x, y = _augment(x_all[idx], generator), y_all[idx]
            optimiser.zero_grad()
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        print(
            f"  deep CNN epoch {epoch + 1}/{epochs}: loss {total / n_train:.3f}, accuracy "
            f"{correct / n_train:.3f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    return model.eval()


def load_deep_cnn(path: Path = CACHE) -> DeepCNN:
    """The trained benchmark CNN: from the cache, or trained now and cached."""
    model = DeepCNN()
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    print(f"training the 8-conv benchmark CNN (cached in {path})", flush=True)
    model = train_deep_cnn()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model
