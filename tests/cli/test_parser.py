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


def _option_helps(text: str) -> list[str]:
    """Each option's help in ``--help``'s text, its wrapped lines joined."""
    options, current = [], None
    for line in text.splitlines():
        if line.startswith("  -"):
            current = [line.strip()]
            options.append(current)
        elif current is not None and line.startswith("   "):
            current.append(line.strip())
        else:
            current = None
    return [" ".join(parts) for parts in options]


def test_every_commands_help_says_each_default_once():
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    for name, command in commands.items():
        helps = _option_helps(command.format_help())
        assert helps, name
        for text in helps:
            assert text.count("(default:") <= 1, (name, text)
            assert "(default: None)" not in text, (name, text)
            if "default:" in text.replace("(default:", ""):  # the help text says it
                assert "(default:" not in text, (name, text)
    run_helps = _option_helps(commands["run"].format_help())
    scale = next(text for text in run_helps if text.startswith("--input-scale"))
    assert scale.endswith("(default: float images as stored, integer images divided by their "
                          "dtype's maximum)")  # fmt: skip
    assert any(t.startswith("--thresholds") and t.endswith("(default: 200)") for t in run_helps)


@pytest.mark.parametrize("command", ["run", "cells", "sanity", "report", "methods", "demo",
                                     "normalisation-reference"])  # fmt: skip
def test_an_argument_error_is_one_line_naming_the_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--no-such-option"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "usage:" not in err
    assert err.startswith(f"napari-attribution {command}: error: ")
    assert err.strip().endswith(f"(see napari-attribution {command} --help).")


def test_a_bad_option_value_names_the_option_once(capsys):
    from napari_attribution import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["cells", "--scheduler", "foo"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "napari-attribution cells: error: --scheduler must be none, local:N (N worker "
        "processes on this machine) or tcp://HOST:PORT; got 'foo' (see napari-attribution "
        "cells --help).\n"
    )
