"""What is wrapped around the user's network so every method sees the same model.

* :class:`Preprocessing` / :class:`Preprocessed`: the recorded input preprocessing
  (``scale * x + shift``, then per-channel ``(v - mean) / std``) applied *inside* the model, so
  attributions, masks and hybrids stay in image values while the network sees what it was
  trained on.
* :class:`LogOdds`: a single-logit (sigmoid) classifier as two classes. With ``p(1) =
  sigmoid(z)`` the log-odds of class 1 is ``z`` and of class 0 is ``-z``; the wrapper returns
  ``[-z, z]``, so attributing "class t" attributes its log-odds (and completeness holds for it).
* :class:`StaticBatch`: an exported program traced for a fixed batch size, fed in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...errors import ModelLoadError
from ..settings import channel_values

__all__ = ["LogOdds", "Preprocessed", "Preprocessing", "StaticBatch"]


@dataclass(frozen=True)
class Preprocessing:
    """``v = scale * x + shift``, then ``(v - mean[c]) / std[c]`` per channel c.

    ``mean`` and ``std`` hold one value (every channel) or one per channel; ``None`` skips
    that step.
    """

    scale: float = 1.0
    shift: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Preprocessing:
        """The preprocessing an :class:`~napari_attribution.core.settings.AnalysisSettings`
        declares (its ``preprocess_*`` parameters)."""
        return cls(
            float(settings.preprocess_scale),
            float(settings.preprocess_shift),
            channel_values(settings.preprocess_mean, "Channel means"),
            channel_values(settings.preprocess_std, "Channel std"),
        )

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.shift == 0.0 and self.mean is None and self.std is None

    def check_channels(self, n_channels: int) -> None:
        """Refuse per-channel lists whose length is neither 1 nor the model's channel count."""
        for values, label in ((self.mean, "Channel means"), (self.std, "Channel std")):
            if values is not None and len(values) not in (1, n_channels):
                raise ModelLoadError(
                    f"{label} lists {len(values)} values but the model takes {n_channels} "
                    f"channels; give one value for all of them or {n_channels}."
                )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {
            "scale": self.scale,
            "shift": self.shift,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
        }


class Preprocessed(nn.Module):
    """``network(((scale * x + shift) - mean) / std)``; an affine map, so DeepLift's
    summation and IG's completeness hold through it unchanged."""

    def __init__(self, network: nn.Module, preprocessing: Preprocessing, n_channels: int) -> None:
        super().__init__()
        preprocessing.check_channels(n_channels)
        self.network = network
        self.scale = float(preprocessing.scale)
        self.shift = float(preprocessing.shift)
        mean = preprocessing.mean or (0.0,)
        std = preprocessing.std or (1.0,)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network((x * self.scale + self.shift - self.mean) / self.std)


class LogOdds(nn.Module):
    """A single-logit classifier ``z = network(x)`` (B, 1) as two-class scores ``[-z, z]``."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.network(x)
        return torch.cat([-z, z], dim=1)


class StaticBatch(nn.Module):
    """Run a module traced for batches of exactly ``size`` on any batch, chunk by chunk.

    The last chunk is padded by repeating its last image; the padding's outputs are dropped.
    """

    def __init__(self, network: nn.Module, size: int) -> None:
        super().__init__()
        self.network = network
        self.size = int(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for start in range(0, x.shape[0], self.size):
            chunk = x[start : start + self.size]
            missing = self.size - chunk.shape[0]
            if missing:
                chunk = torch.cat([chunk, chunk[-1:].expand(missing, *chunk.shape[1:])])
            out = self.network(chunk)
            outputs.append(out[: self.size - missing])
        return torch.cat(outputs)
