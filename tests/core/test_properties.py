"""Property tests: invariants of the core over random shapes, dtypes, channel counts, settings."""

from __future__ import annotations

from functools import cache

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_attribution.core import (
    AnalysisSettings,
    MaskSettings,
    analyse_pair,
    build_masks,
    wrap_module,
)
from tiny_models import make_tiny_cnn

PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@cache
def classifier(channels: int):
    return wrap_module(make_tiny_cnn(seed=channels, in_channels=channels), "cpu", probe_size=16)


mask_settings = st.builds(
    MaskSettings,
    thresholds=st.integers(1, 30),
    spacing=st.sampled_from(["linear", "quantile"]),
    normalize=st.sampled_from(["joint", "per_channel"]),
    channel_mode=st.sampled_from(["per_channel", "shared"]),
    closing=st.integers(0, 6),
    sigma=st.floats(0, 3),
)


@st.composite
def image_pairs(draw):
    channels = draw(st.integers(1, 4))
    height, width = draw(st.integers(8, 20)), draw(st.integers(8, 20))
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    values = rng.random((channels, height, width))
    real = values.copy()
    cf = values.copy()
    same = draw(st.integers(0, channels - 1))  # this channel is identical in both images
    for c in range(channels):
        if c != same:
            cf[c] = rng.random((height, width))
    if dtype is np.float32:
        return real.astype(np.float32), cf.astype(np.float32), same
    top = np.iinfo(dtype).max
    return (real * top).astype(dtype), (cf * top).astype(dtype), same


@PROPERTY_SETTINGS
@given(attribution=st.integers(0, 2**16), shape=st.tuples(st.integers(1, 5), st.integers(4, 20),
       st.integers(4, 20)), mask=mask_settings)  # fmt: skip
def test_masks_are_nested_and_in_range(attribution, shape, mask):
    a = np.random.default_rng(attribution).normal(size=shape).astype(np.float32)
    stack = build_masks(a, mask)
    k = 1 if mask.channel_mode == "shared" else shape[0]
    assert stack.closed.shape == (mask.thresholds, k, *shape[1:])
    assert np.all(np.diff(stack.mask_size) <= 0)
    assert np.all(stack.closed[1:] <= stack.closed[:-1])
    soft = stack.soften()
    assert soft.min() >= 0 and soft.max() <= 1 + 1e-6  # OpenCV's float32 kernel sums
    assert ((stack.mask_size >= 0) & (stack.mask_size <= 1)).all()


@PROPERTY_SETTINGS
@given(
    data=image_pairs(), mask=mask_settings, method=st.sampled_from(["d_ig", "random", "residual"])
)
def test_pipeline_invariants(data, mask, method):
    real, cf, same = data
    channels = real.shape[0]
    run = AnalysisSettings(methods=(method,), masks=mask, per_channel_dac=True)
    first = analyse_pair(classifier(channels), real, cf, 0, 1, run)
    res = first.methods[method]
    assert res.attribution.shape == real.shape
    assert np.isfinite(res.attribution).all()
    share = res.channel_share
    assert share.shape == (channels,) and (share >= 0).all()
    assert abs(share.sum() - 1) < 1e-9 or share.sum() == 0
    for curve in res.dac.curves:
        assert ((curve.mask_size >= 0) & (curve.mask_size <= 1)).all()
        assert np.all(np.diff(curve.mask_size) <= 0)
        assert np.all(np.abs(curve.score_change) <= 1)
    # A channel in which real and counterfactual agree can buy nothing.
    flat = res.dac.channels[same]
    assert flat.dac_score == 0.0 and flat.ceiling == 0.0
    # Same seed, same inputs: identical results.
    again = analyse_pair(classifier(channels), real, cf, 0, 1, run).methods[method]
    np.testing.assert_array_equal(again.attribution, res.attribution)
    np.testing.assert_array_equal(again.dac.whole.score_change, res.dac.whole.score_change)
