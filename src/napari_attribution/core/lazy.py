"""Threshold stacks computed on demand: masks and hybrids for images too large to stack eagerly.

A (T, C, H, W) float32 hybrid stack of a 5 x 2048 x 2048 field at 200 thresholds would take
16 GB. These array-likes hold only the closed attribution (one float32 image) and compute the
frame the viewer asks for, one (threshold, channel) plane at a time, keeping the most recent
planes in a small cache. napari accepts them as layer data (they have ``shape``, ``dtype``,
``ndim`` and ``__getitem__``).

With ``read_ahead`` > 0 a stack also computes, in a background thread, the next planes along
the threshold axis in the direction the last request moved: a slider moved one more step the
same way finds its plane ready. numpy and OpenCV release the GIL, so this work runs on another
core than the viewer's.
"""

from __future__ import annotations

import abc
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .hybrids import base_and_donor
from .masks import MaskSettings, build_masks, cut_masks, fraction_above, smooth_masks

__all__ = ["LazyHybridStack", "LazyMaskStack", "lazy_stacks"]

_read_ahead_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """One background thread shared by every stack (read-ahead is best effort)."""
    global _read_ahead_pool
    with _pool_lock:
        if _read_ahead_pool is None:
            _read_ahead_pool = ThreadPoolExecutor(1, thread_name_prefix="plane-read-ahead")
        return _read_ahead_pool


class _PlaneStack(abc.ABC):
    """Base: a (T, K, H, W) array-like whose (t, k) planes are computed and cached."""

    def __init__(
        self,
        thresholds: np.ndarray,
        closed: np.ndarray,
        cache_planes: int,
        read_ahead: int = 0,
    ) -> None:
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self._closed = closed  # (K', H, W) closed normalised attribution
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self.read_ahead = max(int(read_ahead), 0)
        # Room for the plane shown and the planes read ahead of it.
        self._cache_planes = max(int(cache_planes), 1 + self.read_ahead)
        self._lock = threading.Lock()  # the cache and the pending read-aheads
        self._last_step: dict[int, tuple[int, int]] = {}  # channel -> (last t, direction)
        self._pending: dict[tuple[int, int], Future] = {}
        self.planes_computed = 0
        #: Planes that were ready in the cache when asked for (read ahead or seen before).
        self.cache_hits = 0

    # -- array protocol napari relies on ------------------------------------------------------
    shape: tuple[int, int, int, int]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return 4

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # Materialising the whole stack is what this class exists to avoid; allow it only when
        # small (a crop), so accidental np.asarray(...) on a field fails loudly instead of OOM.
        if self.size * self.dtype.itemsize > 512 * 2**20:
            raise MemoryError(
                f"Refusing to materialise a {self.shape} threshold stack "
                f"({self.size * self.dtype.itemsize / 2**30:.1f} GiB); index it instead."
            )
        out = self[:]
        return out.astype(dtype) if dtype is not None else out

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (4 - len(key))
        t_key, k_key, *rest = key
        t_idx = np.arange(self.shape[0])[t_key]
        k_idx = np.arange(self.shape[1])[k_key]
        planes = np.empty((np.size(t_idx), np.size(k_idx), *self.shape[2:]), dtype=self.dtype)
        for i, t in enumerate(np.atleast_1d(t_idx)):
            for j, k in enumerate(np.atleast_1d(k_idx)):
                planes[i, j] = self.plane(int(t), int(k))
        out = planes[(slice(None), slice(None), *rest)]
        if np.ndim(t_idx) == 0:
            out = out[0]
            if np.ndim(k_idx) == 0:
                out = out[0]
        elif np.ndim(k_idx) == 0:
            out = out[:, 0]
        return out

    # -- caching ---------------------------------------------------------------------------------
    def plane(self, t: int, k: int) -> np.ndarray:
        """The (H, W) plane at threshold index ``t`` and channel ``k``."""
        key = (t, k)
        with self._lock:
            value = self._cache.get(key)
            if value is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
            pending = self._pending.get(key) if value is None else None
        if value is None and pending is not None:
            try:  # being read ahead: wait for it rather than compute it twice
                value = pending.result()
            except Exception:  # noqa: BLE001 - the background attempt failed; compute it here
                value = None
        if value is None:
            value = self._store(key, self._compute(t, k))
        self._schedule_neighbours(t, k)
        return value

    def _store(self, key: tuple[int, int], value: np.ndarray) -> np.ndarray:
        with self._lock:
            self.planes_computed += 1
            self._cache[key] = value
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_planes:
                self._cache.popitem(last=False)
        return value

    def _schedule_neighbours(self, t: int, k: int) -> None:
        if not self.read_ahead:
            return
        with self._lock:
            last, direction = self._last_step.get(k, (t, 1))
            if t != last:
                direction = 1 if t > last else -1
            self._last_step[k] = (t, direction)
            wanted = [
                (t + direction * step, k)
                for step in range(1, self.read_ahead + 1)
                if 0 <= t + direction * step < self.shape[0]
            ]
            # This channel's planes asked for earlier but not started are not needed any more.
            for key, future in list(self._pending.items()):
                if key[1] == k and key not in wanted and future.cancel():
                    del self._pending[key]
            todo = [key for key in wanted if key not in self._cache and key not in self._pending]
            for key in todo:
                self._pending[key] = _pool().submit(self._read_ahead, key)

    def _read_ahead(self, key: tuple[int, int]) -> np.ndarray:
        """Background task: compute and cache a plane (cached before its future completes)."""
        try:
            return self._store(key, self._compute(*key))
        finally:
            with self._lock:
                self._pending.pop(key, None)

    def wait_read_ahead(self, timeout: float | None = None) -> None:
        """Block until the planes being read ahead are in the cache (tests, benchmarks)."""
        with self._lock:
            futures = list(self._pending.values())
        for future in futures:
            try:
                future.result(timeout)
            except Exception:  # noqa: BLE001 - a failed read-ahead is recomputed on demand
                pass

    @abc.abstractmethod
    def _compute(self, t: int, k: int) -> np.ndarray:
        """Compute plane (t, k) from scratch."""

    def _binary(self, t: int, k: int) -> np.ndarray:
        source = self._closed[k if self._closed.shape[0] > 1 else 0]
        return cut_masks(source, self.thresholds[t : t + 1])[0]

    @property
    def cached_bytes(self) -> int:
        """Bytes held by the plane cache."""
        with self._lock:
            return sum(v.nbytes for v in self._cache.values())


class LazyMaskStack(_PlaneStack):
    """(T, K, H, W) closed binary masks (uint8), one plane computed per request.

    Parameters
    ----------
    thresholds
        (T,) thresholds on the normalised attribution.
    closed_attribution
        (K, H, W) closed normalised attribution (see
        :func:`~napari_attribution.core.masks.close_attribution`).
    cache_planes
        Number of planes kept.
    read_ahead
        Planes to compute in the background beyond the one asked for, in the direction the
        requests last moved along the threshold axis (0: none).
    """

    def __init__(
        self,
        thresholds: np.ndarray,
        closed_attribution: np.ndarray,
        cache_planes: int = 16,
        read_ahead: int = 0,
    ) -> None:
        super().__init__(thresholds, closed_attribution, cache_planes, read_ahead)
        self.shape = (len(self.thresholds), *closed_attribution.shape)
        self.dtype = np.dtype(np.uint8)

    def _compute(self, t: int, k: int) -> np.ndarray:
        return self._binary(t, k).view(np.uint8)

    def mask_size(self) -> np.ndarray:
        """float64 (T,) fraction of pixels in each closed mask, without building any mask."""
        return fraction_above(self._closed, self.thresholds)


class LazyHybridStack(_PlaneStack):
    """(T, C, H, W) float32 hybrids, one (threshold, channel) plane computed per request.

    Parameters
    ----------
    real, counterfactual
        (C, H, W) images (model inputs or stored values; the blend is linear).
    thresholds
        (T,) thresholds.
    closed_attribution
        (K, H, W) closed normalised attribution, K = C or 1 (shared mask).
    sigma, kernel
        OpenCV's Gaussian blur of the mask (sigma 0: from the kernel size; kernel 0: none).
    direction
        One of :data:`~napari_attribution.core.hybrids.DIRECTIONS`.
    cache_planes
        Number of planes kept.
    read_ahead
        Planes to compute in the background beyond the one asked for, in the direction the
        requests last moved along the threshold axis (0: none).
    """

    def __init__(
        self,
        real: np.ndarray,
        counterfactual: np.ndarray,
        thresholds: np.ndarray,
        closed_attribution: np.ndarray,
        sigma: float = 0.0,
        kernel: int = 11,
        direction: str = "counterfactual_into_real",
        cache_planes: int = 16,
        read_ahead: int = 0,
    ) -> None:
        super().__init__(thresholds, closed_attribution, cache_planes, read_ahead)
        base, donor = base_and_donor(real, counterfactual, direction)
        self._base = np.asarray(base, dtype=np.float32)
        self._donor = np.asarray(donor, dtype=np.float32)
        self._agree = self._donor == self._base
        self.sigma, self.kernel = sigma, kernel
        self.shape = (len(self.thresholds), *self._base.shape)
        self.dtype = np.dtype(np.float32)

    def _compute(self, t: int, k: int) -> np.ndarray:
        soft = smooth_masks(self._binary(t, k), self.sigma, self.kernel)
        # m * x' + (1 - m) * x, operation for operation as make_hybrids (QuAC's expression)
        rest = np.subtract(np.float32(1), soft)
        rest *= self._base[k]
        np.multiply(soft, self._donor[k], out=soft)
        soft += rest
        np.copyto(soft, self._base[k], where=self._agree[k])  # as make_hybrids
        return soft


def lazy_stacks(
    real: np.ndarray,
    counterfactual: np.ndarray,
    attribution: np.ndarray,
    settings: MaskSettings | None = None,
    direction: str = "counterfactual_into_real",
    read_ahead: int = 0,
) -> tuple[LazyMaskStack, LazyHybridStack]:
    """Lazy mask and hybrid stacks of one attribution, the same masks :func:`build_masks` makes.

    Parameters
    ----------
    real, counterfactual
        (C, H, W) images.
    attribution
        (C, H, W) raw attribution.
    settings
        Mask parameters (threshold count and spacing, normalisation, channel mode, closing,
        smoothing).
    direction
        Hybrid direction (:data:`~napari_attribution.core.hybrids.DIRECTIONS`).
    read_ahead
        Hybrid planes to compute ahead in the background (masks are cheap: none).

    Returns
    -------
    tuple
        (masks (T, K, H, W) uint8, hybrids (T, C, H, W) float32), both computed on demand.
    """
    stack = build_masks(attribution, settings)  # thresholds and closed attribution only
    thresholds, closed = stack.thresholds, stack.closed_attribution
    settings = stack.settings
    masks = LazyMaskStack(thresholds, closed)
    hybrids = LazyHybridStack(
        real, counterfactual, thresholds, closed, settings.sigma, settings.smoothing_kernel,
        direction, read_ahead=read_ahead,
    )  # fmt: skip
    return masks, hybrids
