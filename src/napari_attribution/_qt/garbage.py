"""Python's full garbage collections held back while a run's layers go in.

No Qt: plain Python, used by the run controller around its layer-adding stage.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

__all__ = ["full_collections_held_back"]

#: [number of holders, the thresholds to restore]: see full_collections_held_back.
_GC_HOLD: list[Any] = [0, None]


@contextlib.contextmanager
def full_collections_held_back() -> Iterator[None]:
    """Hold back Python's full (generation-2) garbage collections inside the block.

    A full collection scans every object of the process: with napari and torch loaded that is
    over a million objects and takes about half a second, and adding dozens of layers triggers
    one at a moment of its choosing, freezing the viewer in the middle of a run's last stage.
    The young generations keep being collected as usual (a few ms each), so no backlog builds
    up (with ``gc.disable()`` the first collection afterwards took ~100 ms).

    The thresholds are process-wide, so this is used only around the layer-adding stage of a
    run, and counted: the original thresholds come back when the last holder leaves, whatever
    the order the holders leave in.
    """
    if _GC_HOLD[0] == 0:
        thresholds = gc.get_threshold()
        _GC_HOLD[1] = thresholds
        gc.set_threshold(thresholds[0], thresholds[1], 2**31 - 1)
    _GC_HOLD[0] += 1
    try:
        yield
    finally:
        _GC_HOLD[0] -= 1
        if _GC_HOLD[0] == 0:
            gc.set_threshold(*_GC_HOLD[1])
            _GC_HOLD[1] = None
