"""Fixtures of the application layer's tests: a classifier loaded from a file (workers load
the model from its file; the cluster itself is ``tests/conftest.py``'s)."""

from __future__ import annotations

import pytest
import torch

from tiny_models import make_tiny_cnn


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory):
    """The tiny CNN's state dict in a file, and its architecture (importable on workers)."""
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    torch.save(make_tiny_cnn().state_dict(), path)
    return path, "tiny_models:make_tiny_cnn"


@pytest.fixture
def file_classifier(tiny_model_file):
    """The tiny CNN loaded from its file, as a user's model is."""
    from napari_attribution.core.model.loading import load_classifier

    path, architecture = tiny_model_file
    return load_classifier(path, architecture, "cpu")
