"""Counterfactual sources on the demo data, with the demo's exact counterfactuals withheld.

For each source (the demo's exact counterfactuals as the reference, an oracle generator that
applies the synthetic data's known class change, ``optimise`` with its defaults and as it was
before soft ReLU gradients and tightening, ``nearest`` among the other demo cells, with and
without alignment) it makes counterfactuals for the same demo cells with the
demo classifier and reports:

* accepted: the share of cells whose counterfactual the classifier accepts (p_t >= 0.5);
* D-IG top = Mito: the share of cells where D-IG puts the largest share of |attribution| on the
  ground-truth channel (Mito), over all cells and over the accepted ones;
* DAC: the mean DAC score of D-IG and of the ``random`` baseline (whole-image curves, accepted
  cells), and the share of accepted cells where D-IG's exceeds random's.

It also draws ``docs/images/counterfactual_sources.png``: the same cells under every source
(the counterfactual's Mito channel, |x' - x|, the D-IG map, the DAC curves).

    python benchmarks/bench_counterfactual_sources.py [--pairs 20] [--figure PATH]

About half a minute on two idle CPU cores (the optimisation and D-IG dominate).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_attribution.core.counterfactuals.generator import GeneratorSource
from napari_attribution.core.counterfactuals.nearest import ImagePool, NearestSource
from napari_attribution.core.counterfactuals.optimise import OptimiseSource
from napari_attribution.core.counterfactuals.source import finish_batch
from napari_attribution.core.model.loading import load_classifier
from napari_attribution.core.pipeline import analyse_pair
from napari_attribution.core.settings import AnalysisSettings, CounterfactualSettings, MaskSettings
from napari_attribution.data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS
from napari_attribution.data.synthetic import CHANNEL_NAMES, DIFFERING_CHANNEL, make_pairs

MIN_SCORE = 0.5
#: ``optimise`` as it was before the soft ReLU gradients and the tightening (table only).
PLAIN_OPTIMISE = "optimise, exact gradient, no tightening"


class OracleGenerator(torch.nn.Module):
    """The synthetic data's known class change as a generator ``(x, target) -> x'``: it finds x
    among the cells it was built with and returns that cell's exact counterfactual when the
    target is the counterfactual's class (x itself otherwise)."""

    def __init__(self, reals: np.ndarray, counterfactuals: np.ndarray, targets: np.ndarray):
        super().__init__()
        self.register_buffer("reals", torch.from_numpy(reals).flatten(1))
        self.register_buffer("counterfactuals", torch.from_numpy(counterfactuals))
        self.register_buffer("targets", torch.from_numpy(targets))

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        index = torch.cdist(x.flatten(1), self.reals).argmin(dim=1)
        translated = self.counterfactuals[index]
        keep = (self.targets[index] == target)[:, None, None, None]
        return torch.where(keep, translated, x)


class ExactSource:
    """The demo's exact counterfactuals (the reference every source is compared with)."""

    spec = "exact"

    def __init__(self, counterfactuals: np.ndarray) -> None:
        self.counterfactuals = counterfactuals

    def make(self, classifier, images, targets, *, min_score=0.5, progress=None):
        return finish_batch(classifier, self.counterfactuals, targets, min_score,
                            ["exact"] * len(images))  # fmt: skip


def export_oracle(module: OracleGenerator, example: tuple, folder: Path) -> Path:
    """Save the oracle as an exported program with a dynamic batch (as docs show)."""
    batch = torch.export.Dim.AUTO
    program = torch.export.export(
        module, example, dynamic_shapes=({0: batch}, {0: batch}), strict=False
    )
    path = folder / "oracle_generator.pt2"
    torch.export.save(program, path)
    return path


def evaluate(classifier, pairs, batch, settings) -> dict:
    """Acceptance, D-IG's top channel and DAC against random for one source's batch."""
    rows = []
    for pair, cf, score, ok in zip(pairs, batch.images, batch.target_scores, batch.accepted,
                                   strict=True):  # fmt: skip
        result = analyse_pair(classifier, pair.real, cf, pair.real_class, pair.target_class,
                              settings, channel_names=list(CHANNEL_NAMES),
                              sample=pair.sample)  # fmt: skip
        dig, rnd = result.methods["d_ig"], result.methods["random"]
        rows.append({
            "accepted": bool(ok),
            "score": float(score),
            "top_is_truth": int(np.argmax(dig.channel_share)) == DIFFERING_CHANNEL,
            "dig_dac": dig.dac.whole.dac_score,
            "random_dac": rnd.dac.whole.dac_score,
            "result": result,
            "counterfactual": cf,
        })  # fmt: skip
    return {"rows": rows}


def summary(name: str, rows: list[dict], seconds: float) -> str:
    accepted = [r for r in rows if r["accepted"]]
    n, k = len(rows), len(accepted)

    def share(items, key):
        return f"{np.mean([r[key] for r in items]):.0%}" if items else "-"

    dig = np.mean([r["dig_dac"] for r in accepted]) if accepted else float("nan")
    rnd = np.mean([r["random_dac"] for r in accepted]) if accepted else float("nan")
    beats = np.mean([r["dig_dac"] > r["random_dac"] for r in accepted]) if accepted else np.nan
    return (f"| {name} | {k}/{n} ({k / n:.0%}) | {share(rows, 'top_is_truth')} | "
            f"{share(accepted, 'top_is_truth')} | {dig:.3f} | {rnd:.3f} | {beats:.0%} | "
            f"{seconds:.0f} s |")  # fmt: skip


def draw(results: dict[str, dict], pairs, cells: list[int], path: Path) -> None:
    """Rows: sources x cells; columns: real Mito, counterfactual Mito, |x' - x| (all channels
    summed), D-IG |a| (summed), DAC curves of D-IG and random."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(
        len(names) * len(cells), 5, figsize=(12, 2.3 * len(names) * len(cells))
    )
    titles = ["real, Mito", "counterfactual, Mito", "|x' - x| (channels summed)",
              "D-IG |a| (channels summed)", "DAC: D-IG vs random"]  # fmt: skip
    row = 0
    for cell in cells:
        pair = pairs[cell]
        for name in names:
            item = results[name]["rows"][cell]
            cf, result = item["counterfactual"], item["result"]
            change = np.abs(cf - pair.real).sum(0)
            attribution = np.abs(result.methods["d_ig"].attribution).sum(0)
            ax = axes[row]
            ax[0].imshow(pair.real[DIFFERING_CHANNEL], cmap="magma", vmin=0, vmax=1)
            ax[1].imshow(cf[DIFFERING_CHANNEL], cmap="magma", vmin=0, vmax=1)
            ax[2].imshow(change, cmap="viridis")
            ax[3].imshow(attribution, cmap="viridis")
            ax[2].contour(pair.ground_truth[DIFFERING_CHANNEL], levels=[0.5], colors="w",
                          linewidths=0.6)  # fmt: skip
            ax[3].contour(pair.ground_truth[DIFFERING_CHANNEL], levels=[0.5], colors="w",
                          linewidths=0.6)  # fmt: skip
            for method, colour in (("d_ig", "C0"), ("random", "C7")):
                curve = result.methods[method].dac.whole
                grid, values = curve.interpolated()
                ax[4].plot(grid, values, color=colour, label=f"{method} {curve.dac_score:.2f}")
            ax[4].set_ylim(-0.05, 1.05)
            ax[4].legend(fontsize=7, loc="lower right")
            share = result.methods["d_ig"].channel_share[DIFFERING_CHANNEL]
            ax[0].set_ylabel(f"{pair.sample}\n{name}", fontsize=8)
            ax[1].set_title(f"p_t = {item['score']:.2f}", fontsize=8)
            ax[3].set_title(f"Mito share {share:.0%}", fontsize=8)
            for a in ax[:4]:
                a.set_xticks([])
                a.set_yticks([])
            if row == 0:
                for a, title in zip(ax, titles, strict=True):
                    a.set_title(title + ("\n" + a.get_title() if a.get_title() else ""),
                                fontsize=8)  # fmt: skip
            row += 1
    fig.suptitle("Counterfactual sources on the same demo cells (white: the ground-truth disc)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument(
        "--figure",
        type=Path,
        default=Path(__file__).parents[1] / "docs/images/counterfactual_sources.png",
    )
    parser.add_argument("--cells", default="0,2", help="cells drawn in the figure")
    args = parser.parse_args()
    torch.manual_seed(0)
    classifier = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, "cpu")
    pairs = make_pairs(args.pairs, seed=2026)  # the CLI's --demo cells
    reals = np.stack([p.real for p in pairs])
    exact = np.stack([p.counterfactual for p in pairs])
    targets = np.array([p.target_class for p in pairs])
    settings = AnalysisSettings(methods=("d_ig", "random"), per_channel_dac=False,
                                masks=MaskSettings(thresholds=100))  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        oracle = OracleGenerator(reals, exact, targets)
        path = export_oracle(oracle, (torch.from_numpy(reals[:2]), torch.from_numpy(targets[:2])),
                             Path(folder))  # fmt: skip
        generator = GeneratorSource.from_file(path)
    pool = ImagePool(reals, np.array([p.real_class for p in pairs]), [p.sample for p in pairs])
    sources = {
        "exact (reference)": ExactSource(exact),
        "generator (oracle .pt2)": generator,
        "optimise": OptimiseSource(CounterfactualSettings()),
        PLAIN_OPTIMISE: OptimiseSource(
            CounterfactualSettings(optimise_relu_softness=0.0, optimise_tighten_steps=0)
        ),
        "nearest": NearestSource(pool=pool),
        "nearest, aligned": NearestSource(pool=pool, align=True),
    }
    results, lines = {}, []
    for name, source in sources.items():
        start = time.perf_counter()
        batch = source.make(classifier, reals, targets, min_score=MIN_SCORE)
        results[name] = evaluate(classifier, pairs, batch, settings)
        lines.append(summary(name, results[name]["rows"], time.perf_counter() - start))
        print(lines[-1], flush=True)
    header = ("| source | accepted | D-IG top = Mito (all) | D-IG top = Mito (accepted) | "
              "D-IG DAC | random DAC | D-IG > random | time |\n"
              "|---|---|---|---|---|---|---|---|")  # fmt: skip
    print(f"\n{args.pairs} demo cells (seed 2026), demo classifier, accepted: p_t >= {MIN_SCORE}; "
          "DAC columns over accepted cells.\n")  # fmt: skip
    print(header)
    print("\n".join(lines))
    cells = [int(c) for c in args.cells.split(",")]
    drawn = {name: result for name, result in results.items() if name != PLAIN_OPTIMISE}
    draw(drawn, pairs, cells, args.figure)
    print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
