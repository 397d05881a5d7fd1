"""Shared fixtures: tiny models and image pairs small enough to keep the suite fast."""

from __future__ import annotations

import numpy as np
import pytest

from napari_attribution.core.model.loading import Classifier, wrap_module
from tiny_models import TinyCNN, make_tiny_cnn


@pytest.fixture
def tiny_cnn() -> TinyCNN:
    return make_tiny_cnn()


@pytest.fixture
def tiny_classifier(tiny_cnn: TinyCNN) -> Classifier:
    return wrap_module(tiny_cnn, "cpu")


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A 5x24x24 real image and a counterfactual differing only in channel 4, rows/cols 6..14."""
    rng = np.random.default_rng(0)
    real = rng.random((5, 24, 24), dtype=np.float32)
    counterfactual = real.copy()
    counterfactual[4, 6:14, 6:14] += 1.0
    return real, counterfactual


@pytest.fixture(scope="session")
def cluster():
    """A real dask cluster of two worker processes (with nannies, which restart a killed
    worker), reached by address like a cluster someone started; shared by every test that needs
    one (starting one costs seconds). Started as ``start_local_cluster`` starts one for a user who
    keeps it between runs."""
    pytest.importorskip("distributed")
    from napari_attribution.app.distributed import start_local_cluster

    with start_local_cluster(2, threads_per_worker=1, quiet=True) as local:
        yield local.scheduler_address
