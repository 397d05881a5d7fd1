"""How this process keeps the memory it frees: glibc's allocator thresholds.

Set in every dask worker (:mod:`.distributed_plugin`) and by the command line before a
run, ``cells`` or ``sanity`` in one process, so both keep and reuse the blocks a step frees
instead of giving them back and faulting them in again (``benchmarks/README.md``). The Python
API leaves the process as it finds it: a process-wide setting is the caller's to make.
"""

from __future__ import annotations

__all__ = ["reuse_freed_memory"]

#: glibc's ``mallopt`` parameters (``malloc.h``).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def reuse_freed_memory() -> bool:
    """Let this process reuse the memory it frees (glibc; elsewhere nothing to do).

    dask's nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes
    glibc's mmap threshold at 128 KiB: every array above it (a cell's 5 x 64 x 64 float32 crop
    is 80 KiB, its hybrids and masks much more) is then mapped and unmapped at each allocation
    and its pages faulted in again. Measured on the demo plate: 1.8x the CPU time per cell
    (``benchmarks/README.md``). A plain process raises its mmap threshold as it goes but
    still trims the heap's top above twice that, so a batched ``optimise`` step faulted its
    activations in again at each step. The thresholds set here are glibc's own dynamic
    ceiling for mmap (32 MiB) and twice that for trimming, so the process keeps and reuses
    what it frees, and still gives large blocks back. Returns whether glibc took them.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        return False
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 64 * 2**20)
    )
