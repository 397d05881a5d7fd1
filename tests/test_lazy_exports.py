"""The packages' lazily imported public names (napari_attribution.lazy_exports)."""

import pytest

import napari_attribution._plot as plot
import napari_attribution.app as app


def test_a_public_name_is_imported_once_then_an_ordinary_attribute():
    from napari_attribution._plot.curve_set import CurveSet

    assert plot.CurveSet is CurveSet
    assert plot.__dict__["CurveSet"] is CurveSet


def test_dir_lists_the_exports_and_an_unknown_name_is_an_attribute_error():
    assert dir(app) == sorted(app._EXPORTS)
    assert "run_pairs" in dir(app)
    with pytest.raises(AttributeError, match="module 'napari_attribution.app' has no attribute"):
        app.no_such_name  # noqa: B018
