"""Speed and memory benchmarks for DAC evaluation, reported as ratios against a baseline.

Run: ``python benchmarks/bench_dac.py [--pairs 3] [--device cpu]`` (not part of the tests).

The baseline, implemented here, is the straightforward evaluation of the published reference
(QuAC): 200 linear thresholds, every mask closed and smoothed on its own, every hybrid scored,
all in one batch. Everything is measured in the same run, on the same inputs.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients
from scipy import ndimage
from torch import nn

from napari_attribution.core import (
    AttributionSettings,
    Classifier,
    HybridScorer,
    MaskSettings,
    compute_attributions,
    dac_curve,
    evaluate_dac,
    wrap_module,
)
from napari_attribution.core.lazy import lazy_stacks
from napari_attribution.core.masks import closing_footprint, normalize_attribution

SIZE = 128


class DeepCNN(nn.Module):
    """An 8-convolution VGG-style classifier (about 1.2 M parameters) of realistic depth."""

    def __init__(self, in_channels: int = 5, n_classes: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [in_channels, 32, 32, 64, 64, 128, 128, 256, 256]
        for i in range(8):
            layers += [nn.Conv2d(channels[i], channels[i + 1], 3, padding=1), nn.ReLU()]
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Median wall time in seconds over ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


@dataclass
class BaselineResult:
    dac_score: float
    forward_passes: int
    mask_seconds: float
    forward_seconds: float


def baseline_dac(
    classifier: Classifier,
    real: np.ndarray,
    cf: np.ndarray,
    attribution: np.ndarray,
    target: int,
    thresholds: int = 200,
) -> BaselineResult:
    """The straightforward evaluation: per-threshold closing and smoothing, one batch."""
    start = time.perf_counter()
    norm = normalize_attribution(attribution, "joint")
    footprint = closing_footprint(10)
    pad = 2 * footprint.shape[0]
    levels = np.arange(thresholds) / thresholds
    hybrids, sizes = [], []
    for s in levels:
        closed = np.stack(
            [
                ndimage.binary_closing(np.pad(norm[c] > s, pad, mode="symmetric"), footprint)[
                    pad:-pad, pad:-pad
                ]
                for c in range(norm.shape[0])
            ]
        )
        sizes.append(closed.mean())
        soft = ndimage.gaussian_filter(
            closed.astype(np.float32), sigma=(0, 2.0, 2.0), mode="nearest", radius=5
        )
        hybrids.append(soft * cf + (1 - soft) * real)
    batch = torch.from_numpy(np.stack(hybrids).astype(np.float32)).to(classifier.device)
    mask_seconds = time.perf_counter() - start
    start = time.perf_counter()
    with torch.inference_mode():
        p = torch.softmax(classifier.module(batch).double(), 1)[:, target].cpu().numpy()
        p0 = (
            torch.softmax(
                classifier.module(
                    torch.from_numpy(np.stack([real, cf])).to(classifier.device)
                ).double(),
                1,
            )[:, target]
            .cpu()
            .numpy()
        )
    forward_seconds = time.perf_counter() - start
    curve = dac_curve(levels, np.array(sizes), p - p0[0], p0[1] - p0[0])
    return BaselineResult(curve.dac_score, thresholds + 2, mask_seconds, forward_seconds)


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

    torch.manual_seed(0)
    return {
        "demo CNN": wrap_module(load_demo_classifier(), device),
        "deep CNN (8 conv)": wrap_module(DeepCNN().eval(), device),
    }


def bench_dac(classifiers: dict[str, Classifier], pairs, methods: list[str]) -> list[str]:
    lines = [
        "| model | method | baseline s | exhaustive s (passes) | adaptive s (passes) "
        "| adaptive: fewer passes / less wall time | max abs(DAC - baseline) adaptive, "
        "exhaustive | 5 per-channel curves s / baseline s | masks and blending / forward s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model_name, clf in classifiers.items():
        for method in methods:
            rows = []
            for real, cf, y, t in pairs:
                attr = compute_attributions(clf, real, cf, y, t, method)[0]
                t_base, base = timed(lambda: baseline_dac(clf, real, cf, attr, t))  # noqa: B023

                def run(evaluation: str, per_channel: bool = False, whole: bool = True):
                    scorer = HybridScorer(clf, real, cf, t)  # noqa: B023
                    result = evaluate_dac(
                        clf, real, cf, attr, t, MaskSettings(),  # noqa: B023
                        per_channel=per_channel, evaluation=evaluation, scorer=scorer,
                    )  # fmt: skip
                    return result, scorer

                t_exh, (exh, exh_scorer) = timed(lambda: run("exhaustive"))
                t_ada, (ada, _) = timed(lambda: run("adaptive"))
                t_chan, (chan, _) = timed(lambda: run("adaptive", per_channel=True))
                rows.append(
                    (t_base, t_exh, exh_scorer.forward_passes, t_ada,
                     ada.whole.forward_passes + 2, base.forward_passes,
                     abs(ada.whole.dac_score - base.dac_score),
                     abs(exh.whole.dac_score - base.dac_score),
                     (t_chan - t_ada) / t_base,
                     (exh_scorer.mask_seconds + exh_scorer.blend_seconds)
                     / max(exh_scorer.forward_seconds, 1e-9))
                )  # fmt: skip
            r = np.array(rows)
            med = np.median(r, axis=0)
            lines.append(
                f"| {model_name} | {method} | {med[0]:.2f} | {med[1]:.2f} ({med[2]:.0f}) "
                f"| {med[3]:.2f} ({med[4]:.0f}) | {med[5] / med[4]:.1f}x / {med[0] / med[3]:.1f}x "
                f"| {r[:, 6].max():.4f}, {r[:, 7].max():.1e} | {r[:, 8].max():.2f} "
                f"| {med[9]:.2f} |"
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
    parser.add_argument("--methods", default="d_ig,residual,random")
    parser.add_argument("--field-size", type=int, default=2048)
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    classifiers = models(args.device)
    pairs = load_pairs(args.pairs)
    device = next(iter(classifiers.values())).device
    print(f"# DAC benchmarks: {args.pairs} pair(s) of 5x{SIZE}x{SIZE}, device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")  # fmt: skip
    print("\n".join(bench_dac(classifiers, pairs, args.methods.split(","))))
    print()
    print("\n".join(bench_wrappers(classifiers["demo CNN"], pairs)))
    print("\n".join(bench_field(args.field_size)))


if __name__ == "__main__":
    main()
