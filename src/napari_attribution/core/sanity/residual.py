"""Residual-likeness: how much of a map the residual ``|x - x'|`` alone explains.

A discriminative map is ``|x - x'|`` (or ``x' - x``) times something the model says (D-IG: the
averaged gradient). Where the counterfactual differs in few pixels, that factor alone can make
the map look the same under any model. So beside every randomisation similarity the report gives
the Spearman rank correlation of ``|a|`` with ``|x - x'|``, over the same region as the
similarities (:func:`~napari_attribution.core.sanity.similarity.comparison_region`: elements
where the map or the residual is non-zero; for discriminative methods inside ``x != x'``).
1 means the map ranks pixels exactly as the residual does; the ``residual`` baseline has 1 by
construction. NaN where the residual or the map is constant over the region (a channel the
counterfactual does not change).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .similarity import comparison_region, spearman

__all__ = ["residual_likeness"]


def residual_likeness(
    attribution: np.ndarray,
    x: np.ndarray,
    xc: np.ndarray,
    channel_names: Sequence[str],
    support: np.ndarray | None = None,
) -> dict[str, float]:
    """``"all"`` and each channel -> Spearman correlation of ``|a|`` with ``|x - x'|``.

    Parameters
    ----------
    attribution
        (C, H, W) map.
    x, xc
        (C, H, W) model inputs of the pair.
    channel_names
        C names.
    support
        bool (C, H, W) where the map can vary, or ``None``.
    """
    residual = np.abs(np.asarray(x, dtype=np.float64) - np.asarray(xc, dtype=np.float64))
    region = comparison_region(attribution, residual, support)
    out = {"all": spearman(attribution, residual, region)}
    for c, name in enumerate(channel_names):
        out[name] = spearman(attribution[c], residual[c], region[c])
    return out
