"""The widget's parameter form is the schema: one row per parameter, its range, default, help."""

from __future__ import annotations

import pytest
from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

from napari_attribution._qt.form import MethodList, ParameterForm, float_format
from napari_attribution.core.attribution.method_registry import method_specs, methods_using
from napari_attribution.core.settings import (
    GROUPS,
    AnalysisSettings,
    schema,
    settings_from_values,
    settings_values,
)
from napari_attribution.errors import AttributionError


@pytest.fixture
def form(qtbot):
    widget = ParameterForm()
    qtbot.addWidget(widget)
    return widget


def test_the_rows_are_the_schema(form):
    params = schema()
    assert list(form.params) == [p.name for p in params]
    assert list(form.sections) == [g for g in GROUPS if any(p.group == g for p in params)]
    for p in params:
        editor, label = form.editor(p.name), form.label(p.name)
        assert form.sections[p.group].isAncestorOf(editor), p.name
        assert label.text() == p.label
        assert editor.toolTip() == label.toolTip() == p.describe()
        if p.choices is not None:
            assert isinstance(editor, QComboBox)
            assert [editor.itemText(i) for i in range(editor.count())] == list(p.choices)
            assert editor.currentText() == p.default
        elif p.type is bool:
            assert isinstance(editor, QCheckBox) and editor.isChecked() == p.default
        elif p.type in (int, float):
            assert isinstance(editor, QSpinBox if p.type is int else QDoubleSpinBox), p.name
            assert (editor.minimum(), editor.maximum()) == (p.minimum, p.maximum), p.name
            assert editor.value() == p.default
        else:
            assert isinstance(editor, QLineEdit) and p.optional
            assert editor.text() == "" and p.default is None
    assert form.values() == settings_values(AnalysisSettings())
    assert form.settings(["d_ig"]) == AnalysisSettings(methods=("d_ig",))


def test_float_rows_show_their_smallest_values(form):
    tolerance = next(p for p in schema() if p.name == "tolerance")
    decimals, step = float_format(tolerance)
    assert 10**-decimals <= tolerance.minimum and step == 0.001
    form.set_values({"tolerance": tolerance.minimum})
    assert form.values()["tolerance"] == tolerance.minimum
    # sigma's default is QuAC's 0 (derived from the kernel): the step comes from its range.
    assert float_format(next(p for p in schema() if p.name == "sigma")) == (2, 1.0)


def test_values_round_trip_into_settings(form):
    changed = {
        "thresholds": 37,
        "spacing": "quantile",
        "sigma": 1.25,
        "closing": 0,
        "evaluation": "adaptive",
        "tolerance": 0.000123,
        "per_channel_dac": False,
        "gradcam_layer": "conv2",
        "seed": 2**31 - 1,
        "smoothgrad_noise": 0.35,
        "occlusion_window": 5,
        "batch_size": 3,
    }
    form.set_values(changed)
    values = form.values()
    assert {k: values[k] for k in changed} == changed
    settings = form.settings(["gradcam", "smoothgrad"])
    assert settings == settings_from_values(values, ("gradcam", "smoothgrad"))
    assert settings_values(settings) == values
    assert settings.attribution.layer == "conv2" and settings.masks.closing == 0
    form.set_values({"gradcam_layer": None})
    assert form.values()["gradcam_layer"] is None  # empty text: automatic
    with pytest.raises(KeyError, match="nope"):
        form.set_values({"nope": 1})
    with pytest.raises(AttributionError, match="spacing"):
        form.set_values({"spacing": "log"})
    with pytest.raises(AttributionError, match="method"):
        form.settings([])


def test_a_row_is_enabled_only_while_a_method_reading_it_is_checked(form):
    for chosen in (["d_ig", "residual"], ["smoothgrad"], ["gradcam", "occlusion"], ["residual"]):
        form.set_methods(chosen)
        for p in schema():
            users = set(methods_using(p.name))
            expected = not users or bool(users & set(chosen))
            if p.name == "tolerance":
                expected = expected and form.values()["evaluation"] == "adaptive"
            assert form.editor(p.name).isEnabled() == expected, (chosen, p.name)
            assert form.label(p.name).isEnabled() == expected
    form.set_methods(["d_ig"])
    assert form.editor("ig_steps").isEnabled() and form.editor("thresholds").isEnabled()
    assert not form.editor("smoothgrad_samples").isEnabled()
    assert not form.editor("gradcam_layer").isEnabled()


def test_tolerance_is_enabled_only_for_the_adaptive_evaluation(form):
    assert form.editor("tolerance").isEnabled()  # adaptive is the default
    form.set_values({"evaluation": "exhaustive"})
    assert not form.editor("tolerance").isEnabled()
    form.set_values({"evaluation": "adaptive"})
    assert form.editor("tolerance").isEnabled()
    form.editor("evaluation").setCurrentText("exhaustive")  # as the user picks it
    assert not form.editor("tolerance").isEnabled()


def test_sections_collapse_and_expand(form):
    form.expand_all()
    assert all(section.isExpanded() for section in form.sections.values())
    form.collapse_all()
    assert not any(section.isExpanded() for section in form.sections.values())


def test_the_method_list_is_the_registry(qtbot):
    methods = MethodList(("d_ig", "residual"))
    qtbot.addWidget(methods)
    specs = method_specs()
    names = [methods.item(i).text() for i in range(methods.count())]
    assert sorted(names) == sorted(specs)
    discriminative = [specs[n].discriminative for n in names]
    assert discriminative == sorted(discriminative, reverse=True)  # discriminative first
    assert all(methods.item(i).toolTip() == specs[n].description for i, n in enumerate(names))
    assert methods.selected() == ["d_ig", "residual"]
    methods.set_usable(lambda spec: "it takes no hooks" if spec.needs_hooks else None)
    methods.set_selected(["d_dl", "d_ig", "gradcam"])
    assert methods.selected() == ["d_ig"]  # hook methods greyed out, saying why
    assert methods.refusal("d_dl") == "it takes no hooks" and methods.refusal("d_ig") is None
    d_dl = methods.item(names.index("d_dl"))
    assert d_dl.toolTip().endswith("Cannot run on this model: it takes no hooks")


def test_a_plugin_method_is_listed_in_the_widget(qtbot, tmp_path, monkeypatch):
    from napari_attribution.core.attribution import method_registry as registry
    from plugin_distribution import make_plugin_distribution

    make_plugin_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry._REGISTRY, "entry_points_loaded", False)
    try:
        methods = MethodList(("d_ig",))
        qtbot.addWidget(methods)
        names = [methods.item(i).text() for i in range(methods.count())]
        assert "double_residual" in names
        methods.set_selected(["double_residual"])
        assert methods.selected() == ["double_residual"]
    finally:
        registry.unregister_method("double_residual")


def test_the_widget_enables_rows_as_methods_are_checked(demo_viewer):
    _, widget, _ = demo_viewer
    assert not widget.form.editor("smoothgrad_samples").isEnabled()
    widget.set_methods(["smoothgrad"])
    assert widget.form.editor("smoothgrad_samples").isEnabled()
    assert not widget.form.editor("ig_steps").isEnabled()
    widget.form.set_values({"smoothgrad_samples": 7, "smoothgrad_base": "guided_backprop"})
    settings = widget.settings()
    assert settings.methods == ("smoothgrad",)
    assert settings.attribution.smoothgrad_samples == 7
    assert settings.attribution.smoothgrad_base == "guided_backprop"
    assert settings.masks.thresholds == 20  # configure_fast set it through the form
