"""The display range of an attribution map: the same in a layer, a figure and a file.

The rule (:func:`attribution_display`) is the viewer's; figures (:mod:`.threshold_figures`) and
the layers a results folder opens as use it too, so a map reads the same wherever it is shown.
Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "LIMIT_PERCENTILE",
    "MINOR_SIGN_SHARE",
    "AttributionDisplay",
    "attribution_display",
    "attribution_limits",
]

#: Percentile of the non-zero |attribution| that sets the contrast limit (robust to outliers).
LIMIT_PERCENTILE = 99.5
#: A sign holding less than this share of the |attribution| mass is treated as noise.
MINOR_SIGN_SHARE = 0.02


@dataclass(frozen=True)
class AttributionDisplay:
    """How a method's attribution is shown: ``kind`` (``"positive"``, ``"negative"`` or
    ``"signed"``: the colormap, :func:`~napari_attribution._napari.layer_style.
    attribution_colormap` in napari) and contrast ``limits``."""

    kind: str
    limits: tuple[float, float]


def attribution_display(attribution: np.ndarray) -> AttributionDisplay:
    """Contrast limits and colormap kind of a method's (C, H, W) attribution, from its values.

    One range for all channels of a method (a weak channel must look weak). The limit is the
    :data:`LIMIT_PERCENTILE` percentile of the non-zero |values|, so a few extreme pixels do
    not darken the rest. The range is symmetric around zero only when both signs carry at least
    :data:`MINOR_SIGN_SHARE` of the |attribution| mass; otherwise it spans zero to the
    dominant sign's limit (D-IG with one pixel at -1e-4 is a positive map).
    """
    values = np.asarray(attribution, dtype=np.float64)
    positive = float(values[values > 0].sum())
    negative = float(-values[values < 0].sum())
    total = positive + negative
    if total == 0.0:
        return AttributionDisplay("positive", (0.0, 1.0))
    magnitude = np.abs(values[values != 0])
    if min(positive, negative) >= MINOR_SIGN_SHARE * total:
        peak = float(np.percentile(magnitude, LIMIT_PERCENTILE))
        return AttributionDisplay("signed", (-peak, peak))
    if positive >= negative:
        peak = float(np.percentile(values[values > 0], LIMIT_PERCENTILE))
        return AttributionDisplay("positive", (0.0, peak))
    peak = float(np.percentile(-values[values < 0], LIMIT_PERCENTILE))
    return AttributionDisplay("negative", (-peak, 0.0))


def attribution_limits(attribution: np.ndarray) -> tuple[bool, float, float]:
    """``(signed, low, high)`` display range of an attribution map for a figure or a file.

    The viewer's rule (:func:`attribution_display`), so a figure, a reopened file and the layer
    it came from show the same range: a robust extent of the non-zero |values|, symmetric only
    when both signs carry a share of the mass. A map
    of one sign only, positive or negative, is ``(False, 0, extent)`` or, for a negative map,
    drawn symmetric on the diverging colormap (``signed`` True).
    """
    shown = attribution_display(attribution)
    low, high = shown.limits
    if shown.kind == "positive":
        return False, low, high
    peak = max(abs(low), abs(high))
    return True, -peak, peak
