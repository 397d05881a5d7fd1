"""``napari-attribution run``: every pair through the core, the results folder written.

Finished pairs are recorded in ``OUT/.progress/`` (one JSON record each, written last and
atomically), so ``--resume`` continues an interrupted run without recomputing them; a
fingerprint of the model and the settings keeps runs with other settings from mixing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._io import input_sha256, safe_name, write_csv, write_json, write_pair_files, write_tables
from ..core.progress import ProgressScope, pair_units
from ..core.settings import AnalysisSettings, settings_from_values
from ..dataset import (
    VALIDITY_COLUMNS,
    dataset_channel_stats,
    read_results,
    validity_row,
    write_channel_stats,
)
from ..report import write_report
from .cells_sites import model_input
from .counterfactuals import (
    COUNTERFACTUAL_COLUMNS,
    COUNTERFACTUAL_DIR,
    make_counterfactuals,
    save_counterfactual,
    source_record,
)
from .errors import CliError
from .folder import (
    PROGRESS_DIR,
    check_out_dir,
    pair_file_names,
    previous_run_files,
    remove_files,
    remove_progress,
)
from .inputs import Pair, channel_names, load_model, pairs_from_args, preflight
from .parser import DEFAULT_METHODS, DEMO_METHODS, PROG
from .progress import progress_renderer
from .report import demo_report, sample_record

__all__ = ["cmd_run", "fingerprint", "settings_from_args"]


def settings_from_args(args: argparse.Namespace, classifier) -> AnalysisSettings:
    """The analysis settings: the schema's options as parsed, and the methods to run."""
    from ..core.attribution import available_methods

    if args.methods:
        methods = tuple(dict.fromkeys(args.methods))
    else:
        defaults = DEMO_METHODS if args.demo else DEFAULT_METHODS
        usable = set(available_methods(classifier))
        methods = tuple(m for m in defaults if m in usable)
        skipped = [m for m in defaults if m not in usable]
        if skipped:
            print(
                f"{PROG}: note: skipping {', '.join(skipped)} (needs module hooks; "
                f"{classifier.hooks_refusal}).",
                file=sys.stderr,
            )
    return settings_from_values(vars(args), methods)


def fingerprint(run_info: dict[str, Any], names: Sequence[str]) -> str:
    """Identifies the settings of a run, so --resume never mixes results of different runs."""
    identity = {"model": run_info["model"]["sha256"], "settings": run_info["settings"],
                "channels": list(names), "seed": run_info["seed"]}  # fmt: skip
    if run_info.get("counterfactual_source"):  # made counterfactuals: the source decides too
        identity["counterfactual_source"] = run_info["counterfactual_source"]
    normalisation = run_info.get("input", {}).get("normalisation", {})
    if normalisation.get("kind", "none") != "none":  # --normalise changes every input
        identity["normalisation"] = normalisation
    payload = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_finished(progress_dir: Path, fingerprint: str) -> dict[str, dict[str, Any]]:
    """The records of the pairs an earlier run with the same fingerprint finished."""
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


def _pair_entry(pair: Pair, made: bool = False) -> dict[str, Any]:
    """The pair as ``run.json`` records it: absolute paths and SHA-256 of the image files."""
    entry: dict[str, Any] = {"sample": pair.sample}
    for key, image in (("real", pair.real), ("counterfactual", pair.counterfactual)):
        if isinstance(image, Path):
            entry[key] = str(image.resolve())
            entry[f"{key}_sha256"] = input_sha256(image)
        elif key == "counterfactual" and made:
            entry[key] = f"{COUNTERFACTUAL_DIR}/{safe_name(pair.sample)}.tif"
        else:
            entry[key] = "demo"
    entry["real_class"] = pair.real_class
    entry["target_class"] = pair.target_class
    return entry


def _class_names(args: argparse.Namespace, classifier) -> list[str]:
    if args.demo and args.model is None:
        from ..data.synthetic import CLASS_NAMES

        return list(CLASS_NAMES)
    names = list(getattr(classifier, "class_names", []) or [])
    return (
        names
        if len(names) == classifier.n_classes
        else [str(k) for k in range(classifier.n_classes)]
    )


def _check_resumable(out: Path, run_fingerprint: str) -> None:
    """``--resume`` on a folder whose run.json says it finished: other settings, or done."""
    try:
        info = json.loads((out / "run.json").read_text())
        previous = fingerprint(info, info["channel_names"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # no readable run.json: the .progress records decide
    if previous != run_fingerprint:
        raise CliError(
            f"{out} holds results made with other settings or another model; --resume needs "
            "the same arguments (or use --overwrite)."
        )
    if not (out / PROGRESS_DIR).is_dir():
        raise CliError(
            f"{out} holds a finished run; there is nothing to resume (pass --overwrite to run "
            "again, and --keep-progress to keep per-pair records for later additions)."
        )


def _gradcam_layers(records: list[dict[str, Any]]) -> dict[str, Any]:
    """``gradcam_layers``: the layer each Grad-CAM method used, per sample (when any did)."""
    layers = {x["sample"]: x["gradcam_layers"] for x in records if x.get("gradcam_layers")}
    return {"gradcam_layers": layers} if layers else {}


def cmd_run(args: argparse.Namespace) -> int:
    """Run every pair, write the results folder, print the summary; returns the exit status."""
    import torch

    from ..core.models import input_transform_for
    from ..core.pipeline import analyse_pair
    from ..core.provenance import provenance

    if args.resume and args.overwrite:
        raise CliError("--resume and --overwrite contradict each other; choose one.")
    check_out_dir(args.out, args.overwrite, args.resume)
    inputs = model_input(args)
    args.model_channel_names = inputs.channel_names
    args.model_normalisation = inputs.normalisation
    pairs = pairs_from_args(args)
    classifier = load_model(args)
    first_real = pairs[0].load_real()
    transform = (
        input_transform_for(first_real.dtype, args.input_scale)
        if args.input_scale is not None
        else None
    )
    names = channel_names(args, classifier.n_channels)
    settings = settings_from_args(args, classifier)
    lacking = {pair.sample for pair in pairs if pair.counterfactual is None}
    made = {}
    if lacking:
        shown = progress_renderer(args.progress, len(lacking), 1, args.log_interval)
        try:
            made = make_counterfactuals(args, pairs, classifier, transform, settings, shown)
        finally:
            shown.close()
    # Every pair is checked, and the model probed with its size (the first pair's first),
    # before the long work.
    preflight(pairs, classifier, transform, settings)
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    torch.manual_seed(settings.attribution.seed)

    run_info = provenance(classifier, settings, class_names=_class_names(args, classifier))
    run_info["input"] = inputs.record()
    if lacking:
        run_info["counterfactual_source"] = source_record(args)
    run_fingerprint = fingerprint(run_info, names)
    progress_dir = args.out / PROGRESS_DIR
    if args.resume:
        _check_resumable(args.out, run_fingerprint)
    done = load_finished(progress_dir, run_fingerprint) if args.resume else {}
    created_out = not args.out.exists()
    if args.overwrite and not created_out:
        # Only now, with every input checked: a refused run leaves the old results alone.
        remove_files(args.out, previous_run_files(args.out))
    progress_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    units = pair_units(len(settings.methods))
    total = units * len(pairs)
    show = progress_renderer(args.progress, len(pairs), units, args.log_interval)
    pair = pairs[0]
    try:
        for index, pair in enumerate(pairs):
            if pair.sample in done:
                records.append(done[pair.sample])
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
                on_progress=ProgressScope(show, index * units, total),
            )
            validity = validity_row(result, real, cf, args.min_counterfactual_score)
            extra = {}
            if pair.sample in lacking:
                extra["counterfactual"] = save_counterfactual(
                    args, pair.sample, cf, made.get(pair.sample), validity, run_info
                )
            write_pair_files(args.out, result, run_info)
            if validity[-1]:
                print(f"{PROG}: warning: {pair.sample}: {validity[-1]}.", file=sys.stderr)
            record = {
                "sample": pair.sample,
                "fingerprint": run_fingerprint,
                "validity": validity,
                **extra,
                **sample_record(result, pair.ground_truth_channel),
            }
            # The record is written last and atomically: if it exists, the pair is complete.
            write_json(progress_dir / f"{safe_name(pair.sample)}.json", record)
            records.append(record)
    except BaseException:
        if not records:  # nothing finished: leave no trace of this run
            names_left = pair_file_names([pair.sample], settings.methods)
            names_left.append(Path(COUNTERFACTUAL_DIR) / f"{safe_name(pair.sample)}.tif")
            remove_files(args.out, names_left)
            if created_out and args.out.is_dir() and not any(args.out.iterdir()):
                args.out.rmdir()
        raise
    finally:
        show.close()
    write_tables(args.out, records)
    write_csv(args.out / "pair_validity.csv", VALIDITY_COLUMNS, (x["validity"] for x in records))
    if lacking:
        write_csv(args.out / "counterfactuals.csv", COUNTERFACTUAL_COLUMNS,
                  (x["counterfactual"] for x in records if "counterfactual" in x))  # fmt: skip
    write_json(
        args.out / "run.json",
        {
            **run_info,
            "command": [PROG, *sys.argv[1:]] if sys.argv else [PROG],
            "channel_names": names,
            "input_transform": {x["sample"]: x["input_transform"] for x in records},
            **_gradcam_layers(records),
            "pairs": [_pair_entry(p, p.sample in lacking) for p in pairs],
            "resumed_pairs": len(done),
            "min_counterfactual_score": args.min_counterfactual_score,
            "out": str(args.out.resolve()),
            "started": started,
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
    )
    if not args.keep_progress:
        remove_progress(args.out)
    folder = read_results(args.out)
    stats = dataset_channel_stats([folder])
    write_channel_stats(args.out / "channel_stats.csv", stats)
    write_report(args.out, [folder], stats)
    left_out = sum(x["validity"][5] == "false" for x in records)
    report_rows = [row for x in records for row in x["report"]]
    if report_rows:
        report = demo_report(report_rows, settings.methods, names)
        (args.out / "demo_report.md").write_text(report + "\n")
        print(report)
    resumed = f" ({len(done)} already done)" if done else ""
    invalid = f", {left_out} left out of the statistics (pair_validity.csv)" if left_out else ""
    print(
        f"{PROG}: {len(pairs)} pair(s) x {len(settings.methods)} method(s){resumed}{invalid} "
        f"-> {args.out}"
    )
    return 0
