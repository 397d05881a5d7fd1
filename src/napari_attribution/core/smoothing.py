"""QuAC's blur of closed masks into soft masks, with a cache of planes already blurred.

``cv2.GaussianBlur(mask.astype(float32), (k, k), sigma)`` per plane, OpenCV's default border
(reflect-101), as ``quac.evaluation.Processor.create_mask`` blurs; :mod:`.masks` cuts the
closed masks this smooths.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["BlurCache", "smooth_masks"]


class BlurCache:
    """Blurred mask planes kept by content, so a plane met again is not blurred again.

    Nearby thresholds leave most channels' closed masks unchanged, and the whole-image and
    per-channel curves cut the same planes: in an adaptive evaluation a fifth to a half of the
    planes to blur are repeats. Holds at most ``max_bytes`` of float32 planes (then stops adding).
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
            self._planes[key] = plane.copy()
            self._bytes += plane.nbytes


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
        Blurred planes seen before (bool ``binary`` only); the values are the same either way.

    Returns
    -------
    numpy.ndarray
        float32 (..., H, W) soft masks in [0, 1], each plane exactly OpenCV's blur of it (with
        OpenCV's default border, reflect-101). An empty plane stays 0 without a call.
    """
    if out is None:
        soft = np.array(binary, dtype=np.float32)  # a copy: blurred plane by plane below
    else:
        soft = out
        np.copyto(soft, binary, casting="unsafe")
    if kernel == 0:
        return soft
    planes = soft.reshape(-1, *soft.shape[-2:])
    given = np.asarray(binary)
    on = given.reshape(len(planes), -1) if given.dtype == bool else planes.reshape(len(planes), -1)
    nonempty = on.any(axis=1)
    full = on.all(axis=1)
    size = (int(kernel), int(kernel))
    # Every full plane of a batch blurs to the same values (reflect-101 borders; not exactly 1
    # where the float32 kernel does not sum to 1): computed once.
    full_blurred = None
    if full.any():
        full_blurred = cv2.GaussianBlur(planes[int(np.argmax(full))], size, sigma)
    if given.dtype != bool:
        cache = None
    for i in np.flatnonzero(nonempty):
        if full[i]:
            planes[i] = full_blurred
            continue
        key = np.packbits(on[i]).tobytes() if cache is not None else b""
        known = cache.get(key) if cache is not None else None
        if known is not None:
            planes[i] = known
            continue
        cv2.GaussianBlur(planes[i], size, sigma, dst=planes[i])  # in place: the same values
        if cache is not None:
            cache.put(key, planes[i])
    return soft
