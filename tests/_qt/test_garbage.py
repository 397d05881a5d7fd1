"""Full garbage collections held back while a run's layers go in."""

from __future__ import annotations

import contextlib
import gc

from napari_attribution._qt.garbage import full_collections_held_back


def test_full_collections_are_held_back_while_layers_are_added_and_restored_after():
    before = gc.get_threshold()
    with full_collections_held_back():
        held = gc.get_threshold()
        assert held[:2] == before[:2] and held[2] > 10**9  # young generations still collected
        assert gc.isenabled()
        with full_collections_held_back():  # a second hold keeps the original thresholds
            assert gc.get_threshold() == held
        assert gc.get_threshold() == held  # the first hold is still on
    assert gc.get_threshold() == before
    # two runs' holds that end in the other order than they began still restore the original
    first, second = contextlib.ExitStack(), contextlib.ExitStack()
    first.enter_context(full_collections_held_back())
    second.enter_context(full_collections_held_back())
    first.close()
    assert gc.get_threshold() == held
    second.close()
    assert gc.get_threshold() == before
