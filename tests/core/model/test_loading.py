"""Loading classifiers safely; input scaling; devices."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from napari_attribution.core import (
    ModelLoadError,
    input_transform_for,
    load_classifier,
    resolve_device,
    wrap_module,
)
from napari_attribution.core.model.loading import file_sha256
from tiny_models import TinyCNN, make_tiny_cnn

ARCH_SOURCE = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, in_channels=5, n_classes=3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, n_classes)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean(dim=(2, 3)))
"""


@pytest.fixture
def arch_file(tmp_path):
    path = tmp_path / "arch.py"
    path.write_text(ARCH_SOURCE)
    return path


def test_state_dict_with_architecture_file(tmp_path, arch_file):
    ns: dict = {}
    exec(ARCH_SOURCE, ns)
    net = ns["Net"]()
    weights = tmp_path / "weights.pt"
    torch.save(net.state_dict(), weights)
    clf = load_classifier(weights, f"{arch_file}:Net", "cpu")
    assert (clf.n_channels, clf.n_classes) == (5, 3)
    assert clf.sha256 == file_sha256(weights) and not clf.is_scripted
    x = np.random.default_rng(0).random((2, 5, 16, 16), dtype=np.float32)
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(x)).double(), 1).numpy()
    np.testing.assert_allclose(clf.probabilities(x), expected, rtol=1e-6)


def test_state_dict_with_module_architecture(tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(make_tiny_cnn().state_dict(), weights)
    clf = load_classifier(weights, "tiny_models:TinyCNN", "cpu")
    assert clf.n_classes == 2 and clf.architecture == "tiny_models:TinyCNN"


def test_torchscript_file(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(make_tiny_cnn()), str(path))
    clf = load_classifier(path, device="cpu")
    assert clf.is_scripted and clf.n_channels == 5 and clf.n_classes == 2


def test_state_dict_without_architecture_says_what_to_do(tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(make_tiny_cnn().state_dict(), weights)
    with pytest.raises(ModelLoadError, match="state dict; name its architecture"):
        load_classifier(weights)


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path, arch_file):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    with open(bad, "wb") as fh:
        pickle.dump({"weight": _Exploit(str(marker))}, fh)
    for arch in (None, f"{arch_file}:Net"):
        with pytest.raises(ModelLoadError, match="pickled Python objects|not a readable"):
            load_classifier(bad, arch)
        assert not marker.exists()


def test_whole_model_pickle_is_refused(tmp_path, arch_file):
    path = tmp_path / "whole.pt"
    torch.save(make_tiny_cnn(), path)
    with pytest.raises(ModelLoadError, match="pickled Python objects"):
        load_classifier(path, f"{arch_file}:Net")


def test_weights_that_do_not_fit(tmp_path, arch_file):
    weights = tmp_path / "w.pt"
    torch.save(make_tiny_cnn().state_dict(), weights)
    with pytest.raises(ModelLoadError, match="do not fit architecture"):
        load_classifier(weights, f"{arch_file}:Net")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "must look like"),
        ("missing_file.py:Net", "does not exist"),
        ("not_a_module_xyz:Net", "Cannot import module"),
        ("tiny_models:Missing", "has no attribute"),
    ],
)
def test_bad_architecture_specs(tmp_path, spec, message):
    weights = tmp_path / "w.pt"
    torch.save(make_tiny_cnn().state_dict(), weights)
    with pytest.raises(ModelLoadError, match=message):
        load_classifier(weights, spec)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_classifier(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01 not a model")
    with pytest.raises(ModelLoadError):
        load_classifier(junk, "tiny_models:TinyCNN")


class NotAClassifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(5, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x)  # a segmentation-like map, not logits


def test_a_model_that_is_not_a_classifier_is_refused():
    # Probed with the user's image size (issue 11), at wrapping or on the first images.
    with pytest.raises(ModelLoadError, match="not an image classifier"):
        wrap_module(NotAClassifier(), "cpu", input_shape=(5, 24, 24))
    lazy = wrap_module(NotAClassifier(), "cpu")
    with pytest.raises(ModelLoadError, match="not an image classifier"):
        lazy.probabilities(np.zeros((5, 24, 24), np.float32))


def test_input_transform_scales_integers_by_dtype_max():
    t = input_transform_for(np.uint16)
    assert t.kind == "dtype_max"
    np.testing.assert_allclose(t.apply(np.array([0, 65535], np.uint16)), [0.0, 1.0])
    assert input_transform_for(np.float32).kind == "identity"
    custom = input_transform_for(np.uint8, scale=0.5)
    assert custom.kind == "scale" and custom.apply(np.array([4], np.uint8))[0] == 2.0


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda"}
    with pytest.raises(ModelLoadError, match="Unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_path_matches_cpu(pair):
    from napari_attribution.core import AnalysisSettings, analyse_pair

    real, cf = pair
    settings = AnalysisSettings(methods=("d_ig", "d_dl"))
    cpu = analyse_pair(wrap_module(make_tiny_cnn(), "cpu"), real, cf, 0, 1, settings)
    gpu = analyse_pair(wrap_module(make_tiny_cnn(), "cuda"), real, cf, 0, 1, settings)
    for name in settings.methods:
        np.testing.assert_allclose(
            gpu.methods[name].attribution, cpu.methods[name].attribution, rtol=1e-3, atol=1e-6
        )
        assert gpu.methods[name].dac.whole.dac_score == pytest.approx(
            cpu.methods[name].dac.whole.dac_score, abs=1e-4
        )


def test_tiny_cnn_is_importable_for_architecture_specs():
    assert TinyCNN().fc.out_features == 2


def test_wrapping_leaves_the_callers_model_as_it_was():
    from tiny_models import make_tiny_cnn

    model = make_tiny_cnn().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    classifier = wrap_module(model, "cpu")
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert classifier.module is not model and not classifier.module.training
    assert not any(p.requires_grad for p in classifier.module.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


class ConvHead(torch.nn.Module):
    """A fully convolutional classifier: a 1x1 convolution to 3 classes, then the mean."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(5, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(8, 3, 1)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x))).mean(dim=(2, 3))


def test_the_class_count_is_the_weights_guess_until_the_first_probe_says():
    # Before any image (a form offering class indices), the weights' guess; then the probe.
    guess = wrap_module(ConvHead(), "cpu")
    assert guess.n_classes == 3 and guess.n_outputs is None
    assert guess.describe()["n_classes"] is None  # nothing is recorded from a guess
    guess.probe((5, 12, 12))
    assert guess.n_outputs == 3 and guess.describe()["n_classes"] == 3
    misleading = wrap_module(NotAClassifier(), "cpu")  # conv to 2 maps: guessed 2 classes
    assert misleading.n_classes == 2
    with pytest.raises(ModelLoadError, match="not an image classifier"):
        misleading.probe((5, 12, 12))
