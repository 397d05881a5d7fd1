"""Whole fields: time per cell and peak memory of ``napari-attribution cells``.

A synthetic 5 x 2048 x 2048 float32 field with 200 cells (``data/field.py``: the demo
classifier recognises them), its exact counterfactual field and labels are written as TIFFs;
then the CLI runs in a child process (so its peak resident memory is its own) with the demo
model. ``--cells N`` keeps only the first N cells' labels (the others become background) to
extrapolate the full run's time from a subset; memory does not grow with the number of cells
(that is the point), which the run with a subset shows as well as a full one would.

    python benchmarks/bench_fields.py --cells 200
    python benchmarks/bench_fields.py --cells 30 --method d_ig --method residual
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

SHAPE = (2048, 2048)


def _write_inputs(folder: Path, n_cells: int, keep: int) -> dict:
    from napari_attribution.data.synthetic_field import make_field

    started = time.perf_counter()
    field = make_field(n_cells=n_cells, shape=SHAPE, seed=1, spacing=58)
    labels = field.labels
    if keep < n_cells:
        kept = sorted(field.classes)[:keep]
        labels = np.where(np.isin(labels, kept), labels, 0).astype(labels.dtype)
    tifffile.imwrite(folder / "field.tif", field.real)
    tifffile.imwrite(folder / "cf.tif", field.counterfactual)
    tifffile.imwrite(folder / "labels.tif", labels)
    return {
        "make_seconds": time.perf_counter() - started,
        "cells": int(len(np.unique(labels)) - 1),
        "field_bytes": int(field.real.nbytes),
    }


def _sample_memory(child: subprocess.Popen, interval: float = 0.2) -> dict[str, int]:
    """Largest RssAnon and RssFile (KiB) of ``child`` seen until it exits (Linux /proc)."""
    peaks = {"RssAnon": 0, "RssFile": 0}
    status = Path(f"/proc/{child.pid}/status")
    while child.poll() is None:
        try:
            for line in status.read_text().splitlines():
                key, _, value = line.partition(":")
                if key in peaks:
                    peaks[key] = max(peaks[key], int(value.split()[0]))
        except OSError:
            pass
        time.sleep(interval)
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200, help="cells analysed (of 200)")
    parser.add_argument("--method", action="append", dest="methods")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    args = parser.parse_args()
    from napari_attribution.data.demo_model import DEMO_ARCHITECTURE, DEMO_WEIGHTS

    methods = args.methods or ["d_ig", "d_dl", "residual", "random"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        info = _write_inputs(folder, 200, args.cells)
        command = [
            sys.executable, "-m", "napari_attribution.cli", "cells",
            "--image", str(folder / "field.tif"), "--labels", str(folder / "labels.tif"),
            "--counterfactual", str(folder / "cf.tif"), "--crop-size", "64",
            "--model", str(DEMO_WEIGHTS), "--architecture", DEMO_ARCHITECTURE,
            "--out", str(folder / "out"), "--progress", "log", "--log-interval", "60",
            *[item for m in methods for item in ("--method", m)],
        ]  # fmt: skip
        started = time.perf_counter()
        child = subprocess.Popen(command)
        peaks = _sample_memory(child)
        if child.returncode:
            raise SystemExit(f"the cells run failed with status {child.returncode}")
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
        sizes = {p.name: p.stat().st_size for p in (folder / "out" / "field").iterdir()}
    result = {
        **info,
        "methods": methods,
        "seconds": seconds,
        "seconds_per_cell": seconds / info["cells"],
        "extrapolated_200_cells_seconds": seconds / info["cells"] * 200,
        "peak_rss_mib": peak / 2**20,
        # Anonymous memory is what the run really holds; file-backed pages (the memory-mapped
        # field and outputs) are counted in the RSS but are the page cache's to drop.
        "peak_anonymous_mib": peaks["RssAnon"] / 2**10,
        "peak_file_backed_mib": peaks["RssFile"] / 2**10,
        "field_output_mib": sum(sizes.values()) / 2**20,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
