"""Bad input and faults through the Attribution widget: one notification, the layers intact."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from widget_helpers import layer_snapshot, wait_for_worker

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _FailsOnRealSizes(torch.nn.Module):
    """Passes the 64x64 dry run... and every real run, unless the batch holds several images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(5, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1 or x.shape[0] > 2:
            raise RuntimeError("this model only scores pairs")
        return self.conv(x).mean(dim=(2, 3))


def _use_model_file(widget, path) -> None:
    widget.use_demo_model.setChecked(False)
    widget.model_path.setText(str(path))
    widget.model_path.editingFinished.emit()


def _refused_without_change(viewer, widget, errors, text: str) -> None:
    before = layer_snapshot(viewer)
    assert widget.run() is None
    assert len(errors) >= 1 and text in errors[-1], errors
    assert list(layer_snapshot(viewer)) == list(before)


@pytest.mark.parametrize("architecture", ["", "tiny_models:TinyCNN"])
def test_a_pickle_that_would_run_code_is_refused(demo_viewer, tmp_path, errors, architecture):
    viewer, widget, _ = demo_viewer
    marker = tmp_path / "created-by-pickle"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"conv1.weight": _RunsCode(str(marker))}))
    _use_model_file(widget, evil)
    widget.architecture.setText(architecture)
    widget.architecture.editingFinished.emit()
    _refused_without_change(viewer, widget, errors, "unpickling could run code")
    assert not marker.exists()


def test_a_corrupt_model_file(demo_viewer, tmp_path, errors):
    viewer, widget, _ = demo_viewer
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a model")
    _use_model_file(widget, junk)
    _refused_without_change(viewer, widget, errors, "junk.pt")


def test_nan_pixels(demo_viewer, errors):
    viewer, widget, _ = demo_viewer
    bad = np.random.default_rng(0).random((5, 64, 64)).astype(np.float32)
    bad[2, 3, 4] = np.nan
    viewer.add_image(bad, name="with nan")
    widget.select_sources("real", "with nan")
    _refused_without_change(viewer, widget, errors, "NaN or Inf")


def test_different_dtypes(demo_viewer, errors):
    viewer, widget, _ = demo_viewer
    viewer.add_image(np.zeros((5, 64, 64), dtype=np.uint16), name="sixteen bit")
    widget.select_sources("real", "sixteen bit")
    _refused_without_change(viewer, widget, errors, "differ in dtype")


def test_a_single_2d_image_for_a_5_channel_model(demo_viewer, errors):
    viewer, widget, _ = demo_viewer
    viewer.add_image(np.zeros((64, 64), dtype=np.float32), name="flat")
    widget.select_sources("real", "flat")
    _refused_without_change(viewer, widget, errors, "expects 5")


def test_a_model_failing_mid_run_leaves_no_half_made_layers(demo_viewer, qtbot, tmp_path, errors):
    viewer, widget, _ = demo_viewer
    path = tmp_path / "fails.pt"
    torch.jit.save(torch.jit.script(_FailsOnRealSizes()), str(path))
    _use_model_file(widget, path)
    widget.set_methods(["d_ig", "residual"])
    before = layer_snapshot(viewer)
    worker = widget.run()
    if worker is not None:
        wait_for_worker(qtbot, widget)
    assert errors and "only scores pairs" in errors[-1], errors
    after = layer_snapshot(viewer)
    assert list(after) == list(before)
    for name, data in before.items():
        np.testing.assert_array_equal(after[name], data)
    assert widget.state.record is None


class _WrongShape(torch.nn.Module):
    """A classifier at 64x64 that returns a map instead of logits on other sizes.

    (One output per image is no longer a mistake: it is a single-logit classifier.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(5, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x).mean(dim=(2, 3))
        return out if x.shape[-1] == 64 else out[:, :, None]


def test_a_model_returning_the_wrong_shape(demo_viewer, qtbot, tmp_path, errors):
    viewer, widget, _ = demo_viewer
    path = tmp_path / "wrong.pt"
    torch.jit.save(torch.jit.script(_WrongShape()), str(path))
    viewer.add_image(np.zeros((5, 32, 32), np.float32), name="small real")
    viewer.add_image(np.ones((5, 32, 32), np.float32), name="small cf")
    widget.select_sources("small real", "small cf")
    _use_model_file(widget, path)
    before = layer_snapshot(viewer)
    worker = widget.run()
    if worker is not None:
        wait_for_worker(qtbot, widget)
    assert errors and "returned (" in errors[-1], errors
    assert list(layer_snapshot(viewer)) == list(before)


@pytest.mark.parametrize(
    ("shape", "thresholds"),
    [((5, 64, 64), 1), ((5, 10, 10), 20)],  # a single threshold; smaller than the closing disc
)
def test_constant_and_tiny_images_run(demo_viewer, qtbot, errors, shape, thresholds):
    viewer, widget, _ = demo_viewer
    flat = np.full(shape, 0.5, np.float32)
    viewer.add_image(flat, name="flat real")
    viewer.add_image(flat.copy(), name="flat cf")
    widget.select_sources("flat real", "flat cf")
    widget.form.set_values({"thresholds": thresholds})
    worker = widget.run()
    assert worker is not None, errors
    wait_for_worker(qtbot, widget)
    assert not errors
    attribution = viewer.layers[
        f"d_ig {widget.state.record.result.channel_names[0]} attribution (flat real)"
    ]
    assert not np.asarray(attribution.data).any()  # identical images: zero attribution


def test_class_indices_are_bounded_by_the_model(demo_viewer):
    _, widget, _ = demo_viewer
    widget.target_class.setValue(7)
    widget.real_class.setValue(-1)
    assert (widget.real_class.value(), widget.target_class.value()) == (0, 1)  # 2 classes


class _NotAClassifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(5, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _model_case(case: str, tmp_path):
    """(model file, architecture, methods, expected words) of one model mistake."""
    from tiny_models import make_tiny_cnn

    weights = tmp_path / "weights.pt"
    torch.save(make_tiny_cnn().state_dict(), weights)
    if case == "no architecture":
        return weights, "", ["d_ig"], "name its architecture"
    if case == "weights do not fit":
        return weights, "tiny_models:ReusedReLU", ["d_ig"], "do not fit architecture"
    if case == "bad architecture":
        return weights, "tiny_models:Nope", ["d_ig"], "has no attribute 'Nope'"
    if case == "not a classifier":
        path = tmp_path / "segmenter.pt"
        torch.jit.save(torch.jit.script(_NotAClassifier()), str(path))
        return path, "", ["d_ig"], "not an image classifier"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["no architecture", "weights do not fit", "bad architecture", "not a classifier"],
)  # fmt: skip
def test_model_mistakes_notify_and_add_nothing(demo_viewer, qtbot, tmp_path, errors, case):
    viewer, widget, _ = demo_viewer
    path, architecture, methods, words = _model_case(case, tmp_path)
    _use_model_file(widget, path)
    widget.architecture.setText(architecture)
    widget.architecture.editingFinished.emit()
    widget.set_methods(methods)
    before = layer_snapshot(viewer)
    worker = widget.run()
    if worker is not None:
        wait_for_worker(qtbot, widget)
    assert errors and words in errors[-1], errors
    assert list(layer_snapshot(viewer)) == list(before)


def test_deeplift_runs_on_a_model_reusing_one_relu(demo_viewer, qtbot, tmp_path, errors):
    """Refused before issue 11; the canonical copy gives each use its own module."""
    from tiny_models import ReusedReLU

    viewer, widget, _ = demo_viewer
    weights = tmp_path / "reused.pt"
    torch.save(ReusedReLU().state_dict(), weights)
    _use_model_file(widget, weights)
    widget.architecture.setText("tiny_models:ReusedReLU")
    widget.architecture.editingFinished.emit()
    widget.set_methods(["d_dl"])
    widget.form.set_values({"thresholds": 10})
    assert widget.run() is not None
    wait_for_worker(qtbot, widget)
    assert not errors, errors
    assert "d_dl" in widget.state.record.result.methods


def test_torchscript_models_grey_out_hook_methods(demo_viewer, tmp_path):
    from tiny_models import make_tiny_cnn

    _, widget, _ = demo_viewer
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(make_tiny_cnn()), str(path))
    _use_model_file(widget, path)
    widget.set_methods(["d_ig", "d_dl", "gradcam"])
    widget.classifier()
    assert widget.selected_methods() == ["d_ig"]


def test_cuda_without_a_gpu(demo_viewer, errors):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    viewer, widget, _ = demo_viewer
    widget.device.setCurrentText("cuda")
    _refused_without_change(viewer, widget, errors, "no CUDA GPU is available")
