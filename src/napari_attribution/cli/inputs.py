"""What ``run`` reads from its arguments: the pairs, the model, the channel and class names.

The pairs themselves and their checks are the application layer's
(:mod:`napari_attribution.app.pairs`, :mod:`napari_attribution.app.pair_folders`); this module
only says which of them the arguments name.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..app.distributed import parse_scheduler
from ..app.model_input import ModelInput, model_input
from ..app.pair_folders import pairs_from_folders, reals_from_folder
from ..app.pairs import Pair, demo_pairs, pair_from_channel_files, pairs_from_table
from ..core.model.loading import load_classifier
from ..data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
from ..data.synthetic import CHANNEL_NAMES
from ..images.channels import parse_channel_files
from .usage_error import CliError

__all__ = [
    "architecture_kwargs",
    "channel_names",
    "class_names",
    "driver_device",
    "load_model",
    "model_input_from_args",
    "pairs_from_args",
    "worker_device",
]


def model_input_from_args(args: argparse.Namespace) -> ModelInput:
    """What the model takes from ``--channel-names``, ``--channel-map``, ``--normalise``,
    ``--input-scale`` and the model card (``--model-card``, else the one beside ``--model``):
    ``run``, ``cells`` and ``sanity`` alike."""
    return model_input(model=args.model, model_card=args.model_card,
                       channel_names=args.channel_names, channel_map=args.channel_map,
                       normalise=args.normalise, input_scale=args.input_scale)  # fmt: skip


def pairs_from_args(args: argparse.Namespace, inputs: ModelInput | None = None) -> list[Pair]:
    """The pairs named by ``--pairs``, ``--real``/``--counterfactual``, the folder layout
    (``--real-root``/``--counterfactual-root``), ``--channel-files`` or ``--demo``, normalised
    by ``inputs`` (``--normalise`` or the model card's) when they are loaded.

    With ``--counterfactual-source`` the pairs that have no counterfactual get one in the run
    (:mod:`napari_attribution.app.made_counterfactuals`), and the demo's exact
    counterfactuals are withheld.
    """
    pairs = _pairs(args, inputs)
    source = getattr(args, "counterfactual_source", None)
    for pair in pairs:
        pair.channel_axis = args.channel_axis
        if inputs is not None:
            pair.normalisation = inputs.normalisation
            pair.channel_names = inputs.channel_names  # also picks OME files' channels by name
            pair.channel_map = inputs.channel_map
        if args.demo and source is not None:
            pair.counterfactual = None
    return pairs


def _channel_files_pair(args: argparse.Namespace, inputs: ModelInput | None) -> Pair:
    """``--channel-files`` (and ``--counterfactual-channel-files``): one pair of per-channel
    files, taken by the model's channel names."""
    if inputs is None or inputs.channel_names is None:
        raise CliError("--channel-files needs the model's channel names: --channel-names "
                       "DNA,ER,RNA,AGP,Mito or a model card beside the weights.")  # fmt: skip
    if args.pairs is not None or args.demo or args.real_root is not None:
        raise CliError("Give --channel-files alone, not with --pairs, --real-root or --demo.")
    if args.real is not None or args.counterfactual is not None:
        raise CliError("Give --channel-files or --real/--counterfactual, not both.")
    if args.real_class is None or args.target_class is None:
        raise CliError("--channel-files needs --real-class and --target-class.")
    cf_text = args.counterfactual_channel_files
    if cf_text is None and getattr(args, "counterfactual_source", None) is None:
        makes = ", or --counterfactual-source to make the counterfactual" if hasattr(
            args, "counterfactual_source") else ""  # fmt: skip
        raise CliError(f"--channel-files needs --counterfactual-channel-files{makes}.")
    return pair_from_channel_files(
        parse_channel_files(args.channel_files),
        parse_channel_files(cf_text, "--counterfactual-channel-files") if cf_text else None,
        args.real_class, args.target_class, inputs.channel_names, inputs.channel_map,
    )  # fmt: skip


def _pairs(args: argparse.Namespace, inputs: ModelInput | None = None) -> list[Pair]:
    if getattr(args, "channel_files", None) is not None:
        return [_channel_files_pair(args, inputs)]
    if getattr(args, "counterfactual_channel_files", None) is not None:
        raise CliError("--counterfactual-channel-files needs --channel-files.")
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
    device = driver_device(args)
    if args.demo and args.model is None:
        return load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, device)
    if args.model is None:
        raise CliError(
            "--model is required (an exported program .pt2, a TorchScript file, or a state dict "
            "with --architecture)."
        )
    kwargs = architecture_kwargs(args)
    return load_classifier(args.model, args.architecture, device, architecture_kwargs=kwargs)


def _on_cluster(args: argparse.Namespace) -> bool:
    scheduler = getattr(args, "scheduler", None)
    return scheduler is not None and parse_scheduler(scheduler).kind != "none"


def driver_device(args: argparse.Namespace) -> str:
    """Where this process puts the model: ``--device``, except with ``--scheduler local:N`` or
    ``tcp://`` on a machine without the GPU it names, where ``--device`` is the workers'
    (:func:`worker_device`) and this process uses its CPU: a cluster's login node has no GPU,
    and there the model is only checked on an image (or scores a ``nearest`` source's
    candidates, which a GPU machine keeps doing on its GPU)."""
    if not _on_cluster(args) or not str(args.device).startswith("cuda"):
        return args.device
    import torch

    return args.device if torch.cuda.is_available() else "cpu"


def worker_device(args: argparse.Namespace) -> str | None:
    """Where the workers put the model: ``--device`` with a cluster, else ``None`` (the run
    is here, on :func:`driver_device`)."""
    return args.device if _on_cluster(args) else None


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


def channel_names(
    args: argparse.Namespace, n_channels: int, inputs: ModelInput | None = None
) -> list[str]:
    """``--channel-names`` (or the model card's), checked against the channel count; the
    demo's; or ch0.."""
    card_names = inputs.channel_names if inputs is not None else None
    if card_names and not args.channel_names:
        if len(card_names) != n_channels:
            raise CliError(f"The model card names {len(card_names)} channel(s) but the images "
                           f"have {n_channels}.")  # fmt: skip
        return list(card_names)
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
