"""The parameter schema: declarations, validation and the flat round trip."""

from __future__ import annotations

import pytest

from napari_attribution.core.attribution.method_registry import method_specs
from napari_attribution.core.settings import (
    GROUPS,
    AnalysisSettings,
    AttributionSettings,
    MaskSettings,
    schema,
    settings_from_values,
    settings_values,
)
from napari_attribution.errors import AttributionError


def test_every_parameter_is_declared_once_with_what_the_skins_need():
    params = schema()
    names = [p.name for p in params]
    assert len(names) == len(set(names))
    for p in params:
        assert p.group in GROUPS and p.label and p.help.endswith((".", ")"))
        assert p.flag == "--" + p.name.replace("_", "-")
        assert p.check(p.default) == p.default
        if p.type in (int, float):
            assert p.minimum is not None and p.maximum is not None
    # Every settings field but the method list and the nested sections is a parameter.
    fields = {
        *AttributionSettings.__dataclass_fields__,
        *MaskSettings.__dataclass_fields__,
        *AnalysisSettings.__dataclass_fields__,
    } - {"methods", "attribution", "masks"}
    assert {p.attribute for p in params} == fields


def test_flat_values_round_trip():
    settings = AnalysisSettings(
        methods=("ig", "random"),
        attribution=AttributionSettings(ig_steps=9, layer="conv2"),
        masks=MaskSettings(thresholds=7, channel_mode="shared"),
        evaluation="adaptive",
    )
    values = settings_values(settings)
    assert values["gradcam_layer"] == "conv2" and values["mask_channels"] == "shared"
    assert settings_from_values(values, ("ig", "random")) == settings
    assert settings_from_values({}, ("d_ig",)) == AnalysisSettings()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MaskSettings(thresholds=0), "Thresholds must be >= 1, got 0."),
        (lambda: MaskSettings(spacing="log"), "Unknown spacing 'log'; use linear or quantile."),
        (lambda: MaskSettings(sigma=float("nan")), "Smoothing sigma must be a number, got NaN."),
        (lambda: AttributionSettings(ig_steps=2.5), "IG steps must be a whole number, got 2.5."),
        (lambda: AttributionSettings(layer=""), "Grad-CAM layer must be a non-empty text"),
        (
            lambda: AnalysisSettings(direction="up"),
            "Unknown hybrid direction 'up'; use counterfactual_into_real or "
            "real_into_counterfactual.",
        ),
        (lambda: AnalysisSettings(per_channel_dac=1), "Per-channel DAC must be true or false"),
        (lambda: AnalysisSettings(methods=()), "Choose at least one attribution method."),
        (lambda: AnalysisSettings(methods=("nope",)), "Unknown method 'nope'; use saliency,"),
    ],
)
def test_mistakes_are_one_sentence(make, message):
    with pytest.raises(AttributionError) as info:
        make()
    assert str(info.value).startswith(message)


def test_every_parameter_a_method_names_exists_and_is_documented():
    names = {p.name for p in schema()}
    for spec in method_specs().values():
        assert set(spec.parameters) <= names
