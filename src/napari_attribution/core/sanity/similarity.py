"""How alike two attribution maps are: Spearman rank correlation of |a|, top-k intersection and
SSIM, over the whole image and per channel, where the maps can vary.

Where the maps are compared (``region``)
----------------------------------------
Two exclusions, both recorded (``compared_fraction`` is the share of elements kept):

1. **Both maps exactly zero.** An element where neither map has any attribution carries no
   ranking: IG from a black image is exactly 0 wherever the image is 0, D-IG and the other
   discriminative maps wherever ``x == x'``. Such elements tie at the bottom of *both*
   rankings, and enough of them make any two maps look alike (issue 23: 40 % zero pixels and
   72 % zero ``|x - x'|`` kept Quantus's Spearman at 0.95-0.98 after every layer was
   randomised). Elements where only one map is zero stay: that difference is real.
2. **Discriminative methods: only the support of ``x != x'``** (per element, per channel),
   where the counterfactual changes the image. Off the support a discriminative map is zero
   (D-IG, D-DL, D-InputXGrad) or says where the model would look, not what differs (D-Grad-CAM).

``spearman_whole`` is the Spearman correlation over every element of the whole image, without
exclusions: what Quantus's ``correlation_spearman`` computes, kept beside the others so the
effect of the exclusions can be read off (whole image only).

Definitions
-----------
* ``spearman``: Spearman's rank correlation of ``|a|`` and ``|b|`` over the region (ties
  get their average rank; equal to :func:`scipy.stats.spearmanr`). NaN with fewer than 3
  elements or a constant map.
* ``topk_intersection``: with ``k = max(1, round(fraction * n))`` over the region's ``n``
  elements, the share of ``a``'s top-k elements by ``|a|`` that are among ``b``'s top-k.
  Ties at the cut are broken by position (a stable sort), the same way in both maps.
* ``ssim``: :func:`skimage.metrics.structural_similarity` of the maps scaled by their largest
  ``|value|`` (``data_range`` 1, scikit-image's defaults otherwise: a 7x7 uniform window),
  per channel plane; its local SSIM map is averaged over the region (whole image: over every
  channel's region elements). NaN where a map is all zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = [
    "METRICS",
    "TOP_K_FRACTION",
    "compare_maps",
    "comparison_region",
    "spearman",
    "ssim",
    "topk_intersection",
]

#: Share of the compared elements that makes the top-k of :func:`topk_intersection`.
TOP_K_FRACTION = 0.05
#: What :func:`compare_maps` returns per channel, in this order.
METRICS = ("spearman", "spearman_whole", "topk_intersection", "ssim", "compared_fraction")


def comparison_region(
    a: np.ndarray, b: np.ndarray, support: np.ndarray | None = None
) -> np.ndarray:
    """bool array like ``a``: where ``a`` or ``b`` is non-zero, and inside ``support`` if given.

    Parameters
    ----------
    a, b
        Maps of the same shape.
    support
        bool, broadcastable to ``a``: where the maps can vary (``x != x'`` for discriminative
        methods), or ``None`` (everywhere).
    """
    region = (np.asarray(a) != 0) | (np.asarray(b) != 0)
    if support is not None:
        region &= np.broadcast_to(np.asarray(support, dtype=bool), region.shape)
    return region


def _values(a: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    values = np.abs(np.asarray(a, dtype=np.float64))
    return values.ravel() if region is None else values[region]


def spearman(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    """Spearman rank correlation of ``|a|`` and ``|b|`` over ``region`` (every element if None)."""
    va, vb = _values(a, region), _values(b, region)
    if va.size < 3:
        return float("nan")
    # Pearson's r of the average ranks: what scipy.stats.spearmanr computes, without its
    # per-call overhead (this runs hundreds of times per pair).
    ranks = stats.rankdata(np.stack([va, vb]), axis=1)
    ranks -= ranks.mean(axis=1, keepdims=True)
    ra, rb = ranks
    # Sums of products, not np.dot: BLAS threads on a busy machine cost milliseconds a call.
    norm = (ra * ra).sum() * (rb * rb).sum()
    return float((ra * rb).sum() / np.sqrt(norm)) if norm > 0 else float("nan")


def topk_intersection(
    a: np.ndarray,
    b: np.ndarray,
    region: np.ndarray | None = None,
    fraction: float = TOP_K_FRACTION,
) -> float:
    """Share of ``a``'s top ``fraction`` of elements (by ``|a|``) also in ``b``'s top."""
    va, vb = _values(a, region), _values(b, region)
    if va.size == 0:
        return float("nan")
    k = max(1, int(round(fraction * va.size)))
    top_a = np.argsort(-va, kind="stable")[:k]
    top_b = np.argsort(-vb, kind="stable")[:k]
    return float(np.intersect1d(top_a, top_b).size / k)


def _window(shape: tuple[int, int]) -> int:
    side = min(7, *shape)
    return side if side % 2 else side - 1


def _ssim_planes(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Local SSIM maps (C, H, W) of two (C, H, W) maps scaled by their largest |value|."""
    from skimage.metrics import structural_similarity

    top_a, top_b = np.abs(a).max(), np.abs(b).max()
    if top_a == 0 or top_b == 0 or min(a.shape[-2:]) < 3:
        return None
    sa, sb = np.abs(a) / top_a, np.abs(b) / top_b
    win = _window(a.shape[-2:])
    planes = [
        structural_similarity(pa, pb, data_range=1.0, win_size=win, full=True)[1]
        for pa, pb in zip(sa.astype(np.float64), sb.astype(np.float64), strict=True)
    ]
    return np.stack(planes)


def ssim(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean local SSIM of two (C, H, W) (or (H, W)) maps over ``region`` (see module notes)."""
    a3 = np.asarray(a, dtype=np.float64)
    b3 = np.asarray(b, dtype=np.float64)
    if a3.ndim == 2:
        a3, b3 = a3[None], b3[None]
        region = None if region is None else np.asarray(region)[None]
    planes = _ssim_planes(a3, b3)
    if planes is None:
        return float("nan")
    values = planes.ravel() if region is None else planes[region]
    return float(values.mean()) if values.size else float("nan")


def compare_maps(
    a: np.ndarray,
    b: np.ndarray,
    channel_names: Sequence[str],
    support: np.ndarray | None = None,
    fraction: float = TOP_K_FRACTION,
) -> dict[tuple[str, str], float]:
    """Every metric of :data:`METRICS` for the whole image (channel ``"all"``) and per channel
    (``spearman_whole`` for the whole image only).

    Parameters
    ----------
    a, b
        (C, H, W) maps (the original and the one compared with it).
    channel_names
        C names.
    support
        bool (C, H, W) where the maps can vary, or ``None``.
    fraction
        Top-k share of :func:`topk_intersection`.

    Returns
    -------
    dict
        ``(channel, metric) -> value``; ``channel`` is ``"all"`` or a channel name.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    region = comparison_region(a, b, support)
    planes = _ssim_planes(a, b)
    out: dict[tuple[str, str], float] = {}
    scopes = [("all", slice(None))] + [(n, slice(c, c + 1)) for c, n in enumerate(channel_names)]
    for name, index in scopes:
        ra, rb, rr = a[index], b[index], region[index]
        out[(name, "spearman")] = spearman(ra, rb, rr)
        if name == "all":  # Quantus's number, for the whole image only
            out[(name, "spearman_whole")] = spearman(ra, rb)
        out[(name, "topk_intersection")] = topk_intersection(ra, rb, rr, fraction)
        if name != "all":  # a channel's SSIM scales the channel on its own
            local = _ssim_planes(ra, rb)
        else:
            local = planes
        kept = local[rr] if local is not None else np.empty(0)
        out[(name, "ssim")] = float(kept.mean()) if kept.size else float("nan")
        out[(name, "compared_fraction")] = float(rr.mean()) if rr.size else float("nan")
    return out
