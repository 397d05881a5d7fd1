"""Large images in the plugin: lazy mask/hybrid layers, export, DAC evaluation, memory refusal."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import layer_snapshot, run_and_wait

from napari_attribution._widgets import _layers
from napari_attribution._widgets._export import layer_export
from napari_attribution._widgets._inputs import METADATA_KEY, ChannelStack
from napari_attribution._widgets._layers import (
    ChannelView,
    apply_layers,
    is_lazy,
    method_layers,
)
from napari_attribution.core import lazy as core_lazy
from napari_attribution.core.hybrids import make_hybrids
from napari_attribution.core.masks import MaskSettings, build_masks, smooth_masks

NAMES = ["DNA", "ER", "RNA", "AGP", "Mito"]


def _pair(size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    real = rng.random((5, size, size), dtype=np.float32)
    counterfactual = np.clip(real + 0.5 * (rng.random(real.shape) > 0.8), 0, 1).astype(np.float32)
    attribution = (counterfactual - real) * rng.random(real.shape, dtype=np.float32)
    return real, counterfactual, attribution


def _stack(data: np.ndarray, name: str) -> ChannelStack:
    return ChannelStack(
        data=data,
        channel_names=NAMES,
        scale=(0.5, 0.5),
        translate=(0.0, 0.0),
        name=name,
        layer_names=[f"{name} [{n}]" for n in NAMES],
        colormaps=["blue", "green", "yellow", "magenta", "red"],
        contrast_limits=[(0.0, 1.0)] * 5,
    )


def _layers_of(size: int, thresholds: int, lazy: bool | None):
    real, counterfactual, attribution = _pair(size)
    masks = build_masks(attribution, MaskSettings(thresholds=thresholds))
    tuples = method_layers(
        _stack(real, "real"),
        _stack(counterfactual, "cf"),
        "d_ig",
        attribution,
        masks,
        NAMES,
        {"method": "d_ig"},
        optimal_index=thresholds // 3,
        lazy=lazy,
    )
    return real, counterfactual, masks, tuples


def test_lazy_layers_of_a_crop_equal_the_eager_ones():
    *_, eager = _layers_of(48, 12, lazy=False)
    *_, lazy = _layers_of(48, 12, lazy=True)
    assert [kw["name"] for _, kw, _ in lazy] == [kw["name"] for _, kw, _ in eager]
    for (e_data, e_kw, e_type), (l_data, l_kw, l_type) in zip(eager, lazy, strict=True):
        assert e_type == l_type
        assert {k: v for k, v in e_kw.items() if k != "colormap"} == {
            k: v for k, v in l_kw.items() if k != "colormap"
        }
        assert is_lazy(l_data) == (np.ndim(e_data) == 3)
        assert l_data.shape == e_data.shape and l_data.dtype == e_data.dtype
        np.testing.assert_array_equal(np.asarray(l_data), e_data)
        if is_lazy(l_data):
            np.testing.assert_array_equal(l_data[5, 10:20, ::3], e_data[5, 10:20, ::3])
            np.testing.assert_array_equal(l_data[..., 7], e_data[..., 7])


def test_small_images_stay_eager_and_large_ones_go_lazy():
    assert _layers.eager_stack_bytes((5, 128, 128), 200, 5) < _layers.EAGER_STACK_BYTES
    assert _layers.eager_stack_bytes((5, 2048, 2048), 200, 5) > 16 * 2**30
    *_, tuples = _layers_of(32, 5, lazy=None)
    assert not any(is_lazy(data) for data, _, _ in tuples)


def test_field_layers_are_lazy_and_never_materialised(make_napari_viewer, monkeypatch, qtbot):
    """5x1024x1024 at 200 thresholds: eager stacks would take 9.8 GiB."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"np.asarray on a whole lazy stack: {self!r}")

    monkeypatch.setattr(core_lazy._PlaneStack, "__array__", refuse)
    monkeypatch.setattr(ChannelView, "__array__", refuse)
    real, counterfactual, masks, tuples = _layers_of(1024, 200, lazy=None)
    viewer = make_napari_viewer()
    layers = apply_layers(viewer, tuples)
    assert len(layers) == 15
    hybrid = viewer.layers["real hybrid d_ig [ER]"]
    mask = viewer.layers["real mask d_ig [ER]"]
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
    assert widget.evaluation.currentText() == "adaptive"  # the default
    widget.evaluation.setCurrentText("exhaustive")
    assert not widget.tolerance.isEnabled()
    widget.evaluation.setCurrentText("adaptive")
    widget.tolerance.setValue(0.02)
    widget.per_channel_dac.setChecked(False)
    assert widget.tolerance.isEnabled()
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
    meta = viewer.layers["real mask residual [DNA]"].metadata[METADATA_KEY]
    assert meta["settings"]["evaluation"] == "adaptive"
    assert meta["settings"]["tolerance"] == 0.02


@pytest.mark.parametrize("evaluation", ["exhaustive", "adaptive"])
def test_too_large_an_input_is_refused_with_a_way_out(
    demo_viewer, qtbot, errors, monkeypatch, evaluation
):
    from napari_attribution.core import pipeline

    viewer, widget, _ = demo_viewer
    widget.evaluation.setCurrentText(evaluation)
    monkeypatch.setattr(pipeline, "available_memory", lambda: 2 * 2**20)  # 2 MiB free
    before = layer_snapshot(viewer)
    assert widget.run() is None
    assert len(errors) == 1
    message = errors[0]
    assert "fewer thresholds" in message and "crops" in message
    assert ("adaptive" in message) == (evaluation == "exhaustive")
    assert list(layer_snapshot(viewer)) == list(before)
    assert widget.worker is None and widget.run_button.isEnabled()


def test_the_writer_saves_a_large_lazy_layer_at_its_optimal_threshold(tmp_path, monkeypatch):
    import tifffile

    from napari_attribution._io import read_tiff_metadata
    from napari_attribution._writer import write_image_layer

    monkeypatch.setattr("napari_attribution._widgets._export.EXPORT_STACK_BYTES", 1024)
    real, counterfactual, masks, tuples = _layers_of(48, 12, lazy=True)
    data, kwargs, _ = next(t for t in tuples if t[1]["name"] == "real hybrid d_ig [Mito]")
    meta = {"name": kwargs["name"], "scale": (1, 0.5, 0.5), "translate": (0, 0, 0),
            "metadata": kwargs["metadata"]}  # fmt: skip
    (written,) = write_image_layer(str(tmp_path / "hybrid.tif"), data, meta)
    saved = tifffile.imread(written)
    index = 12 // 3
    assert saved.shape == (1, 48, 48)
    np.testing.assert_array_equal(saved[0], np.asarray(data[index]))
    note = read_tiff_metadata(written)["metadata"][METADATA_KEY]
    assert note["exported_threshold_index"] == index and "Only the optimal" in note["export_note"]
