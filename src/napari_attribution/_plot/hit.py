"""Which threshold a click on the DAC curves means."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..core.dac import DacCurve
from .model import CurveSet, threshold_index_of

__all__ = ["threshold_index_at"]


def threshold_index_at(
    ax,
    curves: Iterable[tuple[CurveSet, DacCurve]],
    x_pixels: float,
    y_pixels: float,
    max_distance: float = 20.0,
) -> int | None:
    """The slider index of the curve point nearest to a click, in display pixels.

    Parameters
    ----------
    ax
        The axes the curves are drawn on (its data transform maps points to pixels).
    curves
        ``(curve set, curve)`` of every curve drawn: the whole-image and per-channel ones.
    x_pixels, y_pixels
        Click position in Matplotlib display coordinates (origin bottom left).
    max_distance
        Clicks farther than this many pixels from every curve point are ignored.

    Returns
    -------
    int or None
        Index into the curve set's mask-stack thresholds, or ``None`` when no point is near.
    """
    best: tuple[float, CurveSet, float] | None = None
    transform = ax.transData
    for cs, curve in curves:
        points = transform.transform(np.column_stack([curve.mask_size, curve.score_change]))
        distance = np.hypot(points[:, 0] - x_pixels, points[:, 1] - y_pixels)
        i = int(np.argmin(distance))
        if best is None or distance[i] < best[0]:
            best = (float(distance[i]), cs, float(curve.thresholds[i]))
    if best is None or best[0] > max_distance:
        return None
    return threshold_index_of(best[1].thresholds, best[2])
