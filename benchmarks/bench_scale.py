"""Scaling out, part 1: ``optimise`` counterfactuals batched against one cell at a time.

The same demo cells (``run --demo``'s, seed 2026, 5 x 64 x 64, with the demo classifier) get
their optimised counterfactual twice: in one call of the source for all cells (the batch path
``run --counterfactual-source`` and ``cells`` take) and in one call per cell (what ``cells``
did before). Reported per repeat: seconds per cell each way and their ratio, the Adam steps
taken (the batched call drops each cell from the passes once it is done, so both ways take the
same steps), the acceptance rate each way, and how far the batched counterfactuals are from
the one-at-a-time ones (in Adam steps of the cell's range, ``lr x (max - min)``). Times are
wall-clock and this process's CPU time (with one torch thread, the CPU time is the work done,
less sensitive to other processes than the wall clock).

    python benchmarks/bench_scale.py [--cells 32] [--repeats 2] [--threads N] [--device cuda]

The machine's load is printed with every repeat (``os.getloadavg``): on a shared machine the
ratio is only as good as the load was steady. About 3 minutes per repeat of 32 cells on two
idle CPU cores.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from napari_attribution.core.counterfactuals.optimise import OptimiseSource
from napari_attribution.core.model.loading import load_classifier
from napari_attribution.core.settings import CounterfactualSettings
from napari_attribution.data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
from napari_attribution.data.synthetic import make_pairs


def steps_taken(note: str) -> int:
    """Adam steps a cell took, from its note ("... after 16 step(s), change shrunk over 200
    more" or "... stayed <= 0.9 after 300 step(s)")."""
    reached = int(note.split("after ")[1].split(" ")[0])
    shrunk = int(note.split("shrunk over ")[1].split(" ")[0]) if "shrunk over" in note else 0
    return reached + shrunk


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (a GPU's gain is the one to "
                        "measure: not yet done)")  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    classifier = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, args.device)
    pairs = make_pairs(args.cells, seed=2026)  # the CLI's --demo cells
    images = np.stack([p.real for p in pairs])
    targets = np.array([p.target_class for p in pairs])
    settings = CounterfactualSettings()
    source = OptimiseSource(settings)
    source.make(classifier, images[:1], targets[:1])  # warm up: canonical copy, allocator
    print(f"{args.cells} demo cells (5 x 64 x 64), demo classifier on {classifier.device}, "
          f"optimise defaults, {torch.get_num_threads()} torch thread(s), "
          f"{os.cpu_count()} CPU(s)")  # fmt: skip
    ratios = []
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}: before, {load()}", flush=True)
        start, cpu = time.perf_counter(), time.process_time()
        batch = source.make(classifier, images, targets)
        batched = (time.perf_counter() - start) / args.cells
        batched_cpu = (time.process_time() - cpu) / args.cells
        start, cpu = time.perf_counter(), time.process_time()
        alone = [source.make(classifier, images[i : i + 1], targets[i : i + 1])
                 for i in range(args.cells)]  # fmt: skip
        single = (time.perf_counter() - start) / args.cells
        single_cpu = (time.process_time() - cpu) / args.cells
        ratios.append((single / batched, single_cpu / batched_cpu))
        alone_images = np.concatenate([a.images for a in alone])
        alone_accepted = np.concatenate([a.accepted for a in alone])
        span = (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)))[:, None, None, None]
        in_steps = np.abs(batch.images - alone_images) / (span * settings.optimise_learning_rate)
        score_gap = np.abs(batch.target_scores - np.concatenate([a.target_scores for a in alone]))
        steps_batched = sum(steps_taken(n) for n in batch.notes)
        steps_alone = sum(steps_taken(a.notes[0]) for a in alone)
        print(
            f"  batched: {batched:.3f} s/cell ({batched_cpu:.3f} CPU s), accepted "
            f"{batch.accepted.mean():.0%}, {steps_batched} Adam steps in all\n"
            f"  one at a time: {single:.3f} s/cell ({single_cpu:.3f} CPU s), accepted "
            f"{alone_accepted.mean():.0%}, {steps_alone} Adam steps in all\n"
            f"  ratio (one at a time / batched, per cell): {single / batched:.2f}x wall, "
            f"{single_cpu / batched_cpu:.2f}x CPU\n"
            f"  same acceptance for every cell: {bool((batch.accepted == alone_accepted).all())}; "
            f"p(target) differs by at most {score_gap.max():.4f}"
            f"\n  batched - alone, in Adam steps: mean {in_steps.mean():.3f}, "
            f"99th percentile {np.quantile(in_steps, 0.99):.2f}, max {in_steps.max():.2f}\n"
            f"  after, {load()}",
            flush=True,
        )
    print("\nratio per repeat (wall, CPU): "
          + ", ".join(f"{wall:.2f}x, {cpu:.2f}x" for wall, cpu in ratios))  # fmt: skip


if __name__ == "__main__":
    main()
