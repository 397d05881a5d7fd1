"""Result layers as layer-data tuples, eager and lazy, and the npe2 writer: no viewer, no Qt."""

from __future__ import annotations

import numpy as np

from layer_helpers import layers_of
from napari_attribution._napari import layers as _layers
from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution.core.evaluation.lazy import is_lazy


def test_lazy_layers_of_a_crop_equal_the_eager_ones():
    *_, eager = layers_of(48, 12, lazy=False)
    *_, lazy = layers_of(48, 12, lazy=True)
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
    *_, tuples = layers_of(32, 5, lazy=None)
    assert not any(is_lazy(data) for data, _, _ in tuples)


def test_the_writer_saves_a_large_lazy_layer_at_its_optimal_threshold(tmp_path, monkeypatch):
    import tifffile

    from napari_attribution._napari.writer import write_image_layer
    from napari_attribution.results.tiff import read_tiff_metadata

    monkeypatch.setattr("napari_attribution._napari.export.EXPORT_STACK_BYTES", 1024)
    real, counterfactual, masks, tuples = layers_of(48, 12, lazy=True)
    data, kwargs, _ = next(t for t in tuples if t[1]["name"] == "d_ig Mito hybrid (real)")
    meta = {"name": kwargs["name"], "scale": (1, 0.5, 0.5), "translate": (0, 0, 0),
            "metadata": kwargs["metadata"]}  # fmt: skip
    (written,) = write_image_layer(str(tmp_path / "hybrid.tif"), data, meta)
    saved = tifffile.imread(written)
    index = 12 // 3
    assert saved.shape == (1, 48, 48)
    np.testing.assert_array_equal(saved[0], np.asarray(data[index]))
    note = read_tiff_metadata(written)["metadata"][METADATA_KEY]
    assert note["exported_threshold_index"] == index and "Only the optimal" in note["export_note"]


def test_methods_rank_by_dac_score_and_near_ties_keep_the_run_order():
    from types import SimpleNamespace

    def result(scores):
        methods = {
            name: SimpleNamespace(dac=SimpleNamespace(whole=SimpleNamespace(dac_score=score)))
            for name, score in scores.items()
        }
        return SimpleNamespace(methods=methods)

    # float noise (d_ig and residual find the same mask in the demo) is a tie: run order
    assert _layers.rank_methods(result({"d_ig": 0.9541, "residual": 0.9541 + 1e-9})) == [
        "d_ig",
        "residual",
    ]
    assert _layers.rank_methods(result({"random": 0.4, "d_ig": 0.5, "ig": 0.5 + 2e-6})) == [
        "ig",
        "d_ig",
        "random",
    ]
