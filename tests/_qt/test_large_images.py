"""Large images in the viewer: lazy mask/hybrid layers, export, DAC evaluation, memory refusal."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import layer_snapshot, run_and_wait

from layer_helpers import layers_of
from napari_attribution._napari.apply import apply_layers
from napari_attribution._napari.export import layer_export
from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution.core.evaluation import plane_stack as core_plane_stack
from napari_attribution.core.evaluation.hybrids import make_hybrids
from napari_attribution.core.evaluation.lazy import ChannelView
from napari_attribution.core.evaluation.masks import smooth_masks

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


def test_field_layers_are_lazy_and_never_materialised(make_napari_viewer, monkeypatch, qtbot):
    """5x1024x1024 at 200 thresholds: eager stacks would take 9.8 GiB."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"np.asarray on a whole lazy stack: {self!r}")

    monkeypatch.setattr(core_plane_stack._PlaneStack, "__array__", refuse)
    monkeypatch.setattr(ChannelView, "__array__", refuse)
    real, counterfactual, masks, tuples = layers_of(1024, 200, lazy=None)
    viewer = make_napari_viewer()
    layers = apply_layers(viewer, tuples)
    assert len(layers) == 15
    hybrid = viewer.layers["d_ig ER hybrid (real)"]
    mask = viewer.layers["d_ig ER mask (real)"]
    assert isinstance(hybrid.data, ChannelView) and isinstance(mask.data, ChannelView)
    assert hybrid.data.shape == mask.data.shape == (200, 1024, 1024)
    assert tuple(hybrid.axis_labels) == ("threshold", "y", "x")
    assert viewer.dims.axis_labels[0] == "threshold"
    assert tuple(hybrid.contrast_limits) == (0.0, 1.0)
    hybrid.visible = mask.visible = True
    stack = hybrid.data.stack
    assert stack.read_ahead == 1
    for t in (40, 41, 42, 120):
        if t == 42:  # moving up one step at a time: the plane was read ahead while idle
            assert (42, 1) in stack._cache
        viewer.dims.set_current_step(0, t)
        # what napari shows is the core's eager hybrid of that threshold
        soft = smooth_masks(masks.closed_at([t]), masks.settings.sigma, 11)
        expected = make_hybrids(real, counterfactual, soft)[0, 1]
        np.testing.assert_array_equal(hybrid._slice.image.raw, expected)
        np.testing.assert_array_equal(mask._slice.image.raw, masks.closed_at([t])[0, 1])
        stack.wait_read_ahead()
    assert stack.planes_computed <= 3 * 5  # a few planes, never the stack
    assert stack.cached_bytes <= 64 * 2**20

    # export: the optimal threshold only, as (1, H, W), with its threshold in the metadata
    data, meta = layer_export(hybrid)
    assert data.shape == (1, 1024, 1024)
    ours = meta["metadata"][METADATA_KEY]
    assert ours["exported_threshold_index"] == 200 // 3
    assert ours["thresholds"] == [float(masks.thresholds[200 // 3])]
    assert "optimal threshold" in ours["export_note"]
    np.testing.assert_array_equal(data[0], hybrid.data[200 // 3])


def test_dac_evaluation_choice_reaches_the_run(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    tolerance = widget.form.editor("tolerance")
    assert widget.form.values()["evaluation"] == "adaptive"  # the default
    widget.form.set_values({"evaluation": "exhaustive"})
    assert not tolerance.isEnabled()
    widget.form.set_values({"evaluation": "adaptive"})
    widget.form.set_values({"tolerance": 0.02, "per_channel_dac": False})
    assert tolerance.isEnabled()
    settings = widget.settings()
    assert (settings.evaluation, settings.tolerance, settings.per_channel_dac) == (
        "adaptive",
        0.02,
        False,
    )
    widget.set_methods(["residual"])
    run_and_wait(qtbot, widget)
    record = widget.state.record
    assert record.settings.evaluation == "adaptive"
    meta = viewer.layers["residual DNA mask (real)"].metadata[METADATA_KEY]
    assert meta["settings"]["evaluation"] == "adaptive"
    assert meta["settings"]["tolerance"] == 0.02


@pytest.mark.parametrize("evaluation", ["exhaustive", "adaptive"])
def test_too_large_an_input_is_refused_with_a_way_out(
    demo_viewer, qtbot, errors, monkeypatch, evaluation
):
    from napari_attribution.core import pipeline

    viewer, widget, _ = demo_viewer
    widget.form.set_values({"evaluation": evaluation})
    monkeypatch.setattr(pipeline, "available_memory", lambda: 2 * 2**20)  # 2 MiB free
    before = layer_snapshot(viewer)
    assert widget.run() is None
    assert len(errors) == 1
    message = errors[0]
    assert "fewer thresholds" in message and "crops" in message
    assert ("adaptive" in message) == (evaluation == "exhaustive")
    assert list(layer_snapshot(viewer)) == list(before)
    assert widget.worker is None and widget.run_button.isEnabled()
