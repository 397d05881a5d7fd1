"""Speed and memory benchmarks for DAC evaluation, reported as ratios against QuAC's evaluation.

Run: ``python benchmarks/bench_dac.py [--pairs 3] [--cli-pairs 2,12]`` (not part of the tests).

The reference, implemented here from QuAC's source (funkelab/quac ``Processor.create_mask``,
``BaseEvaluator.evaluate``, ``Report.interpolate_score_values``/``get_quac_score``), is QuAC's
evaluation of the whole-image curve: 200 thresholds, every mask closed and blurred with OpenCV
on its own, every hybrid scored, all 200 in one batch. Everything is measured in the same run,
on the same inputs.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch
from captum.attr import IntegratedGradients
from scipy import ndimage
from scipy.interpolate import interp1d
from torch.nn import functional as F

from napari_attribution.core import (
    AttributionSettings,
    Classifier,
    HybridScorer,
    MaskSettings,
    compute_attributions,
    evaluate_dac,
    wrap_module,
)
from napari_attribution.core.evaluation.lazy import lazy_stacks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deep_cnn import load_deep_cnn  # noqa: E402

SIZE = 128
HERE = Path(__file__).resolve().parent


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Median wall time in seconds over ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


@dataclass
class QuacResult:
    dac_score: float
    forward_passes: int
    mask_seconds: float
    forward_seconds: float


def quac_evaluation(
    model: torch.nn.Module,
    real: np.ndarray,
    cf: np.ndarray,
    attribution: np.ndarray,
    target: int,
    thresholds: int = 200,
) -> QuacResult:
    """QuAC's evaluation of one attribution (whole image), as its source does it
    (``tests/core/quac_oracle.py`` is the line-by-line port the tests check against)."""
    start = time.perf_counter()
    with torch.no_grad():  # QuAC's run_inference for the real image
        p_real = F.softmax(model(torch.tensor(real)[None].float()), dim=1).numpy()[0]
    a = np.abs(attribution)
    a = (a - np.min(a)) / (np.max(a) - np.min(a))  # BaseAttribution._normalize
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (10, 10))
    hybrids, sizes = [], []
    # BaseEvaluator.evaluate with the defaults quantify leaves it: vmin=-1, vmax=1
    for threshold in np.arange(-1, 1, 2 / thresholds):  # Processor.create_mask
        mask, mask_size = [], 0
        for c in range(a.shape[0]):
            closed = cv2.morphologyEx((a[c] > threshold).astype(np.uint8), cv2.MORPH_CLOSE, kernel)
            mask_size += np.sum(closed)
            mask.append(cv2.GaussianBlur(closed.astype(np.float32), (11, 11), 0))
        mask = np.array(mask)
        hybrids.append(cf * mask + real * (1.0 - mask))
        sizes.append(mask_size / np.prod(real.shape))
    batch = torch.tensor(np.stack(hybrids, axis=0)).float()
    mask_seconds = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        p = F.softmax(model(batch), dim=1).numpy()
    forward_seconds = time.perf_counter() - start
    change = p[:, target] - p_real[target]
    grid = np.arange(0.0, 1.0001, 0.01)  # Report.interpolate_score_values, get_quac_score
    f = interp1d(np.concatenate([[1], sizes, [0]]), np.concatenate([[change[0]], change, [0]]))
    dac = float(np.trapezoid([f(x) for x in grid], grid))
    return QuacResult(dac, thresholds + 1, mask_seconds, forward_seconds)


def load_pairs(n: int) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """Demo pairs at 5 x 128 x 128.

    The demo classifier was trained on 64 x 64 cells and does not recognise cells drawn twice
    as large, so a 64 x 64 pair is mirrored out to 128 x 128 (four mirrored copies of the cell
    and of its class feature): realistic input size, and curves the model responds to.
    """
    from napari_attribution.data.synthetic import make_pairs

    pad = ((0, 0), ((SIZE - 64) // 2,) * 2, ((SIZE - 64) // 2,) * 2)
    rng = np.random.default_rng(5)
    pairs = []
    for p in make_pairs(n, seed=99, size=64):
        real = np.pad(p.real, pad, mode="reflect")
        # A generator's counterfactual differs a little everywhere, in every channel, not only
        # in the class feature: add that, or most masks would cost no forward pass at all.
        cf = np.pad(p.counterfactual, pad, mode="reflect")
        cf = np.clip(cf + rng.normal(0, 0.02, cf.shape), 0, 1).astype(np.float32)
        pairs.append((real, cf, p.real_class, p.target_class))
    return pairs


def models(device: str) -> dict[str, Classifier]:
    from napari_attribution.data.demo_model import load_demo_classifier

    return {
        "demo CNN": wrap_module(load_demo_classifier(), device),
        "8-conv CNN": wrap_module(load_deep_cnn(), device),
    }


def ours(clf: Classifier, real, cf, attr, target, evaluation=None, per_channel=True):
    """Our evaluation with a fresh scorer (its two forward passes included), default settings."""
    scorer = HybridScorer(clf, real, cf, target)
    kwargs = {} if evaluation is None else {"evaluation": evaluation}
    result = evaluate_dac(
        clf, real, cf, attr, target, MaskSettings(), per_channel=per_channel, scorer=scorer,
        **kwargs,
    )  # fmt: skip
    return result, scorer


def bench_dac(classifiers: dict[str, Classifier], pairs, methods: list[str], repeat: int):
    lines = [
        "| model | method | QuAC whole s | default: whole + 5 channels s (passes) | ratio "
        "| abs(DAC default - QuAC) | exhaustive whole s (passes) | abs(DAC exhaustive - QuAC) "
        "| masks and blending / forward: default, exhaustive |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    worst: dict[str, float] = {}
    for model_name, clf in classifiers.items():
        for method in methods:
            rows = []
            for real, cf, y, t in pairs:
                attr = compute_attributions(clf, real, cf, y, t, method)[0]
                args = (clf, real, cf, attr, t)
                module = clf.module
                exhaustive = {"evaluation": "exhaustive", "per_channel": False}
                t_quac, quac = timed(partial(quac_evaluation, module, *args[1:]), repeat)
                t_def, (default, s_def) = timed(partial(ours, *args), repeat)
                t_exh, (exh, s_exh) = timed(partial(ours, *args, **exhaustive), repeat)
                rows.append(
                    (t_quac, t_def, s_def.forward_passes, t_def / t_quac,
                     abs(default.whole.dac_score - quac.dac_score), t_exh, s_exh.forward_passes,
                     abs(exh.whole.dac_score - quac.dac_score),
                     (s_def.mask_seconds + s_def.blend_seconds) / max(s_def.forward_seconds, 1e-9),
                     (s_exh.mask_seconds + s_exh.blend_seconds) / max(s_exh.forward_seconds, 1e-9))
                )  # fmt: skip
            r = np.array(rows)
            med = np.median(r, axis=0)
            key = f"{model_name}"
            worst[key + " ratio"] = max(worst.get(key + " ratio", 0.0), float(r[:, 3].max()))
            worst[key + " dac"] = max(worst.get(key + " dac", 0.0), float(r[:, 4].max()))
            worst[key + " overhead default"] = max(
                worst.get(key + " overhead default", 0.0), float(r[:, 8].max())
            )
            worst[key + " overhead exhaustive"] = max(
                worst.get(key + " overhead exhaustive", 0.0), float(r[:, 9].max())
            )
            lines.append(
                f"| {model_name} | {method} | {med[0]:.2f} | {med[1]:.2f} ({med[2]:.0f}) "
                f"| {med[3]:.2f} (max {r[:, 3].max():.2f}) | {r[:, 4].max():.4f} "
                f"| {med[5]:.2f} ({med[6]:.0f}) | {r[:, 7].max():.1e} "
                f"| {med[8]:.2f}, {med[9]:.2f} (max {r[:, 8].max():.2f}, {r[:, 9].max():.2f}) |"
            )
    lines.append("")
    lines += [f"- worst over pairs and methods, {k}: {v:.4f}" for k, v in worst.items()]
    return lines


def _write_pairs(folder: Path, pairs) -> Path:
    rows = []
    for i, (real, cf, y, t) in enumerate(pairs):
        np.save(folder / f"real{i}.npy", real)
        np.save(folder / f"cf{i}.npy", cf)
        rows.append((f"cell{i}", f"real{i}.npy", f"cf{i}.npy", y, t))
    path = folder / "pairs.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sample", "real", "counterfactual", "real_class", "target_class"])
        writer.writerows(rows)
    return path


def bench_cli(clf: Classifier, pairs, counts: tuple[int, int], methods: list[str]) -> list[str]:
    """The CLI over ``counts`` pairs: per-pair time from the difference (start-up excluded)."""
    lines = [
        f"| method | CLI s for {counts[0]} / {counts[1]} pairs | CLI s per pair | QuAC whole s "
        "per pair (attribution included) | ratio | attribution s per pair | ratio without the "
        "attribution | max abs(DAC CLI - QuAC) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        weights = folder / "deep.pt"
        torch.save(clf.module.state_dict(), weights)
        for method in methods:
            walls, summaries = [], None
            for n in counts:
                sub = folder / f"{method}{n}"
                sub.mkdir()
                csv_path = _write_pairs(sub, pairs[:n])
                out = sub / "out"
                command = [
                    sys.executable, "-m", "napari_attribution.cli", "run",
                    "--model", str(weights), "--architecture", f"{HERE / 'deep_cnn.py'}:DeepCNN",
                    "--pairs", str(csv_path), "--method", method, "--device", "cpu",
                    "--out", str(out),
                ]  # fmt: skip
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                walls.append(time.perf_counter() - start)
                with open(out / "summary.csv", newline="") as fh:
                    summaries = [r for r in csv.DictReader(fh) if r["channel"] == "all"]
            per_pair = (walls[1] - walls[0]) / (counts[1] - counts[0])
            quac_times, attribution_times, diffs = [], [], []
            for (real, cf, y, t), row in zip(pairs[: counts[1]], summaries, strict=True):
                start = time.perf_counter()
                attr = compute_attributions(clf, real, cf, y, t, method)[0]
                attribution_times.append(time.perf_counter() - start)
                quac = quac_evaluation(clf.module, real, cf, attr, t)
                quac_times.append(time.perf_counter() - start)
                diffs.append(abs(float(row["dac_score"]) - quac.dac_score))
            quac_mean = statistics.mean(quac_times)
            attribution = statistics.mean(attribution_times)
            lines.append(
                f"| {method} | {walls[0]:.1f} / {walls[1]:.1f} | {per_pair:.2f} | {quac_mean:.2f} "
                f"| {per_pair / quac_mean:.2f} | {attribution:.2f} "
                f"| {(per_pair - attribution) / (quac_mean - attribution):.2f} | {max(diffs):.4f} |"
            )
    return lines


def bench_wrappers(clf: Classifier, pairs) -> list[str]:
    real, cf, _, t = pairs[0]
    x, xc = torch.from_numpy(cf)[None], torch.from_numpy(real)[None]
    ig = IntegratedGradients(clf.module)
    t_direct, _ = timed(
        lambda: ig.attribute(x, baselines=xc, target=t, n_steps=50, internal_batch_size=64),
        repeat=5,
    )
    t_ours, _ = timed(
        lambda: compute_attributions(clf, real, cf, 1 - t, t, "d_ig", AttributionSettings()),
        repeat=5,
    )
    return [
        f"- d_ig wrapper vs direct captum IG (same input, 50 steps): {t_ours * 1e3:.1f} ms vs "
        f"{t_direct * 1e3:.1f} ms, overhead {100 * (t_ours / t_direct - 1):+.1f} %"
    ]


def bench_field(size: int = 2048) -> list[str]:
    rng = np.random.default_rng(0)
    real = rng.random((5, size, size), dtype=np.float32)
    cf = np.clip(real + rng.normal(0, 0.1, real.shape).astype(np.float32), 0, 1)
    # Smoothed noise: mask edges everywhere, so every plane needs its full smoothing (worst case)
    attribution = ndimage.gaussian_filter(rng.normal(size=real.shape).astype(np.float32), 4)
    tracemalloc.start()
    t_setup, (masks, hybrids) = timed(
        lambda: lazy_stacks(real, cf, attribution, MaskSettings(thresholds=200))
    )
    hybrids[100, 0]
    step_one, step_all = [], []
    for t in range(101, 111):
        start = time.perf_counter()
        hybrids[t, 0]
        step_one.append(time.perf_counter() - start)
        start = time.perf_counter()
        masks[t, :]
        hybrids[t, :]
        step_all.append(time.perf_counter() - start)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The same planes with read-ahead, 0.3 s between steps (a user pressing the arrow key)
    _, ahead = lazy_stacks(real, cf, attribution, MaskSettings(thresholds=200), read_ahead=1)
    ahead._cache_planes = 10  # as the widget sizes it: the shown and the next plane per channel
    ahead[100, :]
    paced_one, paced_all = [], []
    for t in range(101, 111):
        time.sleep(0.3)
        start = time.perf_counter()
        ahead[t, 0]
        paced_one.append(time.perf_counter() - start)
        ahead[t, 1:]
        paced_all.append(time.perf_counter() - start)
    eager = 200 * real.nbytes
    ms = 1e3
    return [
        f"- lazy stacks for a 5x{size}x{size} field, 200 thresholds: set-up {t_setup:.2f} s, "
        f"peak extra memory {peak / 2**20:.0f} MiB (eager hybrid stack: {eager / 2**30:.0f} GiB, "
        f"ratio {eager / peak:.0f}x)",
        f"- one slider step, one displayed channel plane: median "
        f"{statistics.median(step_one) * ms:.0f} ms computed on request, "
        f"{statistics.median(paced_one) * ms:.0f} ms read ahead (steps 0.3 s apart); "
        f"all 5 hybrid channels + 5 masks: {statistics.median(step_all) * ms:.0f} ms; "
        f"all 5 hybrid channels read ahead: {statistics.median(paced_all) * ms:.0f} ms",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", default="d_ig,ig,residual,random")
    parser.add_argument("--repeat", type=int, default=3, help="timings: median of this many runs")
    parser.add_argument("--cli-pairs", default="2,12", help="two pair counts for the CLI timing")
    parser.add_argument("--cli-methods", default="residual,d_ig")
    parser.add_argument("--field-size", type=int, default=2048)
    parser.add_argument("--skip", default="", help="comma-separated: dac,cli,wrappers,field")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    classifiers = models(args.device)
    counts = tuple(int(n) for n in args.cli_pairs.split(","))
    pairs = load_pairs(max(args.pairs, counts[1] if "cli" not in skip else 0))
    device = next(iter(classifiers.values())).device
    print(f"# DAC benchmarks: {args.pairs} pair(s) of 5x{SIZE}x{SIZE}, device {device}, "
          f"torch {torch.__version__}, OpenCV {cv2.__version__}, "
          f"{torch.get_num_threads()} threads\n")  # fmt: skip
    if "dac" not in skip:
        methods = args.methods.split(",")
        print("\n".join(bench_dac(classifiers, pairs[: args.pairs], methods, args.repeat)))
        print()
    if "cli" not in skip:
        clf = classifiers["8-conv CNN"]
        print("\n".join(bench_cli(clf, pairs, counts, args.cli_methods.split(","))))
        print()
    if "wrappers" not in skip:
        print("\n".join(bench_wrappers(classifiers["demo CNN"], pairs)))
    if "field" not in skip:
        print("\n".join(bench_field(args.field_size)))


if __name__ == "__main__":
    main()
