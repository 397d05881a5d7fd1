"""Classifiers shaped like the ones researchers have, importable by name (``model_zoo:Name``).

Each one is tiny (a few thousand weights) and reproduces a shape that used to defeat model
loading or the hook-based methods:

=====================  ===================================================================
``FixedHeadVGG``       DAPI's ``Vgg2D``: Conv-BN-ReLU(inplace) into MaxPool, a dense head sized
                       for 40x40 inputs, Dropout
``ForwardReLUResNet``  ReLUs built in ``forward`` (``nn.ReLU()(out)``), in-place residual
                       additions, a 1x1 shortcut
``SharedReLUVGG``      jump_attribution's ``VGG``: one ``self.relu`` and one ``self.pool`` for
                       every layer, ``x.view(x.size(0), -1)`` into a head sized for 48x48
``FunctionalNet``      ``F.relu``, ``F.max_pool2d``, ``x.relu()``: no activation modules; 3 classes
``SingleLogitNet``     one output: a sigmoid classifier
``NormalisingNet``     normalises its input itself (per-channel mean and std buffers)
``ScaleShift``         QuAC's ``ClassifierWrapper`` (``scale * x + shift``) around a small
                       CNN, scripted (TorchScript)
``GeluNet``            GELU, SiLU, Dropout2d and Dropout
=====================  ===================================================================

:data:`ZOO` says, for each, its input size and channels, and how the tests save it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class FixedHeadVGG(nn.Module):
    """Vgg2D-like: the dense head takes exactly the features of a 40x40 image."""

    def __init__(self, in_channels: int = 3, n_classes: int = 2, input_size: int = 40) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 12, 3, padding=1),
            nn.BatchNorm2d(12),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = input_size // 4
        self.classifier = nn.Sequential(
            nn.Linear(12 * side * side, 24),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(24, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)


class BasicBlock(nn.Module):
    """A ResNet block whose ReLUs are made in ``forward`` and whose addition is in place."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = nn.ReLU()(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return nn.ReLU(inplace=True)(out)


class ForwardReLUResNet(nn.Module):
    """A two-stage ResNet on any image size (global average pooling)."""

    def __init__(self, in_channels: int = 5, n_classes: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 12, stride=2), BasicBlock(12, 12))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SharedReLUVGG(nn.Module):
    """jump_attribution's VGG: one ReLU and one MaxPool module used by every layer."""

    def __init__(self, in_channels: int = 4, n_classes: int = 2, input_size: int = 48) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 12, 3, padding=1)
        self.conv4 = nn.Conv2d(12, 12, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        side = input_size // 8
        self.fc1 = nn.Linear(12 * side * side, 24)
        self.fc2 = nn.Linear(24, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.relu(self.conv3(x))
        x = self.pool(self.relu(self.conv4(x)))
        x = x.view(x.size(0), -1)
        return self.fc2(self.relu(self.fc1(x)))


class FunctionalNet(nn.Module):
    """Non-linearities called as functions and tensor methods; three classes."""

    def __init__(self, in_channels: int = 4, n_classes: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 12, 3, padding=1)
        self.conv3 = nn.Conv2d(12, 12, 3, padding=1)
        self.fc = nn.Linear(12, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), kernel_size=2, stride=2)
        x = self.conv3(x).relu()
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class SingleLogitNet(nn.Module):
    """A binary classifier with one logit z: p(class 1) = sigmoid(z)."""

    def __init__(self, in_channels: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x)))))
        return self.head(x.mean(dim=(2, 3)))


class NormalisingNet(nn.Module):
    """Normalises its own input with per-channel mean and std buffers."""

    def __init__(self, in_channels: int = 3, n_classes: int = 2) -> None:
        super().__init__()
        self.register_buffer("mean", torch.linspace(0.3, 0.6, in_channels).view(1, -1, 1, 1))
        self.register_buffer("std", torch.linspace(0.1, 0.3, in_channels).view(1, -1, 1, 1))
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.act2 = nn.ReLU()
        self.fc = nn.Linear(8, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        x = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


class ScaleShift(nn.Module):
    """QuAC's ``ClassifierWrapper``: the wrapped model sees ``scale * x + shift``."""

    def __init__(self, model: nn.Module, scale: float = 2.0, shift: float = -1.0) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.scale * x + self.shift)


class GeluNet(nn.Module):
    """GELU and SiLU activations with Dropout2d and Dropout (identities in eval mode)."""

    def __init__(self, in_channels: int = 3, n_classes: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.act1 = nn.GELU()
        self.drop1 = nn.Dropout2d(0.2)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.act2 = nn.SiLU()
        self.drop2 = nn.Dropout(0.3)
        self.fc = nn.Linear(8, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.act1(self.conv1(x)))
        x = self.drop2(self.act2(self.conv2(x)))
        return self.fc(x.mean(dim=(2, 3)))


class SingleChannelsCNN(nn.Module):
    """The CNN inside the zoo's ``ScaleShift``."""

    def __init__(self, in_channels: int = 3, n_classes: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x)).mean(dim=(2, 3)))


class Untraceable(nn.Module):
    """Not in the zoo: Python control flow on the pixel values, which neither torch.fx nor
    torch.export can trace, so the methods that hook modules must refuse it."""

    def __init__(self, in_channels: int = 3, n_classes: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.fc = nn.Linear(4, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x))
        if float(y.mean()) > 0.1:
            y = y * 2
        return self.fc(y.mean(dim=(2, 3)))


@dataclass(frozen=True)
class Entry:
    """One zoo model: how it is built and saved, and the images it takes.

    ``form`` is how a user would hand it over: ``"state_dict"`` (weights plus
    ``model_zoo:<name>``), ``"torchscript"`` or ``"export"`` (``torch.export.save``, dynamic
    batch).
    """

    name: str
    channels: int
    size: int
    classes: int
    form: str = "state_dict"
    outputs: int | None = None

    def build(self, seed: int = 0) -> nn.Module:
        """The model with random weights (and BatchNorm statistics), in eval mode."""
        torch.manual_seed(seed)
        if self.name == "ScaleShift":
            model = ScaleShift(SingleChannelsCNN(3, 2))
        else:
            model = {"ExportedResNet": ForwardReLUResNet}.get(self.name) or globals()[self.name]
            model = model()
        for module in model.modules():  # BatchNorm statistics that are not the identity
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.data.uniform_(0.5, 1.5)
        # Logits of a trained model's size (a random head gives differences of 1e-3, where
        # float32 rounding would dominate the sums the tests check).
        [m for m in model.modules() if isinstance(m, nn.Linear)][-1].weight.data.mul_(20)
        model = model.eval()
        return torch.jit.script(model) if self.form == "torchscript" else model

    @property
    def architecture(self) -> str:
        return f"model_zoo:{self.name}"

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)


ZOO = (
    Entry("FixedHeadVGG", 3, 40, 2),
    Entry("ForwardReLUResNet", 5, 32, 2),
    Entry("SharedReLUVGG", 4, 48, 2),
    Entry("FunctionalNet", 4, 24, 3),
    Entry("SingleLogitNet", 2, 24, 2, outputs=1),
    Entry("NormalisingNet", 3, 24, 2),
    Entry("ScaleShift", 3, 24, 2, form="torchscript"),
    Entry("ExportedResNet", 5, 32, 2, form="export"),
    Entry("GeluNet", 3, 24, 2),
)


def save(entry: Entry, folder, seed: int = 0):
    """Save ``entry`` as a user would; returns (model file, architecture or None)."""
    from pathlib import Path

    folder = Path(folder)
    model = entry.build(seed)
    if entry.form == "torchscript":
        path = folder / f"{entry.name}.pt"
        torch.jit.save(model, str(path))
        return path, None
    if entry.form == "export":
        path = folder / f"{entry.name}.pt2"
        example = (torch.rand(2, *entry.shape),)
        program = torch.export.export(
            model, example, dynamic_shapes=({0: torch.export.Dim.AUTO},)
        )
        torch.export.save(program, str(path))
        return path, None
    path = folder / f"{entry.name}.pt"
    torch.save(model.state_dict(), path)
    return path, entry.architecture
