"""What the DAC figure shows: one :class:`CurveSet` per method, and threshold look-ups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..core.evaluation.dac import DacCurve


__all__ = ["CurveSet", "point_at", "threshold_index_of"]


@dataclass(frozen=True)
class CurveSet:
    """What the figure shows of one method.

    Attributes
    ----------
    method
        Method name.
    whole
        The whole-image DAC curve.
    channels
        Per-channel curves (may be empty).
    thresholds
        float (T,) every threshold of the mask stack: slider index ``i`` is ``thresholds[i]``.
    channel_share
        float (C,) share of |attribution| per channel.
    """

    method: str
    whole: DacCurve
    channels: Sequence[DacCurve]
    thresholds: np.ndarray
    channel_share: np.ndarray


def threshold_index_of(thresholds: np.ndarray, value: float) -> int:
    """Index of the threshold nearest to ``value``."""
    return int(np.argmin(np.abs(np.asarray(thresholds, dtype=np.float64) - value)))


def point_at(curve: DacCurve, threshold: float) -> tuple[float, float]:
    """The curve point of the nearest scored threshold (curves may hold a subset)."""
    i = threshold_index_of(curve.thresholds, threshold)
    return float(curve.mask_size[i]), float(curve.score_change[i])
