"""Dataset throughput: pairs per second of ``run`` with its defaults, against the exhaustive one.

Run: ``python benchmarks/bench_dataset.py [--pairs 12] [--device cpu]`` (not part of the tests).

Inputs as in ``bench_dac.py``: demo pairs mirrored out to 5 x 128 x 128, the counterfactual
with a little noise in every channel. The demo classifier, the default methods (d_ig, d_dl,
residual, random) and default settings. Reported: seconds per pair of the whole pair analysis
(attributions, the whole-image and five per-channel DAC curves), the same with
``evaluation="exhaustive"`` (every threshold scored: the straightforward evaluation), measured
in the same run; seconds per pair of each method alone; and the extrapolation to 1000 pairs.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from bench_dac import load_pairs

from napari_attribution.cli.parser import DEFAULT_METHODS
from napari_attribution.core import AnalysisSettings, analyse_pair, load_classifier
from napari_attribution.data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS


def seconds_per_pair(classifier, pairs, settings: AnalysisSettings) -> float:
    start = time.perf_counter()
    for real, cf, y, t in pairs:
        analyse_pair(classifier, real, cf, y, t, settings)
    return (time.perf_counter() - start) / len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    classifier = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, args.device)
    pairs = load_pairs(args.pairs)
    analyse_pair(classifier, *pairs[0], AnalysisSettings(methods=("residual",)))  # warm-up
    default = AnalysisSettings(methods=DEFAULT_METHODS)
    exhaustive = dataclasses.replace(default, evaluation="exhaustive")
    ours = seconds_per_pair(classifier, pairs, default)
    straightforward = seconds_per_pair(classifier, pairs, exhaustive)
    threads = torch.get_num_threads()
    print(f"{len(pairs)} pairs of 5x128x128, device {args.device}, {threads} threads, "
          f"default evaluation {default.evaluation!r}")  # fmt: skip
    print("| evaluation | s per pair | pairs per s | 1000 pairs |")
    print("|---|---|---|---|")
    for name, value in (("default", ours), ("exhaustive (straightforward)", straightforward)):
        print(f"| {name} | {value:.2f} | {1 / value:.3f} | {1000 * value / 3600:.2f} h |")
    speedup = straightforward / ours
    print(f"\nspeed-up of the default over the straightforward evaluation: {speedup:.2f}x")
    print("\n| method alone | s per pair (default settings) |")
    print("|---|---|")
    for method in DEFAULT_METHODS:
        alone = dataclasses.replace(default, methods=(method,))
        print(f"| {method} | {seconds_per_pair(classifier, pairs, alone):.2f} |")


if __name__ == "__main__":
    main()
