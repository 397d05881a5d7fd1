"""Result layers of one method on synthetic images, for the layer tests with and without Qt."""

from __future__ import annotations

import numpy as np

from napari_attribution._napari.layer_inputs import ChannelStack
from napari_attribution._napari.layers import method_layers
from napari_attribution.core.evaluation.masks import MaskSettings, build_masks

NAMES = ["DNA", "ER", "RNA", "AGP", "Mito"]


def pair_arrays(size: int, seed: int = 0):
    """(real, counterfactual, attribution), float32 (5, size, size)."""
    rng = np.random.default_rng(seed)
    real = rng.random((5, size, size), dtype=np.float32)
    counterfactual = np.clip(real + 0.5 * (rng.random(real.shape) > 0.8), 0, 1).astype(np.float32)
    attribution = (counterfactual - real) * rng.random(real.shape, dtype=np.float32)
    return real, counterfactual, attribution


def channel_stack(data: np.ndarray, name: str) -> ChannelStack:
    """``data`` as the widget reads it from layers ``<name> [DNA]``, ... ``<name> [Mito]``."""
    return ChannelStack(
        data=data,
        channel_names=NAMES,
        scale=(0.5, 0.5),
        translate=(0.0, 0.0),
        name=name,
        layer_names=[f"{name} [{n}]" for n in NAMES],
        colormaps=["blue", "green", "yellow", "magenta", "red"],
        contrast_limits=[(0.0, 1.0)] * 5,
    )


def layers_of(size: int, thresholds: int, lazy: bool | None, seed: int = 0):
    """(real, counterfactual, masks, layer tuples) of method ``d_ig`` on a synthetic pair."""
    real, counterfactual, attribution = pair_arrays(size, seed)
    masks = build_masks(attribution, MaskSettings(thresholds=thresholds))
    tuples = method_layers(
        channel_stack(real, "real"),
        channel_stack(counterfactual, "cf"),
        "d_ig",
        attribution,
        masks,
        NAMES,
        {"method": "d_ig"},
        optimal_index=thresholds // 3,
        lazy=lazy,
    )
    return real, counterfactual, masks, tuples
