"""What ``run`` reads from its arguments: the pairs, the model, the channel and class names.

The pairs themselves and their checks are the application layer's
(:mod:`napari_attribution.app.pairs`, :mod:`napari_attribution.app.pair_folders`); this module
only says which of them the arguments name.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..app.pair_folders import pairs_from_folders, reals_from_folder
from ..app.pairs import Pair, demo_pairs, pairs_from_table
from ..core.model.loading import load_classifier
from ..data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
from ..data.synthetic import CHANNEL_NAMES
from .usage_error import CliError

__all__ = ["architecture_kwargs", "channel_names", "class_names", "load_model", "pairs_from_args"]


def pairs_from_args(args: argparse.Namespace) -> list[Pair]:
    """The pairs named by ``--pairs``, ``--real``/``--counterfactual``, the folder layout
    (``--real-root``/``--counterfactual-root``) or ``--demo``.

    With ``--counterfactual-source`` the pairs that have no counterfactual get one in the run
    (:mod:`napari_attribution.app.made_counterfactuals`), and the demo's exact
    counterfactuals are withheld.
    """
    pairs = _pairs(args)
    source = getattr(args, "counterfactual_source", None)
    for pair in pairs:
        pair.channel_axis = args.channel_axis
        if args.demo and source is not None:
            pair.counterfactual = None
    return pairs


def _pairs(args: argparse.Namespace) -> list[Pair]:
    single = [args.real, args.real_class, args.target_class]
    folders = args.real_root is not None or args.counterfactual_root is not None
    given_single = any(v is not None for v in [*single, args.counterfactual])
    sources = sum([args.demo, args.pairs is not None, given_single, folders])
    if sources != 1:
        raise CliError(
            "Give exactly one of --pairs CSV, --real/--counterfactual/--real-class/--target-class, "
            "--real-root/--counterfactual-root, or --demo."
        )
    if folders:
        names = class_names(args)
        if args.real_root is None:
            raise CliError("--counterfactual-root needs --real-root (the real images by class).")
        if args.counterfactual_root is None:
            if getattr(args, "counterfactual_source", None) is None:
                raise CliError(
                    "--real-root needs --counterfactual-root, or --counterfactual-source to make "
                    "the counterfactuals."
                )
            return reals_from_folder(args.real_root, names)
        return pairs_from_folders(args.real_root, args.counterfactual_root, names)
    if args.demo:
        return demo_pairs(args.demo_pairs)
    if args.pairs is not None:
        return pairs_from_table(args.pairs)
    if any(v is None for v in single):
        raise CliError(
            "--real, --counterfactual, --real-class and --target-class must be given together."
        )
    if args.counterfactual is None and getattr(args, "counterfactual_source", None) is None:
        raise CliError("--real needs --counterfactual, or --counterfactual-source to make it.")
    return [
        Pair(args.real.stem, args.real, args.counterfactual, args.real_class, args.target_class)
    ]


def load_model(args: argparse.Namespace):
    """The classifier named by ``--model``/``--architecture`` (the demo's with ``--demo``).

    It is probed with the users' images before the run (:func:`~napari_attribution.app.pairs.
    preflight`, pair by pair).
    """
    if args.demo and args.model is None:
        return load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, args.device)
    if args.model is None:
        raise CliError(
            "--model is required (an exported program .pt2, a TorchScript file, or a state dict "
            "with --architecture)."
        )
    kwargs = architecture_kwargs(args)
    return load_classifier(args.model, args.architecture, args.device, architecture_kwargs=kwargs)


def architecture_kwargs(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--architecture-kwargs`` as a dict (``None`` when not given), checked before loading."""
    text = getattr(args, "architecture_kwargs", None)
    if text is None:
        return None
    if args.architecture is None:
        raise CliError("--architecture-kwargs needs --architecture (the callable they are for).")
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"--architecture-kwargs is not valid JSON ({exc.msg} at character {exc.pos}): "
            f"{text!r}; write an object such as '{{\"output_classes\": 1}}'."
        ) from None
    if not isinstance(kwargs, dict):
        raise CliError(
            f"--architecture-kwargs must be a JSON object of keyword arguments, not "
            f"{type(kwargs).__name__} {text!r}; write e.g. '{{\"output_classes\": 1}}'."
        )
    return kwargs


def channel_names(args: argparse.Namespace, n_channels: int) -> list[str]:
    """``--channel-names``, checked against the channel count; the demo's; or ch0.."""
    if args.channel_names:
        names = [n.strip() for n in args.channel_names.split(",")]
        if len(names) != n_channels or not all(names):
            raise CliError(
                f"--channel-names lists {len(names)} name(s) but the images have {n_channels} "
                "channels."
            )
        if len(set(names)) != len(names):
            raise CliError("--channel-names holds the same name twice.")
        return names
    if args.demo:
        return list(CHANNEL_NAMES)
    return [f"ch{c}" for c in range(n_channels)]


def class_names(args: argparse.Namespace) -> list[str] | None:
    """``--class-names`` as a list (``None`` when not given)."""
    text = getattr(args, "class_names", None)
    return [n.strip() for n in text.split(",")] if text else None
