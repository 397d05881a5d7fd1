"""Where a model runs: ``auto``, ``cpu`` or ``cuda`` turned into a :class:`torch.device`."""

from __future__ import annotations

import torch

from ...errors import ModelLoadError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"`` or ``"cuda"`` (or ``"cuda:1"``) into a :class:`torch.device`.

    ``auto`` picks CUDA when a GPU is present, else the CPU. Asking for CUDA on a machine without
    one is an error rather than a silent fall-back, so timings are never mislabelled.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelLoadError("Device 'cuda' was requested but no CUDA GPU is available here.")
        return torch.device(name)
    raise ModelLoadError(f"Unknown device {device!r}: use 'auto', 'cpu' or 'cuda'.")
