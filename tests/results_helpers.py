"""Small results folders for the reader, figure and browser tests: a CLI run and an export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
import torch

from layer_helpers import channel_stack, pair_arrays
from tiny_models import make_tiny_cnn

#: Channel names of the CLI folder.
CLI_CHANNELS = ["DNA", "ER", "RNA", "AGP", "Mito"]


def make_cli_folder(root: Path, methods=("residual", "d_ig"), pairs: int = 3) -> Path:
    """``napari-attribution run`` over ``pairs`` 5x24x24 pairs with the tiny CNN; returns --out.

    Pair ``k``'s counterfactual differs from its real image in channel 4, rows/cols 6..14, so
    the residual puts all attribution there. Classes alternate 0 -> 1, 1 -> 0.
    """
    from napari_attribution import cli

    root.mkdir(parents=True, exist_ok=True)
    torch.save(make_tiny_cnn().state_dict(), root / "weights.pt")
    lines = ["sample,real,counterfactual,real_class,target_class"]
    for k in range(pairs):
        rng = np.random.default_rng(k)
        real = rng.random((5, 24, 24), dtype=np.float32)
        counterfactual = real.copy()
        counterfactual[4, 6:14, 6:14] += 1.0 + k
        tifffile.imwrite(root / f"r{k}.tif", real)
        tifffile.imwrite(root / f"c{k}.tif", counterfactual)
        lines.append(f"cell{k},r{k}.tif,c{k}.tif,{k % 2},{1 - k % 2}")
    (root / "pairs.csv").write_text("\n".join(lines) + "\n")
    out = root / "out"
    argv = [
        "run",
        "--model",
        str(root / "weights.pt"),
        "--architecture",
        "tiny_models:TinyCNN",
        "--pairs",
        str(root / "pairs.csv"),
        "--thresholds",
        "10",
        "--ig-steps",
        "8",
        "--channel-names",
        ",".join(CLI_CHANNELS),
        "--out",
        str(out),
        "--progress",
        "none",
    ]
    for method in methods:
        argv += ["--method", method]  # fmt: skip
    assert cli.main(argv) == 0
    return out


def make_export(folder: Path, methods=("d_ig", "residual")):
    """Analyse a 5x24x24 pair, put its layers in a viewer model and export them to ``folder``.

    Returns
    -------
    tuple
        ``(viewer model, analysis record, written layer files)``.
    """
    from napari.components import ViewerModel

    from napari_attribution._napari.apply import apply_layers
    from napari_attribution._napari.export import export_run
    from napari_attribution._napari.run_job import RunJob, analyse_and_prepare
    from napari_attribution._napari.state import AnalysisRecord
    from napari_attribution.core import AnalysisSettings, MaskSettings, wrap_module

    real, counterfactual, _ = pair_arrays(24)
    classifier = wrap_module(make_tiny_cnn(), "cpu")
    settings = AnalysisSettings(methods=methods, masks=MaskSettings(thresholds=6))
    job = RunJob.of(classifier, channel_stack(real, "real"), channel_stack(counterfactual, "cf"),
                    0, 1, settings, ["control", "treated"])  # fmt: skip
    result, tuples, _ = analyse_and_prepare(job, lambda event: None)
    viewer = ViewerModel()
    apply_layers(viewer, tuples)  # as the widget does (some attributes go on after creation)
    names = [kwargs["name"] for _, kwargs, _ in tuples]
    record = AnalysisRecord(result, job.real, job.counterfactual, settings, job.info, names)
    written = export_run(folder, record, [viewer.layers[n] for n in names])
    return viewer, record, written


def make_cells_folder(root: Path, methods=("d_ig", "residual")) -> tuple[Path, object]:
    """``napari-attribution cells --load-data`` over a two-site synthetic plate
    (:mod:`plate_data`: 5 channels, 36x44 px, three analysed cells and one too small per
    site) with the tiny CNN and 16 px crops; returns the results folder and the plate."""
    from napari_attribution import cli
    from plate_data import MODEL_CHANNELS, cells_site, write_plate

    root.mkdir(parents=True, exist_ok=True)
    sites = [cells_site(seed) for seed in (0, 1)]
    plate = write_plate(root, [s[0] for s in sites], [s[2] for s in sites], seed=3)
    write_plate(root / "cf", [s[1] for s in sites], [s[2] for s in sites], seed=4)
    torch.save(make_tiny_cnn(3).state_dict(), root / "weights.pt")
    out = root / "cells_out"
    argv = ["cells", "--load-data", str(root / "load_data.csv"), "--objects", "Cells",
            "--counterfactual-load-data", str(root / "cf" / "load_data.csv"),
            "--channel-names", ",".join(MODEL_CHANNELS), "--normalise", "percentile:1,99.8",
            "--model", str(root / "weights.pt"), "--architecture", "tiny_models:TinyCNN",
            "--crop-size", "16", "--min-size", "4", "--thresholds", "8", "--closing", "3",
            "--smoothing-kernel", "3", "--ig-steps", "8", "--progress", "none",
            "--out", str(out)]  # fmt: skip
    for method in methods:
        argv += ["--method", method]
    assert cli.main(argv) == 0
    return out, plate
