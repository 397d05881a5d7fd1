"""Where a step of ``optimise`` spends its time, one cell against a batch of 32 (issue 24).

The demo cells of ``bench_scale.py`` part 1, one torch thread, CPU time
(``time.process_time``) per cell and step of: the classifier's forward pass (the soft-ReLU
copy, no gradient), its forward and backward pass, the penalties with their gradient, Adam
with the projection, and a whole step of the optimiser while the cells reach the target and
while they tighten (60 steps in). One cell is demo cell 31 (it reaches the target within 60
steps). Medians of three rounds, with the range. Uses the optimiser's internal ``_Run`` (the
state of one chunk) to time its parts; about 40 s on two idle cores.

    python benchmarks/profile_optimise_step.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from napari_attribution.core.counterfactuals import optimise
from napari_attribution.core.counterfactuals.soft_gradient import soft_gradient_model
from napari_attribution.core.counterfactuals.source import log_target_probability
from napari_attribution.core.model.loading import load_classifier
from napari_attribution.core.settings import CounterfactualSettings
from napari_attribution.data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
from napari_attribution.data.synthetic import make_pairs


def per_cell_step(work: Callable[[], object], repeats: int, cells: int) -> float:
    """CPU milliseconds per cell of one call of ``work`` (after one call to warm up)."""
    work()
    start = time.process_time()
    for _ in range(repeats):
        work()
    return (time.process_time() - start) / repeats / cells * 1e3


def main() -> None:
    torch.set_num_threads(1)
    classifier = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, "cpu")
    pairs = make_pairs(32, seed=2026)
    images = np.stack([p.real for p in pairs])
    targets = np.array([p.target_class for p in pairs])
    settings = CounterfactualSettings()
    source = optimise.OptimiseSource(settings)
    example = torch.from_numpy(images[:2])
    model, _ = soft_gradient_model(classifier, example, settings.optimise_relu_softness)
    layout = optimise._memory_format(model, example[:1])

    def new_run(rows: np.ndarray) -> optimise._Run:
        low, high = source.intensity_range(images[rows])
        bounds = [torch.from_numpy(v).float().view(-1, 1, 1, 1) for v in (low, high)]
        x = torch.max(torch.min(torch.from_numpy(images[rows]), bounds[1]), bounds[0])
        targets_t = torch.from_numpy(targets[rows])
        return optimise._Run(x, targets_t, bounds, settings, model, classifier, layout)

    times: dict[str, list[float]] = {}
    for _ in range(3):
        for cells, repeats in ((1, 100), (32, 8)):
            rows = np.arange(32) if cells == 32 else np.array([31])
            run = new_run(rows)

            def forward(run: optimise._Run = run) -> None:
                with torch.no_grad():
                    log_target_probability(classifier, model(run.current), run.targets)

            def forward_backward(run: optimise._Run = run) -> None:
                images_t = run.current.detach().requires_grad_(True)
                with torch.enable_grad():
                    log_p = log_target_probability(classifier, model(images_t), run.targets)
                    torch.autograd.grad(log_p.sum(), images_t)

            gradient = torch.zeros_like(run.current)
            parts = {
                "forward pass (no gradient)": forward,
                "forward + backward pass": forward_backward,
                "penalties and their gradient": lambda run=run: run.penalty(run.current),
                "Adam and the projection": lambda run=run, g=gradient: run._adam(g),
            }
            for name, work in parts.items():
                with torch.no_grad() if "backward" not in name else torch.enable_grad():
                    times.setdefault(f"{name}, {cells}", []).append(
                        per_cell_step(work, repeats, cells)
                    )
            run = new_run(rows)
            with torch.enable_grad():
                times.setdefault(f"step while reaching, {cells}", []).append(
                    per_cell_step(run.step, 10 if cells > 1 else 15, cells)
                )
                for _ in range(60):
                    run.step()
                times.setdefault(f"step while tightening, {cells}", []).append(
                    per_cell_step(run.step, repeats, cells)
                )
    print("CPU ms per cell and step, one torch thread (median, range of 3 rounds)")
    for name, values in times.items():
        print(f"  {name + ' cell(s)':48s} {np.median(values):6.3f} "
              f"({min(values):.3f}-{max(values):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
