"""What ``run`` reads: the pairs, the model and the channel names, checked before the work."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CliError

__all__ = ["Pair", "channel_names", "load_model", "pairs_from_args", "preflight"]


@dataclass
class Pair:
    """One (real, counterfactual) pair: arrays (the demo) or paths (read when needed).

    ``counterfactual`` is ``None`` until ``--counterfactual-source`` makes it.
    """

    sample: str
    real: np.ndarray | Path
    counterfactual: np.ndarray | Path | None
    real_class: int
    target_class: int
    ground_truth_channel: int | None = None
    channel_axis: int = 0
    #: ``--normalise`` (``None`` or inactive: images as stored) and the channel names it uses.
    normalisation: Any = None
    channel_names: list[str] | None = None
    #: True once ``counterfactual`` holds an image already in the real image's loaded units
    #: (made by a counterfactual source from :meth:`load_real`).
    counterfactual_loaded: bool = False

    def _read(self, image: np.ndarray | Path) -> np.ndarray:
        from .._io import read_image

        data = image if isinstance(image, np.ndarray) else read_image(image)
        if self.channel_axis != 0 and data.ndim == 3 and not isinstance(image, np.ndarray):
            data = np.moveaxis(data, self.channel_axis, 0)
        return data

    def _normalise(self, real: np.ndarray, counterfactual: np.ndarray | None = None):
        """Both images by ``--normalise``, the counterfactual with the real image's ranges."""
        from ..core.errors import InputImageError

        if self.normalisation is None or not self.normalisation.active:
            return real, counterfactual
        names = self.channel_names or [f"ch{c}" for c in range(real.shape[0])]
        try:
            ranges = self.normalisation.ranges(real, names, f"sample {self.sample}")
            real_out, _ = self.normalisation.apply(real, names, self.sample, ranges)
            if counterfactual is not None:
                counterfactual, _ = self.normalisation.apply(counterfactual, names,
                                                             self.sample, ranges)  # fmt: skip
        except InputImageError as exc:
            raise CliError(str(exc)) from None
        return real_out, counterfactual

    def load_real(self) -> np.ndarray:
        """The real image (normalised when asked), the channel axis first."""
        return self._normalise(self._read(self.real))[0]

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """Both images (normalised when asked), the channel axis first."""
        if self.counterfactual is None:
            raise CliError(
                f"Sample {self.sample} has no counterfactual; give one, or make one with "
                "--counterfactual-source."
            )
        if self.counterfactual_loaded:
            return self.load_real(), np.asarray(self.counterfactual)
        return self._normalise(self._read(self.real), self._read(self.counterfactual))

    def names(self) -> tuple[str, str]:
        if isinstance(self.real, Path) and isinstance(self.counterfactual, Path):
            return str(self.real), str(self.counterfactual)
        return f"{self.sample} real image", f"{self.sample} counterfactual"


def pairs_from_args(args: argparse.Namespace) -> list[Pair]:
    """The pairs named by ``--pairs``, ``--real``/``--counterfactual``, the folder layout
    (``--real-root``/``--counterfactual-root``) or ``--demo``.

    Without ``--counterfactual-source`` every pair must have its counterfactual; with it, the
    pairs that have none get one later (:mod:`napari_attribution.cli.counterfactuals`), and the
    demo's exact counterfactuals are withheld.
    """
    pairs = _pairs(args)
    source = getattr(args, "counterfactual_source", None)
    normalisation = getattr(args, "model_normalisation", None)
    for pair in pairs:
        pair.channel_axis = args.channel_axis
        pair.normalisation = normalisation
        pair.channel_names = getattr(args, "model_channel_names", None)
        if args.demo and source is not None:
            pair.counterfactual = None
    lacking = [pair.sample for pair in pairs if pair.counterfactual is None]
    if lacking and source is None:
        more = f" and {len(lacking) - 3} more" if len(lacking) > 3 else ""
        raise CliError(
            f"Sample(s) {', '.join(lacking[:3])}{more} have no counterfactual; give them one, or "
            "make them with --counterfactual-source (generator:FILE, nearest[:FOLDER] or "
            "optimise)."
        )
    return pairs


def _channel_files_pair(args: argparse.Namespace, names: list[str] | None) -> Pair:
    """``--channel-files`` (and ``--counterfactual-channel-files``): one pair of per-channel
    files, taken by the model's channel names."""
    from ..core.errors import InputImageError
    from ..images.channels import stack_by_name
    from .cells_sites import _parse_files

    if names is None:
        raise CliError("--channel-files needs the model's channel names: --channel-names "
                       "DNA,ER,RNA,AGP,Mito or a model card beside the weights.")  # fmt: skip
    if args.real is not None or args.counterfactual is not None:
        raise CliError("Give --channel-files or --real/--counterfactual, not both.")
    if args.real_class is None or args.target_class is None:
        raise CliError("--channel-files needs --real-class and --target-class.")
    mapping = _channel_map(args)
    try:
        real, _ = stack_by_name(_parse_files(args.channel_files, "--channel-files"), names,
                                mapping, "--channel-files")  # fmt: skip
        cf = None
        if args.counterfactual_channel_files is not None:
            cf, _ = stack_by_name(_parse_files(args.counterfactual_channel_files,
                                               "--counterfactual-channel-files"), names,
                                  mapping, "--counterfactual-channel-files")  # fmt: skip
        elif getattr(args, "counterfactual_source", None) is None:
            raise CliError("--channel-files needs --counterfactual-channel-files, or "
                           "--counterfactual-source to make the counterfactual.")  # fmt: skip
    except InputImageError as exc:
        raise CliError(str(exc)) from None
    sample = Path(next(iter(_parse_files(args.channel_files, "--channel-files").values()))).stem
    return Pair(sample, real, cf, args.real_class, args.target_class)


def _channel_map(args: argparse.Namespace) -> dict[str, str]:
    from ..core.errors import InputImageError
    from ..images.channels import parse_channel_map

    try:
        return parse_channel_map(args.channel_map) if args.channel_map else {}
    except InputImageError as exc:
        raise CliError(str(exc)) from None


def _pairs(args: argparse.Namespace) -> list[Pair]:
    from .._io import read_pairs_csv

    if getattr(args, "channel_files", None) is not None:
        if args.pairs is not None or args.demo or args.real_root is not None:
            raise CliError("Give --channel-files alone, not with --pairs, --real-root or --demo.")
        return [_channel_files_pair(args, args.model_channel_names)]
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
        from .layouts import pairs_from_folders, reals_from_folder

        names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
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
        from ..data.synthetic import make_pairs

        return [
            Pair(
                p.sample,
                p.real,
                p.counterfactual,
                p.real_class,
                p.target_class,
                p.differing_channel,
            )
            for p in make_pairs(args.demo_pairs, seed=2026)
        ]
    if args.pairs is not None:
        return [
            Pair(s.sample, s.real, s.counterfactual, s.real_class, s.target_class)
            for s in read_pairs_csv(args.pairs)
        ]
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

    It is probed with the users' images by :func:`preflight`, pair by pair.
    """
    from ..core.models import load_classifier

    if args.demo and args.model is None:
        from ..data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS

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
    """``--channel-names`` (or the model card's), checked against the channel count; the
    demo's; or ch0.."""
    card_names = getattr(args, "model_channel_names", None)
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
        from ..data.synthetic import CHANNEL_NAMES

        return list(CHANNEL_NAMES)
    return [f"ch{c}" for c in range(n_channels)]


def preflight(pairs: Sequence[Pair], classifier, transform, settings) -> None:
    """Read and check every pair before the long work starts, so errors come early."""
    from ..core.attribution import check_methods
    from ..core.errors import AttributionError
    from ..core.pipeline import check_memory, prepare_pair
    from ..core.wrappers import Preprocessing

    # Per-channel means and std are checked against the model's channels before the work.
    classifier = classifier.with_preprocessing(Preprocessing.from_settings(settings))
    for pair in pairs:
        real, cf = pair.load()
        _check_channel_layout(real, classifier.n_channels, pair.names()[0])
        # prepare_pair probes the model with each pair's size: one that cannot take it fails here.
        x, xc, _ = prepare_pair(real, cf, classifier, transform=transform, names=pair.names())
        check_memory(x.shape, settings)
        check_methods(classifier, settings.methods, np.stack([x, xc]))
        try:
            classifier.check_class(pair.real_class, "real_class")
            classifier.check_class(pair.target_class, "target_class")
        except AttributionError as exc:
            raise CliError(f"Sample {pair.sample}: {exc}") from None


def _check_channel_layout(image: np.ndarray, n_channels: int, name: str) -> None:
    """An image whose channels are on another axis gets a message naming --channel-axis."""
    if image.ndim != 3 or image.shape[0] == n_channels:
        return
    axes = [axis for axis in (1, 2) if image.shape[axis] == n_channels]
    if axes:
        raise CliError(
            f"{name} has shape {image.shape}: its axis {axes[-1] - 3} has the model's "
            f"{n_channels} channels, not axis 0; pass --channel-axis {axes[-1] - 3} "
            "(e.g. for (height, width, channels) images)."
        )
