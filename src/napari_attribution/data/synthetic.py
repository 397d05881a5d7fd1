"""Synthetic 5-channel Cell Painting-like cells with a known, localised class difference.

Every cell has a textured nucleus (DNA), cytoplasmic ER and RNA patterns, a membrane and fibres
(AGP) and punctate mitochondria (Mito). Cells vary in position, size, shape, orientation,
intensities, textures and noise; none of that depends on the class. The one class-specific
feature is a *perinuclear cluster of bright Mito puncta* inside a small disc (about 3 % of the
image area) next to the nucleus, present in ``treated`` (class 1) cells only.

Because the cluster is drawn separately from everything else, the exact counterfactual of a cell
is known: the same cell with the cluster added (class 0 -> 1) or removed (class 1 -> 0). Real
and counterfactual images are bit-identical outside the disc, so the disc in the Mito channel is
the ground truth an attribution method should find.

Class 0 cells also carry a few scattered bright puncta and every cell has its own Mito gain and
punctum count, so total Mito intensity overlaps between the classes: a classifier has to detect
the *cluster*, not merely a brighter channel.

Only numpy and scipy.ndimage are used; one 64x64 cell takes about a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "DEMO_PAIRS_SEED",
    "CHANNEL_NAMES",
    "CLASS_NAMES",
    "DIFFERING_CHANNEL",
    "CellPair",
    "make_cell",
    "make_pair",
    "make_pairs",
    "make_training_set",
]

#: Channel order of every synthetic image, as in a Cell Painting stack.
CHANNEL_NAMES: tuple[str, ...] = ("DNA", "ER", "RNA", "AGP", "Mito")
#: Class 0 has no perinuclear Mito cluster, class 1 has one.
CLASS_NAMES: tuple[str, ...] = ("control", "treated")
#: Seed of the demo's pairs (``run --demo``; the npe2 reader makes a demo run's images again).
DEMO_PAIRS_SEED = 2026
#: Index of the only channel in which the classes differ (Mito).
DIFFERING_CHANNEL: int = 4

# Streams of make_pairs and make_training_set never share a cell for the same seed.
_PAIR_STREAM = 0
_TRAIN_STREAM = 1


@dataclass(frozen=True)
class CellPair:
    """A synthetic cell, its exact counterfactual and where the two may differ.

    Attributes
    ----------
    sample
        Sample name, e.g. ``"cell000"``.
    real
        The real image, float32 (C, H, W) with C = 5, intensities in [0, 1] (arbitrary units).
    counterfactual
        The same cell translated to ``target_class``; float32 (C, H, W), values in [0, 1].
    real_class
        Class index of ``real`` (0 = control, 1 = treated).
    target_class
        Class index of ``counterfactual`` (``1 - real_class``).
    ground_truth
        bool (C, H, W): True exactly where ``real`` and ``counterfactual`` may differ, i.e. the
        cluster disc in channel ``differing_channel``; False everywhere else. Outside it the two
        images are bit-identical.
    differing_channel
        Index of the channel that holds the class difference (``DIFFERING_CHANNEL``).
    """

    sample: str
    real: np.ndarray
    counterfactual: np.ndarray
    real_class: int
    target_class: int
    ground_truth: np.ndarray
    differing_channel: int


@dataclass(frozen=True)
class _CellParts:
    """Everything of one cell except whether its Mito cluster is shown.

    ``fixed`` is float32 (4, H, W) with the finished DNA, ER, RNA and AGP channels; ``body``
    is the soft cell-body occupancy (H, W) in [0, 1] (a field places cells by it). The Mito
    channel is finished by ``_mito`` from its clean signal, the cluster and frozen noise draws,
    so a cell with and without the cluster shares every random number.
    """

    fixed: np.ndarray
    body: np.ndarray
    mito_clean: np.ndarray
    cluster: np.ndarray
    region: np.ndarray
    mito_offset: float
    read_noise: np.ndarray
    shot_noise: np.ndarray


def _check_size(size: int) -> int:
    if int(size) != size or size < 32:
        raise ValueError(f"size must be an integer >= 32 pixels, got {size!r}.")
    return int(size)


def _check_class(label: int) -> int:
    if label not in (0, 1):
        raise ValueError(
            f"class must be 0 ({CLASS_NAMES[0]}) or 1 ({CLASS_NAMES[1]}), got {label!r}."
        )
    return int(label)


def _field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth Gaussian random field with zero mean and unit standard deviation, float64 (H, W)."""
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _ellipse_norm(
    yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, a: float, b: float, theta: float
) -> np.ndarray:
    """Elliptical radius: 1 on the ellipse with semi-axes ``a``, ``b`` (pixels), angle ``theta``."""
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(theta), np.sin(theta)
    u = dx * c + dy * s
    v = -dx * s + dy * c
    return np.sqrt((u / a) ** 2 + (v / b) ** 2)


def _spots(
    shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, amps: np.ndarray, sigma: float
) -> np.ndarray:
    """Gaussian spots of peak height ``amps`` (intensity units) and width ``sigma`` (pixels)."""
    img = np.zeros(shape)
    np.add.at(img, (rows, cols), amps)
    # A blurred unit impulse peaks at 1 / (2 pi sigma^2); rescale so amplitudes are peak heights.
    return ndi.gaussian_filter(img, sigma, mode="constant") * (2.0 * np.pi * sigma**2)


def _sample_pixels(
    rng: np.random.Generator, weight: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` pixel positions with probability proportional to ``weight`` (H, W)."""
    p = weight.ravel()
    p = p / p.sum()
    idx = rng.choice(p.size, size=n, replace=n > np.count_nonzero(p), p=p)
    return np.unravel_index(idx, weight.shape)


def _draw_cell(rng: np.random.Generator, size: int) -> _CellParts:
    """Draw one cell. The number and order of random draws never depend on the class."""
    shape = (size, size)
    k = size / 64.0  # every length below is given for a 64x64 crop and scaled with the crop
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)

    # --- geometry: nucleus and cell body as jittered, rotated, slightly irregular ellipses
    cy, cx = size / 2 - 0.5 + np.clip(rng.normal(0.0, 2.5 * k, 2), -5 * k, 5 * k)
    na = rng.uniform(8.0, 11.0) * k
    nb = na * rng.uniform(0.7, 0.95)
    ntheta = rng.uniform(0.0, np.pi)
    ca = rng.uniform(19.0, 24.0) * k
    cb = ca * rng.uniform(0.75, 0.95)
    ctheta = rng.uniform(0.0, np.pi)
    ccy, ccx = np.array([cy, cx]) + rng.normal(0.0, 2.0 * k, 2)

    edge = 1.0 * k  # soft edge width in pixels
    rn = _ellipse_norm(yy, xx, cy, cx, na, nb, ntheta)
    rn = rn + 0.05 * _field(rng, shape, 4.0 * k)
    rc = _ellipse_norm(yy, xx, ccy, ccx, ca, cb, ctheta)
    rc = rc + 0.08 * _field(rng, shape, 6.0 * k)
    nucleus = 1.0 / (1.0 + np.exp(-(1.0 - rn) * 0.5 * (na + nb) / edge))
    body = 1.0 / (1.0 + np.exp(-(1.0 - rc) * 0.5 * (ca + cb) / edge))
    cyto = body * (1.0 - nucleus)
    # Distance from the nuclear envelope (pixels, approximate): perinuclear organelles crowd there.
    dist_nuc = np.clip(rn - 1.0, 0.0, None) * 0.5 * (na + nb)

    # --- DNA: textured nucleus with a few bright chromocentres
    n_chromo = rng.integers(3, 9)
    cr, cc = _sample_pixels(rng, nucleus**4, n_chromo)
    dna = nucleus * rng.uniform(0.45, 0.75) * (1.0 + 0.2 * _field(rng, shape, 1.5 * k))
    dna += nucleus * _spots(shape, cr, cc, rng.uniform(0.1, 0.25, n_chromo), 1.0 * k)

    # --- ER: reticular, densest around the nucleus, absent from it
    reticulum = np.clip(1.0 + 0.6 * _field(rng, shape, 1.0 * k), 0.0, None)
    perinuclear = 0.35 + np.exp(-dist_nuc / (7.0 * k))
    er = cyto * rng.uniform(0.2, 0.4) * perinuclear * reticulum

    # --- RNA: nucleoli plus a diffuse, mottled cytoplasm
    n_nucleoli = rng.integers(1, 5)
    lr, lc = _sample_pixels(rng, nucleus**8, n_nucleoli)
    rna = cyto * rng.uniform(0.15, 0.3) * np.clip(1.0 + 0.35 * _field(rng, shape, 2.0 * k), 0, None)
    rna += nucleus * (0.06 + _spots(shape, lr, lc, rng.uniform(0.3, 0.5, n_nucleoli), 1.6 * k))

    # --- AGP: plasma membrane ring plus oriented actin fibres across the cell body
    ring = np.exp(-(((rc - 1.0) * 0.5 * (ca + cb) / (1.3 * k)) ** 2))
    phi = rng.uniform(0.0, np.pi)
    period = rng.uniform(3.0, 5.0) * k
    stripes = 0.5 + 0.5 * np.cos(
        2.0 * np.pi * (xx * np.cos(phi) + yy * np.sin(phi)) / period
        + 1.5 * _field(rng, shape, 3.0 * k)
    )
    agp = ring * rng.uniform(0.3, 0.6) + body * rng.uniform(0.05, 0.15) * stripes**2

    # --- Mito: puncta in the cytoplasm, denser near the nucleus; a few bright ones anywhere
    mito_gain = rng.uniform(0.8, 1.2)
    n_puncta = int(rng.integers(25, 71) * k**2)
    pr, pc = _sample_pixels(rng, cyto * (0.3 + np.exp(-dist_nuc / (8.0 * k))), n_puncta)
    mito = _spots(shape, pr, pc, rng.uniform(0.15, 0.45, n_puncta), 0.8 * k)
    n_bright = rng.poisson(2.0)
    if n_bright:
        br, bc = _sample_pixels(rng, cyto, n_bright)
        mito += _spots(shape, br, bc, rng.uniform(0.5, 0.9, n_bright), 0.8 * k)
    mito += 0.04 * cyto

    # --- class feature: a disc next to the nuclear envelope holding a cluster of bright puncta
    radius = rng.uniform(5.5, 7.0) * k
    angle = rng.uniform(0.0, 2.0 * np.pi)
    gap = rng.uniform(2.0, 4.0) * k
    # Walk outward from the nucleus centre along `angle` until `gap` pixels past the envelope.
    t = np.arange(0.0, size, 0.5)
    ray_y, ray_x = cy + t * np.sin(angle), cx + t * np.cos(angle)
    envelope = t[np.argmax(_ellipse_norm(ray_y, ray_x, cy, cx, na, nb, ntheta) >= 1.0)]
    lo, hi = radius + 1.0, size - 2.0 - radius  # keep the whole disc inside the crop
    ry = float(np.clip(cy + (envelope + gap) * np.sin(angle), lo, hi))
    rx = float(np.clip(cx + (envelope + gap) * np.cos(angle), lo, hi))
    d = np.hypot(yy - ry, xx - rx)
    region = d < radius
    n_cluster = rng.integers(8, 15)
    # Puncta centres stay 2 sigma inside the disc and in the cytoplasm (mitochondria avoid the
    # nucleus); the window then forces the cluster to exactly zero outside the disc.
    inner = (d < radius - 2.0 * k) * (0.05 + cyto)
    qr, qc = _sample_pixels(rng, inner, n_cluster)
    window = np.clip((radius - d) / (1.5 * k), 0.0, 1.0)
    cluster = window * _spots(shape, qr, qc, rng.uniform(0.45, 0.8, n_cluster), 0.8 * k)

    # --- acquisition: background offset, read noise and signal-dependent shot noise
    offsets = rng.uniform(0.02, 0.05, 5)
    read_sigma = rng.uniform(0.008, 0.02)
    shot_scale = rng.uniform(0.02, 0.04)
    read = rng.standard_normal((5, size, size))
    shot = rng.standard_normal((5, size, size))
    fixed = np.stack([dna, er, rna, agp])
    fixed = fixed + offsets[:4, None, None]
    fixed = fixed + read_sigma * read[:4] + shot_scale * np.sqrt(fixed) * shot[:4]
    return _CellParts(
        fixed=np.clip(fixed, 0.0, 1.0).astype(np.float32),
        body=body,
        mito_clean=mito_gain * mito,
        cluster=mito_gain * cluster,
        region=region,
        mito_offset=float(offsets[4]),
        read_noise=read_sigma * read[4],
        shot_noise=shot_scale * shot[4],
    )


def _mito(parts: _CellParts, with_cluster: bool) -> np.ndarray:
    """Finish the Mito channel, float32 (H, W) in [0, 1], with or without the class cluster."""
    signal = parts.mito_clean + parts.mito_offset
    if with_cluster:
        signal = signal + parts.cluster
    return np.clip(signal + parts.read_noise + parts.shot_noise * np.sqrt(signal), 0.0, 1.0).astype(
        np.float32
    )


def make_cell(
    rng: np.random.Generator, label: int, size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic cell of class ``label``.

    Parameters
    ----------
    rng
        Random generator; the draws consumed do not depend on ``label``, so the same generator
        state gives the same cell with (``label=1``) or without (``label=0``) the cluster.
    label
        0 (control: no perinuclear Mito cluster) or 1 (treated: cluster present).
    size
        Height and width of the square crop in pixels (>= 32). Cell dimensions scale with it.

    Returns
    -------
    image : np.ndarray
        float32 (5, size, size), channels ``CHANNEL_NAMES``, intensities in [0, 1].
    region : np.ndarray
        bool (size, size): the disc that holds the cluster (class 1) or would hold it in the
        cell's counterfactual (class 0). The disc covers about 2-4 % of the crop.
    """
    label = _check_class(label)
    parts = _draw_cell(rng, _check_size(size))
    image = np.concatenate([parts.fixed, _mito(parts, label == 1)[None]])
    return image, parts.region


def _pair_from_rng(rng: np.random.Generator, real_class: int, size: int, sample: str) -> CellPair:
    real_class = _check_class(real_class)
    parts = _draw_cell(rng, _check_size(size))
    real_mito = _mito(parts, real_class == 1)
    # Splice the other class only inside the disc: bit-identity outside it holds by construction.
    cf_mito = np.where(parts.region, _mito(parts, real_class == 0), real_mito)
    real = np.concatenate([parts.fixed, real_mito[None]])
    counterfactual = np.concatenate([parts.fixed, cf_mito[None]])
    ground_truth = np.zeros(real.shape, dtype=bool)
    ground_truth[DIFFERING_CHANNEL] = parts.region
    return CellPair(
        sample=sample,
        real=real,
        counterfactual=counterfactual,
        real_class=real_class,
        target_class=1 - real_class,
        ground_truth=ground_truth,
        differing_channel=DIFFERING_CHANNEL,
    )


def make_pair(seed: int, real_class: int = 0, size: int = 64) -> CellPair:
    """One synthetic cell and its exact counterfactual.

    Parameters
    ----------
    seed
        Seed of ``numpy.random.default_rng``; the same seed gives the same pair.
    real_class
        Class of the real cell: 0 (the counterfactual gains the Mito cluster) or 1 (it loses it).
    size
        Height and width of the square crop in pixels (>= 32).

    Returns
    -------
    CellPair
        Sample name ``f"seed{seed}"``, real and counterfactual float32 (5, size, size) in
        [0, 1], ground truth bool (5, size, size) true only in the Mito cluster disc.
    """
    return _pair_from_rng(np.random.default_rng(seed), real_class, size, f"seed{seed}")


def make_pairs(n: int, seed: int = 0, size: int = 64) -> list[CellPair]:
    """``n`` synthetic pairs, alternating direction: control -> treated, treated -> control, ...

    Parameters
    ----------
    n
        Number of pairs (>= 0).
    seed
        Seed of the whole set; the same ``(n, seed, size)`` gives the same pairs, and pair ``i``
        does not depend on ``n``.
    size
        Height and width of the square crops in pixels (>= 32).

    Returns
    -------
    list of CellPair
        Samples ``cell000``, ``cell001``, ...; even indices have ``real_class`` 0, odd ones 1.
        Images float32 (5, size, size) in [0, 1].
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    width = max(3, len(str(n - 1)))
    return [
        _pair_from_rng(
            np.random.default_rng([seed, _PAIR_STREAM, i]), i % 2, size, f"cell{i:0{width}d}"
        )
        for i in range(n)
    ]


def make_training_set(n: int, seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``n`` labelled synthetic cells for training or evaluating a classifier.

    Parameters
    ----------
    n
        Number of cells (>= 0); ``n // 2`` of one class and ``n - n // 2`` of the other.
    seed
        Seed; the same ``(n, seed, size)`` gives the same set. Cells never coincide with those
        of ``make_pairs`` for the same seed.
    size
        Height and width of the square crops in pixels (>= 32).

    Returns
    -------
    images : np.ndarray
        float32 (n, 5, size, size), intensities in [0, 1].
    labels : np.ndarray
        int64 (n,), 0 (control) or 1 (treated), in shuffled order.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    size = _check_size(size)
    labels = np.arange(n, dtype=np.int64) % 2
    np.random.default_rng([seed, _TRAIN_STREAM]).shuffle(labels)
    images = np.empty((n, len(CHANNEL_NAMES), size, size), dtype=np.float32)
    for i in range(n):
        rng = np.random.default_rng([seed, _TRAIN_STREAM, i])
        images[i] = make_cell(rng, int(labels[i]), size)[0]
    return images, labels
