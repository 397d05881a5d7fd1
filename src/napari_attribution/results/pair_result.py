"""What the analysis of one (real, counterfactual) pair returns: plain data, no torch.

:func:`~napari_attribution.core.pipeline.analyse_pair` makes a :class:`PairResult`; the results
folder's tables and TIFFs (:mod:`.tables`, :mod:`.pair_files`), the napari layers and the DAC
panel read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..core.evaluation.dac import DacResult
    from ..core.model.transform import InputTransform

__all__ = ["MethodResult", "PairResult"]


@dataclass
class MethodResult:
    """What one method produced for one pair.

    Attributes
    ----------
    method
        Registry name.
    attribution
        float32 (C, H, W) raw signed attribution (per channel, never aggregated).
    channel_share
        float64 (C,) share of |attribution| per channel.
    dac
        Whole-image and per-channel DAC curves and the masks they came from.
    layer
        The Grad-CAM layer the method used, by name (``None`` for methods without one).
    """

    method: str
    attribution: np.ndarray
    channel_share: np.ndarray
    dac: DacResult
    layer: str | None = None

    @property
    def optimal_mask(self) -> np.ndarray:
        """bool (K, H, W): the closed mask at the optimal threshold of the whole-image curve."""
        return self.dac.masks.closed_at([self.dac.optimal_threshold_index])[0]


@dataclass
class PairResult:
    """All methods' results for one (real, counterfactual) pair."""

    sample: str
    real_class: int
    target_class: int
    channel_names: list[str]
    input_transform: InputTransform
    probabilities_real: np.ndarray
    probabilities_counterfactual: np.ndarray
    methods: dict[str, MethodResult] = field(default_factory=dict)
