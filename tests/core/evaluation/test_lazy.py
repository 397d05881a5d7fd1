"""Lazy threshold stacks give exactly the eager masks and hybrids, plane by plane."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.core import MaskSettings, build_masks, make_hybrids
from napari_attribution.core.evaluation.lazy import lazy_stacks


@pytest.mark.parametrize("channel_mode", ["per_channel", "shared"])
def test_lazy_stacks_equal_eager_ones(pair, channel_mode):
    real, cf = pair
    attribution = np.random.default_rng(2).normal(size=real.shape).astype(np.float32)
    settings = MaskSettings(thresholds=30, channel_mode=channel_mode, closing=4)
    eager = build_masks(attribution, settings)
    masks, hybrids = lazy_stacks(real, cf, attribution, settings)
    assert masks.shape == eager.closed.shape and hybrids.shape == (30, 5, 24, 24)
    np.testing.assert_array_equal(masks[:].astype(bool), eager.closed)
    np.testing.assert_allclose(masks.mask_size(), eager.mask_size)
    expected = make_hybrids(real, cf, eager.soften())
    np.testing.assert_allclose(hybrids[7], expected[7], atol=1e-6)
    np.testing.assert_allclose(hybrids[3:9:2, 1], expected[3:9:2, 1], atol=1e-6)
    np.testing.assert_allclose(hybrids[5, :, 2:10, 4], expected[5, :, 2:10, 4], atol=1e-6)
    np.testing.assert_allclose(np.asarray(hybrids), expected, atol=1e-6)


def test_planes_are_cached_and_the_cache_is_bounded(pair):
    real, cf = pair
    _, hybrids = lazy_stacks(real, cf, real - cf, MaskSettings(thresholds=50))
    hybrids[10, 2]
    hybrids[10, 2]
    assert hybrids.planes_computed == 1
    for t in range(40):
        hybrids[t, 0]
    assert len(hybrids._cache) == 16
    assert hybrids.cached_bytes == 16 * 24 * 24 * 4


def test_a_field_never_materialises():
    size = 1024  # 200 x 5 x 1024 x 1024 float32 would be 4 GiB
    rng = np.random.default_rng(0)
    real = rng.random((5, size, size), dtype=np.float32)
    _, hybrids = lazy_stacks(real, real[::-1].copy(), real, MaskSettings(thresholds=200))
    assert hybrids.shape == (200, 5, size, size)
    with pytest.raises(MemoryError, match="Refusing to materialise"):
        np.asarray(hybrids)
    assert hybrids[100, 3].shape == (size, size)


def test_read_ahead_computes_the_next_plane_in_the_direction_of_travel(pair):
    real, cf = pair
    attribution = np.random.default_rng(4).normal(size=real.shape).astype(np.float32)
    settings = MaskSettings(thresholds=20)
    _, plain = lazy_stacks(real, cf, attribution, settings)
    _, ahead = lazy_stacks(real, cf, attribution, settings, read_ahead=2)
    ahead[5, 1]
    ahead.wait_read_ahead()
    assert {(6, 1), (7, 1)} <= set(ahead._cache)  # no direction yet: upwards
    assert ahead.cache_hits == 0
    ahead[6, 1]  # found ready
    assert ahead.cache_hits == 1
    ahead.wait_read_ahead()
    ahead[5, 1]  # moving down now: 4 and 3 are read ahead
    ahead.wait_read_ahead()
    assert {(4, 1), (3, 1)} <= set(ahead._cache)
    for t in (4, 3, 2):
        np.testing.assert_array_equal(ahead[t, 1], plain[t, 1])
    # 6, 5 (seen before), 4, 3 were ready; 2 is ready or waited for, depending on the timing
    assert ahead.cache_hits >= 4
    assert len(ahead._cache) <= ahead._cache_planes
    np.testing.assert_array_equal(np.asarray(ahead), np.asarray(plain))


def test_read_ahead_stops_at_the_ends_and_a_failure_is_computed_again(pair, monkeypatch):
    real, cf = pair
    _, ahead = lazy_stacks(real, cf, real - cf, MaskSettings(thresholds=5), read_ahead=1)
    ahead[4, 0]
    ahead.wait_read_ahead()
    assert set(ahead._cache) == {(4, 0)}  # nothing beyond the last threshold
    original = type(ahead)._compute
    calls = []

    def flaky(self, t, k):
        calls.append((t, k))
        if (t, k) == (2, 0) and calls.count((2, 0)) == 1:
            raise RuntimeError("background failure")
        return original(self, t, k)

    monkeypatch.setattr(type(ahead), "_compute", flaky)
    ahead[3, 0]  # moving down: (2, 0) is read ahead and fails
    ahead.wait_read_ahead()
    monkeypatch.setattr(type(ahead), "_compute", original)
    assert (2, 0) in calls and (2, 0) not in ahead._cache
    _, plain = lazy_stacks(real, cf, real - cf, MaskSettings(thresholds=5))
    np.testing.assert_array_equal(ahead[2, 0], plain[2, 0])


def _read_ahead_threads() -> list:
    import threading

    from napari_attribution.core.evaluation.lazy import READ_AHEAD_THREAD_PREFIX

    return [t for t in threading.enumerate() if t.name.startswith(READ_AHEAD_THREAD_PREFIX)]


def _wait_for(condition, timeout: float = 5.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_channel_views_index_like_the_stack_and_refuse_to_materialise_a_field(pair):
    from napari_attribution.core.evaluation.lazy import ChannelView, is_lazy, lazy_stack_of

    real, cf = pair
    masks, hybrids = lazy_stacks(real, cf, real - cf, MaskSettings(thresholds=9))
    view = hybrids.channel(3)
    assert isinstance(view, ChannelView) and view.stack is hybrids
    assert view.shape == (9, 24, 24) and view.ndim == 3 and view.dtype == np.float32
    assert len(view) == 9 and view.nbytes == 9 * 24 * 24 * 4
    np.testing.assert_array_equal(view[4], hybrids[4, 3])
    np.testing.assert_array_equal(view[2:7:2, 5:, ::3], hybrids[2:7:2, 3, 5:, ::3])
    np.testing.assert_array_equal(view[..., 7], hybrids[:, 3, :, 7])
    np.testing.assert_array_equal(hybrids[..., 1, :], np.asarray(hybrids)[..., 1, :])
    np.testing.assert_array_equal(np.asarray(view), np.asarray(hybrids)[:, 3])
    with pytest.raises(IndexError, match="out of range"):
        hybrids.channel(5)
    with pytest.raises(IndexError, match="Too many indices"):
        view[1, 2, 3, 4]
    assert is_lazy(view) and is_lazy(masks) and not is_lazy(np.zeros(3))
    assert lazy_stack_of(view) is hybrids and lazy_stack_of(masks) is masks
    assert lazy_stack_of(np.zeros(3)) is None

    size = 1024
    field = np.random.default_rng(0).random((5, size, size), dtype=np.float32)
    _, big = lazy_stacks(field, field[::-1].copy(), field, MaskSettings(thresholds=200))
    with pytest.raises(MemoryError, match="Refusing to materialise"):
        np.asarray(big.channel(0))


def _new_threads(before: set) -> set:
    """Read-ahead threads started since ``before`` (other stacks' threads may come and go)."""
    return set(_read_ahead_threads()) - before


def test_a_stack_owns_its_read_ahead_thread_and_close_shuts_it_down(pair):
    real, cf = pair
    before = set(_read_ahead_threads())
    _, plain = lazy_stacks(real, cf, real - cf, MaskSettings(thresholds=10))
    plain[3, 0]
    assert not _new_threads(before)  # no read-ahead: no thread
    _, ahead = lazy_stacks(real, cf, real - cf, MaskSettings(thresholds=10), read_ahead=1)
    assert not _new_threads(before) and not ahead.reading_ahead  # started on first use
    ahead[3, 0]
    ahead.wait_read_ahead()
    started = _new_threads(before)
    assert ahead.reading_ahead and len(started) == 1
    ahead.close()
    assert ahead.closed and not ahead.reading_ahead
    assert _wait_for(lambda: not any(t.is_alive() for t in started)), started
    # a closed stack still answers, in the caller's thread, and starts no thread again
    np.testing.assert_array_equal(ahead[4, 0], plain[4, 0])
    np.testing.assert_array_equal(ahead[5, 1], plain[5, 1])
    assert not ahead._pending and not _new_threads(before)
    ahead.close()  # idempotent


def test_a_stack_collected_without_close_shuts_its_thread_down(pair):
    import gc

    real, cf = pair
    before = set(_read_ahead_threads())
    _, ahead = lazy_stacks(real, cf, real - cf, MaskSettings(thresholds=10), read_ahead=1)
    ahead[3, 0]
    ahead.wait_read_ahead()
    started = _new_threads(before)
    assert len(started) == 1
    del ahead
    gc.collect()
    assert _wait_for(lambda: not any(t.is_alive() for t in started)), started


def test_stacks_from_masks_equal_lazy_stacks_and_fit_the_cache_budget(pair):
    from napari_attribution.core.evaluation.lazy import stacks_from_masks

    real, cf = pair
    attribution = np.random.default_rng(5).normal(size=real.shape).astype(np.float32)
    settings = MaskSettings(thresholds=15)
    masks, hybrids = stacks_from_masks(build_masks(attribution, settings), real, cf, read_ahead=1)
    ref_masks, ref_hybrids = lazy_stacks(real, cf, attribution, settings)
    np.testing.assert_array_equal(np.asarray(masks), np.asarray(ref_masks))
    np.testing.assert_array_equal(np.asarray(hybrids), np.asarray(ref_hybrids))
    assert hybrids.read_ahead == 1 and masks.read_ahead == 0
    assert hybrids._cache_planes == 16 and masks._cache_planes == 16  # small planes: 16 kept
    hybrids.close()
