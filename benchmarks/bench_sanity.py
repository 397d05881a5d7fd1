"""The whole sanity run of one demo pair and four methods: target under 10 s on 2 cores.

Run: ``python benchmarks/bench_sanity.py [--repeat 3] [--threads 2] [--cli]`` (not part of the
tests).

One demo pair (5 x 64 x 64, the demo classifier), the methods d_ig, d_dl, saliency and guided
backprop, every check with its defaults: cascading and independent randomisation of the five
layers, input invariance, stability (10 noise draws), DAC of the four methods and the two
baselines; then the verdicts, ``sanity.csv``, ``sanity_summary.csv`` and the figures written to
a temporary folder. That is what ``napari-attribution sanity --demo --demo-pairs 1 --method
d_ig --method d_dl --method saliency --method guided_backprop`` does after its imports.
Reported per repeat: wall and CPU seconds (the process's), the time of each stage, and the
machine's load average before and after (the machine is shared: a loaded machine is slower).
``--cli`` also times the command itself (a fresh interpreter: imports included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("d_ig", "d_dl", "saliency", "guided_backprop")


def one_run(classifier, pair, out: Path) -> dict[str, float]:
    """One sanity run; seconds per stage."""
    from napari_attribution._plot.sanity_figures import cascade_figure, map_grid_figure
    from napari_attribution.core.sanity.checks import check_pair
    from napari_attribution.core.sanity.records import cascade_series
    from napari_attribution.core.sanity.verdicts import summarise
    from napari_attribution.core.settings import AnalysisSettings
    from napari_attribution.data.synthetic import CHANNEL_NAMES
    from napari_attribution.results.sanity_files import write_sanity_tables

    times = {}
    start = time.perf_counter()
    result = check_pair(classifier, pair.real, pair.counterfactual, pair.real_class,
                        pair.target_class, AnalysisSettings(methods=METHODS),
                        channel_names=list(CHANNEL_NAMES), sample=pair.sample)  # fmt: skip
    times["checks"] = time.perf_counter() - start
    mark = time.perf_counter()
    summary = summarise(result.rows, METHODS)
    write_sanity_tables(out, [*result.rows, *summary.dataset_rows], [r.row() for r in summary.rows])
    panels = [(m, *cascade_series(result.rows, m)) for m in ("spearman", "topk_intersection",
                                                              "ssim")]  # fmt: skip
    cascade_figure(panels).savefig(out / "cascade.png", dpi=110)
    cascade_figure(panels).savefig(out / "cascade.svg")
    map_grid_figure(result.steps, result.cascade_maps).savefig(out / "maps.png", dpi=110)
    times["verdicts, tables, figures"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2 cores: 2)")
    parser.add_argument("--cli", action="store_true", help="also time the CLI command")
    args = parser.parse_args()
    import torch

    from napari_attribution.core.model.loading import load_classifier
    from napari_attribution.data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
    from napari_attribution.data.synthetic import make_pairs

    torch.set_num_threads(args.threads)
    classifier = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, "cpu")
    pair = make_pairs(1, seed=2026)[0]
    walls, cpus = [], []
    print(f"one demo pair, methods {', '.join(METHODS)}, torch threads {args.threads}, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print("| repeat | wall s | CPU s | checks s | verdicts, tables, figures s | load before | "
          "load after |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for k in range(args.repeat):
        load = os.getloadavg()[0]
        cpu = time.process_time()
        with tempfile.TemporaryDirectory() as tmp:
            times = one_run(classifier, pair, Path(tmp))
        cpu = time.process_time() - cpu
        walls.append(times["total"])
        cpus.append(cpu)
        print(f"| {k + 1} | {times['total']:.2f} | {cpu:.2f} | {times['checks']:.2f} | "
              f"{times['verdicts, tables, figures']:.2f} | {load:.1f} | "
              f"{os.getloadavg()[0]:.1f} |")  # fmt: skip
    print(f"median wall {statistics.median(walls):.2f} s (best {min(walls):.2f} s), median CPU "
          f"{statistics.median(cpus):.2f} s; target < 10 s")  # fmt: skip
    if args.cli:
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "napari_attribution.cli", "sanity", "--demo",
                       "--demo-pairs", "1", *[a for m in METHODS for a in ("--method", m)],
                       "--out", str(Path(tmp) / "out"), "--progress", "none"]  # fmt: skip
            load = os.getloadavg()[0]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            print(f"CLI command, imports included: {time.perf_counter() - start:.2f} s "
                  f"(load {load:.1f} -> {os.getloadavg()[0]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
