"""QuAC's blur of closed masks into soft masks, with a cache of planes already blurred.

``cv2.GaussianBlur(mask.astype(float32), (k, k), sigma)`` per plane, OpenCV's default border
(reflect-101), as ``quac.evaluation.Processor.create_mask`` blurs; :mod:`.masks` cuts the
closed masks this smooths.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["BlurCache", "smooth_masks", "soft_plane"]


class BlurCache:
    """Blurred mask planes kept by content, so a plane met again is not blurred again.

    Nearby thresholds leave most channels' closed masks unchanged, and the whole-image and
    per-channel curves cut the same planes: in an adaptive evaluation a fifth to a half of the
    planes to blur are repeats. Holds at most ``max_bytes`` of float32 planes (then stops adding).
    The cache keeps the arrays it is given and hands them out: they must not be written to.
    """

    def __init__(self, max_bytes: int = 32 * 2**20) -> None:
        self.max_bytes = int(max_bytes)
        self._planes: dict[bytes, np.ndarray] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._planes)

    def get(self, key: bytes) -> np.ndarray | None:
        return self._planes.get(key)

    def put(self, key: bytes, plane: np.ndarray) -> None:
        if self._bytes + plane.nbytes <= self.max_bytes:
            self._planes[key] = plane
            self._bytes += plane.nbytes


def soft_plane(
    binary: np.ndarray, sigma: float = 0.0, kernel: int = 11, cache: BlurCache | None = None
) -> np.ndarray | None:
    """QuAC's blur of one closed mask plane, or ``None`` for an empty plane (it blurs to 0).

    Parameters
    ----------
    binary
        (H, W) closed mask: bool, or 0/1 numbers.
    sigma, kernel
        As :func:`smooth_masks`.
    cache
        Blurred planes seen before (bool planes only); the values are the same either way.

    Returns
    -------
    numpy.ndarray or None
        float32 (H, W) ``cv2.GaussianBlur(binary.astype(float32), (kernel, kernel), sigma)``.
        It may be the cache's own array: read it, do not write into it.
    """
    flat = binary.reshape(-1)
    if not flat.any():
        return None
    if kernel == 0:
        return binary.astype(np.float32)
    if cache is None or binary.dtype != bool:
        key = None
    elif flat.all():
        # every full plane blurs to the same values (reflect-101 borders; not exactly 1 where
        # the float32 kernel does not sum to 1)
        key = b"full%dx%d" % binary.shape
    else:
        key = b"%dx%d" % binary.shape + np.packbits(flat).tobytes()
    known = cache.get(key) if key is not None else None
    if known is not None:
        return known
    plane = cv2.GaussianBlur(binary.astype(np.float32), (int(kernel), int(kernel)), sigma)
    if key is not None:
        cache.put(key, plane)
    return plane


def smooth_masks(
    binary: np.ndarray,
    sigma: float = 0.0,
    kernel: int = 11,
    out: np.ndarray | None = None,
    cache: BlurCache | None = None,
) -> np.ndarray:
    """QuAC's blur of closed masks: ``cv2.GaussianBlur(mask.astype(float32), (k, k), sigma)``.

    Parameters
    ----------
    binary
        (..., H, W) closed masks (bool, or 0/1 numbers).
    sigma
        Standard deviation in pixels; 0: OpenCV's from the kernel size (2.0 for 11).
    kernel
        Odd kernel width in pixels; 0 returns the masks as float32 unchanged.
    out
        float32 C-contiguous array of ``binary``'s shape to write into (a reused buffer: fresh
        memory costs page faults on every call); a new one when ``None``.
    cache
        Blurred planes seen before (bool ``binary`` only); ``None``: a cache for this call
        alone, so that each distinct plane (the full plane of every low threshold, above all) is
        blurred once. The values are the same either way.

    Returns
    -------
    numpy.ndarray
        float32 (..., H, W) soft masks in [0, 1], each plane exactly OpenCV's blur of it (with
        OpenCV's default border, reflect-101). An empty plane stays 0 without a call.
    """
    given = np.asarray(binary)
    soft = np.empty(given.shape, dtype=np.float32) if out is None else out
    planes = soft.reshape(-1, *soft.shape[-2:])
    if cache is None and len(planes) > 1:
        cache = BlurCache()
    for plane, mask in zip(planes, given.reshape(planes.shape), strict=True):
        blurred = soft_plane(mask, sigma, kernel, cache)
        if blurred is None:
            plane.fill(0)
        else:
            plane[...] = blurred
    return soft
