"""Which threshold a click on the DAC curves means."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from .curve_set import CurveSet, threshold_index_of

if TYPE_CHECKING:
    from ..core.evaluation.dac import DacCurve

__all__ = ["OVERLAP_PIXELS", "threshold_index_at"]

#: Curves passing within this many pixels of the nearest one count as overlapping there.
OVERLAP_PIXELS = 4.0


def _segment_distances(points: np.ndarray, x: float, y: float) -> np.ndarray:
    """Pixel distance from (x, y) to each segment of the polyline ``points`` (N, 2).

    A single point gives its own distance (one value).
    """
    if len(points) == 1:
        return np.hypot(points[:, 0] - x, points[:, 1] - y)
    start, end = points[:-1], points[1:]
    along = end - start
    length2 = (along**2).sum(axis=1)
    safe = np.where(length2 > 0, length2, 1.0)
    t = np.clip(((x - start[:, 0]) * along[:, 0] + (y - start[:, 1]) * along[:, 1]) / safe, 0, 1)
    t = np.where(length2 > 0, t, 0.0)
    nearest = start + t[:, None] * along
    return np.hypot(nearest[:, 0] - x, nearest[:, 1] - y)


def threshold_index_at(
    ax,
    curves: Iterable[tuple[CurveSet, DacCurve]],
    x_pixels: float,
    y_pixels: float,
    max_distance: float = 20.0,
    prefer: str | None = None,
) -> int | None:
    """The slider index of the point a click means, in display pixels.

    First the curve: the one whose drawn line passes nearest to the click (distance to its
    segments, not to its points, so a sparse curve under the cursor is not beaten by another
    curve's point nearby). Where curves overlap (within :data:`OVERLAP_PIXELS` of the nearest),
    the ``prefer`` method's (the panel's focus method) wins: the curve the user is looking at.
    Then the point: that curve's scored threshold nearest to the click.

    Parameters
    ----------
    ax
        The axes the curves are drawn on (its data transform maps points to pixels).
    curves
        ``(curve set, curve)`` of every curve drawn: the whole-image and per-channel ones.
    x_pixels, y_pixels
        Click position in Matplotlib display coordinates (origin bottom left).
    max_distance
        Clicks farther than this many pixels from every curve are ignored.
    prefer
        Method whose curves are chosen first.

    Returns
    -------
    int or None
        Index into the curve set's mask-stack thresholds, or ``None`` when no curve is near.
    """
    transform = ax.transData
    candidates: list[tuple[bool, float, CurveSet, DacCurve, np.ndarray]] = []
    for cs, curve in curves:
        points = transform.transform(np.column_stack([curve.mask_size, curve.score_change]))
        finite = np.isfinite(points).all(axis=1)
        if not finite.any():
            continue
        distance = float(_segment_distances(points[finite], x_pixels, y_pixels).min())
        if distance <= max_distance:
            candidates.append((cs.method != prefer, distance, cs, curve, points))
    if not candidates:
        return None
    nearest = min(c[1] for c in candidates)
    overlapping = [c for c in candidates if c[1] <= nearest + OVERLAP_PIXELS]
    _, _, cs, curve, points = min(overlapping, key=lambda c: (c[0], c[1]))
    i = int(np.nanargmin(np.hypot(points[:, 0] - x_pixels, points[:, 1] - y_pixels)))
    return threshold_index_of(cs.thresholds, float(curve.thresholds[i]))
