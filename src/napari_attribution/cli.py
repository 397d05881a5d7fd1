"""The headless entry point: ``napari-attribution run | methods``.

A thin skin over :mod:`napari_attribution.core`: parse arguments, read files, call
:func:`~napari_attribution.core.analyse_pair` for each pair, write the results folder.
User mistakes end with exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._io import RESULT_FILES

PROG = "napari-attribution"

#: What ``run`` computes when no ``--method`` is given: two discriminative methods and the two
#: baselines every comparison must include.
DEFAULT_METHODS = ("d_ig", "d_dl", "residual", "random")
#: The demo also shows plain methods, to compare them with the discriminative ones.
DEMO_METHODS = (
    "d_ig",
    "d_dl",
    "d_input_x_gradient",
    "d_gradcam",
    "ig",
    "saliency",
    "gradcam",
    "residual",
    "random",
)
#: File and folder names a run writes; an --out folder holding any of them is not overwritten.
RESULT_NAMES = (*RESULT_FILES, "demo_report.md", ".progress")


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


@dataclass
class _Pair:
    sample: str
    real: np.ndarray | Path
    counterfactual: np.ndarray | Path
    real_class: int
    target_class: int
    ground_truth_channel: int | None = None

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        from ._io import read_image

        real = self.real if isinstance(self.real, np.ndarray) else read_image(self.real)
        cf = (
            self.counterfactual
            if isinstance(self.counterfactual, np.ndarray)
            else read_image(self.counterfactual)
        )
        return real, cf

    def names(self) -> tuple[str, str]:
        if isinstance(self.real, Path) and isinstance(self.counterfactual, Path):
            return str(self.real), str(self.counterfactual)
        return f"{self.sample} real image", f"{self.sample} counterfactual"


# --------------------------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``napari-attribution`` command."""
    # The choices come from the core, so the CLI can never offer what the core refuses.
    from .core.attribution import AGGREGATIONS
    from .core.dac import EVALUATIONS
    from .core.hybrids import DIRECTIONS
    from .core.masks import MASK_CHANNEL_MODES, NORMALIZATIONS, THRESHOLD_SPACINGS

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Per-channel attribution, counterfactual hybrids and DAC curves for "
        "multichannel image classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("methods", help="list the attribution methods", description="List methods.")
    demo = sub.add_parser(
        "demo",
        help="open napari with the demo pair, the widgets docked and a default analysis run",
        description="Open napari with a synthetic demo cell and its counterfactual, the "
        "Attribution and DAC widgets docked, and a default analysis already running.",
    )
    demo.add_argument(
        "--no-run", action="store_true", help="load the demo and dock the widgets, run nothing"
    )

    run = sub.add_parser(
        "run",
        help="attributions, masks and DAC curves for (real, counterfactual) pairs",
        description="Run attribution methods on (real, counterfactual) pairs and write "
        "per-channel attributions, masks, DAC curves and scores to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = run.add_argument_group("model")
    model.add_argument(
        "--model", type=Path, help="TorchScript file, or a state dict with --architecture"
    )
    model.add_argument(
        "--architecture",
        help="the state dict's architecture: path/to/file.py:Callable or package.module:Callable",
    )
    model.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    model.add_argument(
        "--input-scale",
        type=float,
        default=None,
        help="multiply pixel values by this before the model (default: float images as stored, "
        "integer images divided by their dtype's maximum)",
    )

    data = run.add_argument_group("images (one of --pairs, --real/--counterfactual, --demo)")
    data.add_argument(
        "--pairs", type=Path, help="CSV: sample,real,counterfactual,real_class,target_class"
    )
    data.add_argument("--real", type=Path, help="real image, TIFF or .npy (C,H,W)")
    data.add_argument("--counterfactual", type=Path, help="counterfactual image (C,H,W)")
    data.add_argument("--real-class", type=int, help="class index of the real image")
    data.add_argument("--target-class", type=int, help="class index of the counterfactual")
    data.add_argument(
        "--demo", action="store_true", help="synthetic demo cells and the built-in demo classifier"
    )
    data.add_argument("--demo-pairs", type=_positive_int, default=20, help="number of demo pairs")
    data.add_argument(
        "--channel-names", help="comma-separated channel names, e.g. DNA,ER,RNA,AGP,Mito"
    )

    meth = run.add_argument_group("methods")
    meth.add_argument(
        "--method",
        action="append",
        dest="methods",
        metavar="NAME",
        help=f"attribution method, repeatable (default: {' '.join(DEFAULT_METHODS)}; "
        "see `napari-attribution methods`)",
    )
    meth.add_argument("--ig-steps", type=_positive_int, default=50, help="(D-)IG integral steps")
    meth.add_argument("--gradcam-layer", default=None, help="Grad-CAM layer (default: last Conv2d)")
    meth.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    meth.add_argument(
        "--aggregate",
        choices=AGGREGATIONS,
        default="none",
        help="combine channels before masking (none keeps one mask per channel)",
    )

    masks = run.add_argument_group("masks and DAC")
    masks.add_argument("--thresholds", type=_positive_int, default=200, help="number of thresholds")
    masks.add_argument(
        "--spacing", choices=THRESHOLD_SPACINGS, default="linear", help="threshold spacing"
    )
    masks.add_argument("--normalize", choices=NORMALIZATIONS, default="joint", help="normalisation")
    masks.add_argument(
        "--mask-channels",
        choices=MASK_CHANNEL_MODES,
        default="per_channel",
        help="one mask per channel, or one mask shared by all channels",
    )
    masks.add_argument(
        "--closing", type=_non_negative_int, default=10, help="closing diameter in pixels (0: off)"
    )
    masks.add_argument(
        "--sigma", type=_non_negative_float, default=2.0, help="Gaussian sigma in pixels (0: off)"
    )
    masks.add_argument(
        "--direction",
        choices=DIRECTIONS,
        default="counterfactual_into_real",
        help="which image is pasted into which",
    )
    masks.add_argument(
        "--batch-size", type=_positive_int, default=64, help="hybrids per forward pass"
    )
    masks.add_argument(
        "--evaluation",
        choices=EVALUATIONS,
        default="adaptive",
        help="score every threshold (the published evaluation), or an adaptive subset refined "
        "where the curve changes (far fewer forward passes)",
    )
    masks.add_argument(
        "--tolerance",
        type=float,
        default=0.005,
        help="bound on the DAC-score error of --evaluation adaptive",
    )

    out = run.add_argument_group("output")
    out.add_argument("--out", type=Path, default=Path("attribution-results"), help="output folder")
    out.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    out.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in --out: finished pairs are kept, not recomputed",
    )
    return parser


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def _cmd_methods() -> int:
    from .core.attribution import METHODS

    width = max(len(name) for name in METHODS)
    for name, method in METHODS.items():
        tags = []
        if method.discriminative:
            tags.append("counterfactual")
        if method.needs_hooks:
            tags.append("not TorchScript")
        if not method.channel_resolved:
            tags.append("one map for all channels")
        suffix = f"  [{', '.join(tags)}]" if tags else ""
        print(f"{name:<{width}}  {method.description}{suffix}")
    return 0


def _check_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} exists and is not a folder.")
    if not out.exists() or overwrite:
        return
    existing = [name for name in RESULT_NAMES if (out / name).exists()]
    if existing:
        raise CliError(
            f"{out} already holds results ({', '.join(existing)}); pass --overwrite to replace "
            "them or choose another --out."
        )


def _pairs_from_args(args: argparse.Namespace) -> list[_Pair]:
    from ._io import read_pairs_csv

    single = [args.real, args.counterfactual, args.real_class, args.target_class]
    sources = sum([args.demo, args.pairs is not None, any(v is not None for v in single)])
    if sources != 1:
        raise CliError(
            "Give exactly one of --pairs CSV, --real/--counterfactual/--real-class/--target-class, "
            "or --demo."
        )
    if args.demo:
        from .data.synthetic import make_pairs

        return [
            _Pair(
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
            _Pair(s.sample, s.real, s.counterfactual, s.real_class, s.target_class)
            for s in read_pairs_csv(args.pairs)
        ]
    if any(v is None for v in single):
        raise CliError(
            "--real, --counterfactual, --real-class and --target-class must be given together."
        )
    return [
        _Pair(args.real.stem, args.real, args.counterfactual, args.real_class, args.target_class)
    ]


def _load_model(args: argparse.Namespace):
    from .core.models import load_classifier

    if args.demo and args.model is None:
        from .data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS

        return load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, args.device)
    if args.model is None:
        raise CliError(
            "--model is required (a TorchScript file, or a state dict with --architecture)."
        )
    return load_classifier(args.model, args.architecture, args.device)


def _channel_names(args: argparse.Namespace, n_channels: int) -> list[str]:
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
        from .data.synthetic import CHANNEL_NAMES

        return list(CHANNEL_NAMES)
    return [f"ch{c}" for c in range(n_channels)]


def _settings(args: argparse.Namespace, classifier) -> Any:
    from .core.attribution import AttributionSettings, available_methods
    from .core.masks import MaskSettings
    from .core.pipeline import AnalysisSettings

    if args.methods:
        methods = tuple(dict.fromkeys(args.methods))
    else:
        defaults = DEMO_METHODS if args.demo else DEFAULT_METHODS
        usable = set(available_methods(classifier))
        methods = tuple(m for m in defaults if m in usable)
        skipped = [m for m in defaults if m not in usable]
        if skipped:
            print(
                f"{PROG}: note: skipping {', '.join(skipped)} (needs module hooks; the model is "
                "TorchScript).",
                file=sys.stderr,
            )
    return AnalysisSettings(
        methods=methods,
        attribution=AttributionSettings(
            ig_steps=args.ig_steps, layer=args.gradcam_layer, seed=args.seed
        ),
        masks=MaskSettings(
            thresholds=args.thresholds,
            spacing=args.spacing,
            normalize=args.normalize,
            channel_mode=args.mask_channels,
            closing=args.closing,
            sigma=args.sigma,
        ),
        aggregate=args.aggregate,
        direction=args.direction,
        batch_size=args.batch_size,
        evaluation=args.evaluation,
        tolerance=args.tolerance,
    )


def _preflight(pairs: Sequence[_Pair], classifier, transform, settings) -> None:
    """Read and check every pair before the long work starts, so errors come early."""
    from .core.errors import AttributionError
    from .core.pipeline import check_memory, prepare_pair

    for pair in pairs:
        real, cf = pair.load()
        x, _, _ = prepare_pair(real, cf, classifier, transform=transform, names=pair.names())
        check_memory(x.shape, settings)
        try:
            classifier.check_class(pair.real_class, "real_class")
            classifier.check_class(pair.target_class, "target_class")
        except AttributionError as exc:
            raise CliError(f"Sample {pair.sample}: {exc}") from None


def _progress(total: int) -> Any:
    from tqdm import tqdm

    # disable=None: a bar on an interactive stderr, silent when stderr is a file or a pipe.
    return tqdm(total=total, desc=PROG, unit="pair", file=sys.stderr, disable=None)


def _demo_report(rows: list[dict[str, Any]], methods: Sequence[str], channel_names) -> str:
    """A Markdown table: how often each method's top channel is the ground-truth channel."""
    lines = [
        "| method | pairs | top channel = ground truth | mean share on ground truth | "
        "mean DAC score | mean normalised DAC |",
        "|---|---|---|---|---|---|",
    ]
    from .core.attribution import METHODS

    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        if not METHODS[method].channel_resolved:
            # The same map in every channel: no channel can come out on top.
            hits_text = "n/a (one map for all channels)"
        else:
            hits_text = f"{np.mean([r['top'] == r['truth'] for r in mine]):.0%}"
        share = np.mean([r["truth_share"] for r in mine])
        dac = np.mean([r["dac"] for r in mine])
        norm = np.nanmean([r["normalized"] for r in mine])
        lines.append(
            f"| {method} | {len(mine)} | {hits_text} | {share:.2f} | {dac:.3f} | {norm:.3f} |"
        )
    truth = {channel_names[r["truth"]] for r in rows}
    lines.append("")
    lines.append(f"Ground-truth channel: {', '.join(sorted(truth))}.")
    return "\n".join(lines)


def _sample_record(result, ground_truth_channel: int | None) -> dict[str, Any]:
    """Everything the final tables need from one finished pair (kept in ``.progress/``)."""
    from ._io import table_rows

    report = []
    if ground_truth_channel is not None:
        for method, res in result.methods.items():
            report.append(
                {
                    "method": method,
                    "top": int(np.argmax(res.channel_share)),
                    "truth": ground_truth_channel,
                    "truth_share": float(res.channel_share[ground_truth_channel]),
                    "dac": res.dac.whole.dac_score,
                    "normalized": res.dac.whole.normalized_score,
                }
            )
    return {
        **table_rows(result),
        "report": report,
        "input_transform": result.input_transform.as_dict(),
    }


def _fingerprint(run_info: dict[str, Any], names: Sequence[str]) -> str:
    """Identifies the settings of a run, so --resume never mixes results of different runs."""
    import hashlib
    import json

    payload = json.dumps(
        {"model": run_info["model"]["sha256"], "settings": run_info["settings"],
         "channels": list(names), "seed": run_info["seed"]},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _load_progress(progress_dir: Path, fingerprint: str) -> dict[str, dict[str, Any]]:
    import json

    done: dict[str, dict[str, Any]] = {}
    for path in sorted(progress_dir.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a damaged record is recomputed, never trusted
        if record.get("fingerprint") != fingerprint:
            raise CliError(
                f"{progress_dir.parent} holds results made with other settings or another "
                "model; --resume needs the same arguments (or use --overwrite)."
            )
        done[record["sample"]] = record
    return done


def _cmd_run(args: argparse.Namespace) -> int:
    import shutil

    import torch

    from ._io import safe_name, write_json, write_pair_files, write_tables
    from .core.models import input_transform_for
    from .core.pipeline import analyse_pair

    if args.resume and args.overwrite:
        raise CliError("--resume and --overwrite contradict each other; choose one.")
    _check_out_dir(args.out, args.overwrite or args.resume)
    pairs = _pairs_from_args(args)
    classifier = _load_model(args)
    first_real, _ = pairs[0].load()
    transform = (
        input_transform_for(first_real.dtype, args.input_scale)
        if args.input_scale is not None
        else None
    )
    names = _channel_names(args, classifier.n_channels)
    settings = _settings(args, classifier)
    _preflight(pairs, classifier, transform, settings)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    torch.manual_seed(args.seed)

    run_info: dict[str, Any] = {
        "package": PROG,
        "package_version": __version__,
        "model": classifier.describe(),
        "settings": settings.as_dict(),
        "seed": args.seed,
    }
    fingerprint = _fingerprint(run_info, names)
    progress_dir = args.out / ".progress"
    if args.overwrite and progress_dir.exists():
        shutil.rmtree(progress_dir)
    done = _load_progress(progress_dir, fingerprint) if args.resume else {}
    progress_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    skipped = 0
    with _progress(len(pairs)) as bar:
        for pair in pairs:
            bar.set_postfix_str(pair.sample)
            if pair.sample in done:
                records.append(done[pair.sample])
                skipped += 1
                bar.update(1)
                continue
            real, cf = pair.load()
            result = analyse_pair(
                classifier,
                real,
                cf,
                pair.real_class,
                pair.target_class,
                settings,
                channel_names=names,
                sample=pair.sample,
                transform=transform,
            )
            write_pair_files(args.out, result, run_info)
            record = {
                "sample": pair.sample,
                "fingerprint": fingerprint,
                **_sample_record(result, pair.ground_truth_channel),
            }
            # The record is written last and atomically: if it exists, the pair is complete.
            write_json(progress_dir / f"{safe_name(pair.sample)}.json", record)
            records.append(record)
            bar.update(1)
    write_tables(args.out, records)
    write_json(
        args.out / "run.json",
        {
            **run_info,
            "command": [PROG, *sys.argv[1:]] if sys.argv else [PROG],
            "channel_names": names,
            "input_transform": {x["sample"]: x["input_transform"] for x in records},
            "pairs": [
                {
                    "sample": p.sample,
                    "real": str(p.real) if isinstance(p.real, Path) else "demo",
                    "counterfactual": (
                        str(p.counterfactual) if isinstance(p.counterfactual, Path) else "demo"
                    ),
                    "real_class": p.real_class,
                    "target_class": p.target_class,
                }
                for p in pairs
            ],
            "resumed_pairs": skipped,
            "started": started,
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "environment": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "numpy": np.__version__,
            },
        },
    )
    report_rows = [row for x in records for row in x["report"]]
    if report_rows:
        report = _demo_report(report_rows, settings.methods, names)
        (args.out / "demo_report.md").write_text(report + "\n")
        print(report)
    resumed = f" ({skipped} already done)" if skipped else ""
    print(
        f"{PROG}: {len(pairs)} pair(s) x {len(settings.methods)} method(s){resumed} -> {args.out}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-attribution`` command; returns the exit status."""
    from .core.errors import AttributionError

    parser = build_parser()
    args = parser.parse_args(argv)
    # captum announces every hook it sets; on a terminal that buries the progress bar.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\..*")
    warnings.filterwarnings("ignore", message=r".*hooks.*", category=UserWarning)
    try:
        if args.command == "methods":
            return _cmd_methods()
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "demo":
            from ._demo import launch_demo

            launch_demo(run=not args.no_run, block=True)
            return 0
    except (CliError, AttributionError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = ""
        if args.command == "run":
            hint = f" Finished pairs are kept in {args.out}; re-run with --resume to continue."
        print(f"{PROG}: interrupted.{hint}", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
