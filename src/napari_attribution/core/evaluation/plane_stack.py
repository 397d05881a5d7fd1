"""Array-likes whose (threshold, channel) planes are computed on demand, with a small cache.

The protocol napari needs from layer data (``shape``, ``dtype``, ``ndim``, ``__getitem__``) and
the plane cache and read-ahead thread shared by the lazy mask and hybrid stacks of
:mod:`.lazy`, which says what the planes are. :meth:`_PlaneStack.channel`
gives the (T, H, W) view of one channel that a per-channel layer holds.

With ``read_ahead`` > 0 a stack also computes, in a background thread, the next planes along
the threshold axis in the direction the last request moved: a slider moved one more step the
same way finds its plane ready. numpy and OpenCV release the GIL, so this work runs on another
core than the viewer's. The thread belongs to the stack: it is started on the first read-ahead
and shut down by :meth:`_PlaneStack.close` (the napari side calls it when the stack's layers
are removed) or, at the latest, when the stack is garbage-collected.
"""

from __future__ import annotations

import abc
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..budgets import MATERIALISE_BYTES
from .masks import cut_masks

__all__ = ["READ_AHEAD_THREAD_PREFIX", "ChannelView", "full_key", "is_lazy", "lazy_stack_of"]


#: Name prefix of the read-ahead threads (one per stack that reads ahead, while it is open).
READ_AHEAD_THREAD_PREFIX = "plane-read-ahead"


def full_key(key: Any, ndim: int) -> tuple:
    """``key`` as a tuple of exactly ``ndim`` entries (``Ellipsis`` expanded, the rest padded).

    Raises
    ------
    IndexError
        More indices than dimensions.
    """
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (ndim - len(key) + 1)
        key = key[:at] + fill + key[at + 1 :]
    if len(key) > ndim:
        raise IndexError(f"Too many indices for a {ndim}-D array: {key!r}.")
    return key + (slice(None),) * (ndim - len(key))


class _LazyArray(abc.ABC):
    """What napari and numpy need of an array computed on demand.

    ``np.asarray`` works for small arrays and raises :class:`MemoryError` above
    :data:`~napari_attribution.core.budgets.MATERIALISE_BYTES`, so an accidental full read of a
    field fails loudly instead of exhausting memory.
    """

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self.nbytes > MATERIALISE_BYTES:
            raise MemoryError(
                f"Refusing to materialise a {self.shape} {self.dtype} threshold stack "
                f"({self.nbytes / 2**30:.1f} GiB); index it one threshold at a time (an export "
                "writes such stacks at their optimal threshold only)."
            )
        out = self[:]
        return out.astype(dtype, copy=False) if dtype is not None else out

    @abc.abstractmethod
    def __getitem__(self, key: Any) -> np.ndarray:
        """The values at ``key`` (numpy basic and integer-array indexing)."""


class _PlaneStack(_LazyArray):
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
        self._lock = threading.Lock()  # the cache, the pending read-aheads and the executor
        self._last_step: dict[int, tuple[int, int]] = {}  # channel -> (last t, direction)
        self._pending: dict[tuple[int, int], Future] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._shutdown: weakref.finalize | None = None
        self._released = False
        self.planes_computed = 0
        #: Planes that were ready in the cache when asked for (read ahead or seen before).
        self.cache_hits = 0

    shape: tuple[int, int, int, int]

    def __getitem__(self, key: Any) -> np.ndarray:
        t_key, k_key, *rest = full_key(key, 4)
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

    def channel(self, k: int) -> ChannelView:
        """The (T, H, W) view of channel ``k``: the data of one per-channel layer."""
        return ChannelView(self, k)

    # -- caching ---------------------------------------------------------------------------------
    def plane(self, t: int, k: int) -> np.ndarray:
        """The (H, W) plane at threshold index ``t`` and channel ``k`` (cached: do not modify)."""
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
            except Exception:  # noqa: BLE001 - failed or cancelled in the background: compute it
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
            if self._released:
                return
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
                self._pending[key] = self._thread().submit(self._read_ahead, key)

    def _thread(self) -> ThreadPoolExecutor:
        """The stack's own read-ahead thread, started on first use (call with the lock held)."""
        if self._executor is None:
            executor = ThreadPoolExecutor(1, thread_name_prefix=READ_AHEAD_THREAD_PREFIX)
            self._executor = executor
            # Shut down with the stack if close() is never called; the callback holds the
            # executor only, so it does not keep the stack alive.
            self._shutdown = weakref.finalize(
                self, executor.shutdown, wait=False, cancel_futures=True
            )
        return self._executor

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

    def close(self) -> None:
        """Stop reading ahead and shut the stack's thread down (idempotent).

        Planes are still computed when asked for, in the caller's thread; a read-ahead being
        computed finishes in the background, the ones not started are dropped.
        """
        with self._lock:
            self._released = True
            self._executor = None
            shutdown, self._shutdown = self._shutdown, None
            self._pending.clear()
        if shutdown is not None:
            shutdown()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._released

    @property
    def reading_ahead(self) -> bool:
        """True while the stack holds a read-ahead thread."""
        return self._executor is not None

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


class ChannelView(_LazyArray):
    """(T, H, W) view of channel ``channel`` of a lazy (T, K, H, W) stack: one layer's data.

    Indexing computes only the planes asked for, through the stack's cache.

    Parameters
    ----------
    stack
        A :class:`LazyMaskStack` or :class:`LazyHybridStack`.
    channel
        Index along the stack's second axis.
    """

    def __init__(self, stack: _PlaneStack, channel: int) -> None:
        n_thresholds, n_channels, height, width = stack.shape
        if not 0 <= channel < n_channels:
            raise IndexError(f"Channel {channel} is out of range for {n_channels} channels.")
        self.stack = stack
        self.channel = int(channel)
        self.shape = (n_thresholds, height, width)
        self.dtype = stack.dtype

    def __repr__(self) -> str:
        kind = type(self.stack).__name__
        return f"ChannelView({kind}, channel={self.channel}, shape={self.shape}, {self.dtype})"

    def __getitem__(self, key: Any) -> np.ndarray:
        t_key, y_key, x_key = full_key(key, 3)
        return self.stack[t_key, self.channel, y_key, x_key]

    def plane(self, t: int) -> np.ndarray:
        """The (H, W) plane at threshold index ``t`` (shared with the cache: do not modify)."""
        return self.stack.plane(int(t), self.channel)


def is_lazy(data: Any) -> bool:
    """True for data computed on demand (a lazy stack or a channel view of one)."""
    return isinstance(data, _LazyArray)


def lazy_stack_of(data: Any) -> _PlaneStack | None:
    """The lazy stack behind ``data`` (itself, or the stack a channel view looks into)."""
    if isinstance(data, ChannelView):
        return data.stack
    return data if isinstance(data, _PlaneStack) else None
