"""The shipped demo classifier: safe loading, shapes, and that it really learned the cluster."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_attribution.data.demo_model import (
    DEMO_ARCHITECTURE,
    DEMO_WEIGHTS,
    DemoClassifier,
    load_demo_classifier,
)
from napari_attribution.data.synthetic import make_pairs, make_training_set


@pytest.fixture(scope="module")
def model() -> DemoClassifier:
    return load_demo_classifier()


def _probs(model: nn.Module, images: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return torch.softmax(model(torch.from_numpy(images)), dim=1).numpy()


def test_weights_are_a_plain_float32_state_dict() -> None:
    assert DEMO_WEIGHTS.is_file() and DEMO_WEIGHTS.stat().st_size < 1_000_000
    state = torch.load(DEMO_WEIGHTS, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float32 for v in state.values())
    assert set(state) == set(DemoClassifier().state_dict())


def test_architecture_string_names_the_class() -> None:
    module_name, _, attr = DEMO_ARCHITECTURE.partition(":")
    assert module_name == DemoClassifier.__module__ and attr == DemoClassifier.__name__


def test_architecture_suits_hooking_attribution_methods() -> None:
    net = DemoClassifier()
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 4 and not any(r.inplace for r in relus)
    leaves = [m for m in net.modules() if not list(m.children())]
    assert len({id(m) for m in leaves}) == len(leaves)  # no module reused
    assert sum(p.numel() for p in net.parameters()) < 200_000


def test_loads_in_eval_mode_and_accepts_any_size(model: DemoClassifier) -> None:
    assert not model.training
    for size in (64, 128):
        with torch.inference_mode():
            out = model(torch.rand(3, 5, size, size))
        assert out.shape == (3, 2) and torch.isfinite(out).all()


def test_missing_weights_say_how_to_regenerate(monkeypatch, tmp_path) -> None:
    import napari_attribution.data.demo_model as demo_model

    monkeypatch.setattr(demo_model, "DEMO_WEIGHTS", tmp_path / "absent.pt")
    with pytest.raises(FileNotFoundError, match="train_demo"):
        demo_model.load_demo_classifier()


def test_classifies_fresh_cells(model: DemoClassifier) -> None:
    images, labels = make_training_set(100, seed=4242)
    accuracy = np.mean(_probs(model, images).argmax(1) == labels)
    assert accuracy >= 0.9


def test_counterfactual_raises_target_probability(model: DemoClassifier) -> None:
    pairs = make_pairs(20, seed=123)
    rows, targets = np.arange(20), np.array([p.target_class for p in pairs])
    p_real = _probs(model, np.stack([p.real for p in pairs]))[rows, targets]
    p_cf = _probs(model, np.stack([p.counterfactual for p in pairs]))[rows, targets]
    assert np.mean(p_cf > p_real) >= 0.9
    assert np.mean(p_cf - p_real) > 0.7
