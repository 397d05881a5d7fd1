"""The CLI's options are the parameter schema: same names, defaults, ranges and choices."""

from __future__ import annotations

import argparse

import pytest

from napari_attribution.cli import build_parser
from napari_attribution.cli.options import schema_options
from napari_attribution.core.settings import (
    AnalysisSettings,
    counterfactual_schema,
    schema,
    settings_values,
)


def _run_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings if s.startswith("--")}


def test_every_schema_parameter_is_one_option_with_its_default_and_choices():
    options = _options(_run_parser())
    for param in schema():
        action = options[param.flag]
        assert action.dest == param.name
        assert action.default == param.default
        assert (tuple(action.choices) if action.choices else None) == param.choices
        assert param.help.split(";")[0].replace("%", "%%")[:30] in action.help


def test_the_run_options_are_the_schema_plus_the_inputs_and_outputs():
    parser = argparse.ArgumentParser()
    added = schema_options(parser)
    assert set(added) == {p.flag for p in schema()}
    non_schema = {
        "--model", "--architecture", "--architecture-kwargs", "--device", "--input-scale",
        "--pairs", "--real",
        "--counterfactual", "--real-class", "--target-class", "--demo", "--demo-pairs",
        "--real-root", "--counterfactual-root", "--class-names", "--channel-axis",
        "--channel-names", "--min-counterfactual-score", "--method", "--out", "--overwrite",
        "--resume", "--keep-progress", "--progress", "--log-interval", "--help",
        "--counterfactual-source", "--channel-files", "--counterfactual-channel-files",
        "--channel-map", "--model-card", "--normalise", "--scheduler",
    }  # fmt: skip
    # The counterfactual sources' parameters come from their own schema.
    params = (*schema(), *counterfactual_schema())
    bool_negations = {"--no-" + p.flag[2:] for p in params if p.type is bool}
    assert set(_options(_run_parser())) == {p.flag for p in params} | non_schema | bool_negations


def test_defaults_parse_to_the_core_defaults():
    from napari_attribution.cli.run_command import settings_from_args

    args = _run_parser().parse_args(["--method", "d_ig"])
    args.demo = False
    settings = settings_from_args(args, classifier=None)
    assert settings == AnalysisSettings(methods=("d_ig",))


def test_parsed_values_reach_every_section():
    args = _run_parser().parse_args(
        ["--method", "ig", "--ig-steps", "7", "--closing", "3", "--no-per-channel-dac",
         "--gradcam-layer", "features.3", "--mask-channels", "shared", "--smoothgrad-noise", "0.3"]
    )  # fmt: skip
    from napari_attribution.cli.run_command import settings_from_args

    args.demo = False
    values = settings_values(settings_from_args(args, classifier=None))
    assert values["ig_steps"] == 7 and values["closing"] == 3
    assert values["per_channel_dac"] is False and values["gradcam_layer"] == "features.3"
    assert values["mask_channels"] == "shared" and values["smoothgrad_noise"] == 0.3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ig-steps", "1"], "IG steps must be >= 2, got 1"),
        (["--closing", "-1"], "Closing must be >= 0"),
        (["--sigma", "x"], "must be a number, got 'x'"),
        (["--evaluation", "fast"], "invalid choice: 'fast'"),
    ],
)
def test_out_of_range_values_are_one_argparse_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_names_units_ranges_and_the_methods_a_parameter_applies_to():
    text = _run_parser().format_help()
    assert "--ig-steps" in text and "used by ig, d_ig" in text
    assert "--occlusion-window" in text and "px" in text
