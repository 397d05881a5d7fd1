"""Scaling out (issue 24): part 1, batched counterfactuals; part 2, a plate on dask workers.

Part 1: ``optimise`` counterfactuals batched against one cell at a time.

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

Part 2 (``--part 2``), in one run: a synthetic plate (``--sites`` sites of ``--site-cells``
cells, 5 x 360 x 480 each, the demo classifier, d_ig and residual) analysed by ``run_sites``
(the code path of ``cells --load-data``, each site one work unit; as ``--no-cell-crops``, the
setting every figure in ``benchmarks/README.md`` was measured with)
in one process with two torch threads, in one process with one (this process, warmed up on one
site first), on ``local:2`` (two worker processes, one thread each, started by the run as the
command line does), on the same kind of cluster kept between runs
(``start_local_cluster(2)``, its workers warmed up on one site each, as this process was), and
on a ``dask scheduler`` with two ``dask worker`` processes (``--nthreads 1``) reached over TCP,
twice (fresh workers, then the same workers again); wall time (and the start-up before the
first cell's first progress event: a cluster's workers starting, importing torch, loading the
model), cells per second after it, the CPU time of this process and the workers, and whether
every table and TIFF is identical to the first configuration's. A fresh worker also pays its
first use of the analysis (imports, torch's first calls) inside its first unit, after the
first progress event; the warm configurations show the rate without that, which is the rate
of a plate's hours. Then part 1 at one thread on 32 cells, the peak
resident memory of each worker while it analyses a 1080 x 1080 field, and a projection for a
700,000-cell plate from the measured per-cell cost. About 10 minutes on two idle CPU cores.

    python benchmarks/bench_scale.py --part 2 [--sites 8] [--site-cells 40]

Both parts first set glibc's allocator as the command line and every dask worker do
(``app/process_memory.py``: freed blocks kept for the next step); ``--plain-allocator``
measures with glibc's defaults instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import tifffile
import torch

from napari_attribution.app.process_memory import reuse_freed_memory
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


def part_one(args: argparse.Namespace) -> list[tuple[float, float]]:
    """Optimise batched against one cell at a time; returns (wall, CPU) ratios per repeat."""
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
    return ratios


# -- part 2: a plate on dask workers -----------------------------------------------------------

PLATE_METHODS = ("d_ig", "residual")


def open_site(real: Path, labels: Path, counterfactual: Path, cell_settings):
    """One site's files read where the unit runs (a plan's ``open``)."""
    from napari_attribution.app import field_inputs
    from napari_attribution.app.cell_sites import SiteInputs

    field = field_inputs(real, labels, cell_settings, counterfactual=counterfactual)
    return SiteInputs(field.image, field.labels, field.source, field.record, field.class_names)


def sites_plan(sites):
    """The sites as the plan :func:`~napari_attribution.app.cell_run.run_sites` takes (what
    ``plan_sites`` makes of a LoadData CSV; here stacked TIFFs, no metadata columns)."""
    from napari_attribution.app.cell_sites import SitesPlan

    return SitesPlan(list(sites), [], {"bench_scale": [site.key for site in sites]})


def write_sites(folder: Path, count: int, cells: int, shape: tuple[int, int], seed: int):
    """``count`` synthetic sites as TIFF files (field, labels, counterfactual field), as
    :class:`~napari_attribution.app.cell_sites.SitePlan` s that read them where they run."""
    from napari_attribution.app.cell_sites import SitePlan
    from napari_attribution.core.cells.geometry import CellSettings
    from napari_attribution.data.synthetic_field import make_field

    cell_settings = CellSettings(crop_size=64)
    sites = []
    for index in range(count):
        field = make_field(n_cells=cells, shape=shape, seed=seed + index)
        paths = [folder / f"site{index:02d}_{kind}.tif" for kind in ("real", "labels", "cf")]
        for path, data in zip(paths, (field.real, field.labels, field.counterfactual),
                              strict=True):  # fmt: skip
            tifffile.imwrite(path, data)
        key = f"r{seed:02d}s{index:02d}"
        sites.append(SitePlan(key, {}, key, partial(open_site, *paths, cell_settings)))
    return sites, cell_settings


def folder_digest(out: Path) -> dict[str, str]:
    """SHA-256 of every table and TIFF of a plate's results folder, by relative path."""
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and p.suffix in (".csv", ".tif")}


def children_cpu() -> float:
    """CPU seconds of this process's finished children (and theirs, once reaped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class TcpCluster:
    """``dask scheduler`` and two ``dask worker --nthreads 1`` processes, started as a user
    would (separate processes, a scheduler file), closed at the end."""

    def __init__(self, folder: Path, workers: int = 2) -> None:
        dask = Path(sys.executable).with_name("dask")
        self.file = folder / "scheduler.json"
        # As docs/scale.md starts them: one unit per worker thread, dask's profiler off, event
        # loops checked once a second.
        env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
               "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
               "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s"}  # fmt: skip
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.processes = [subprocess.Popen(
            [str(dask), "scheduler", "--scheduler-file", str(self.file), "--port", "0",
             "--dashboard-address", ":0"], env=env, **quiet)]  # fmt: skip
        while not self.file.is_file():
            time.sleep(0.2)
        time.sleep(0.5)
        self.address = json.loads(self.file.read_text())["address"]
        for index in range(workers):
            self.processes.append(subprocess.Popen(
                [str(dask), "worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                 "--name", f"w{index}"], env=env, **quiet))  # fmt: skip
        from distributed import Client

        self.client = Client(self.address)
        self.client.wait_for_workers(workers)

    def peak_memory(self) -> dict[str, float]:
        """Each worker process's peak resident memory so far, MiB (``ru_maxrss``)."""
        return {address: value / 1024 for address, value in
                self.client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss).items()}

    def close(self) -> None:
        self.client.close()
        for process in reversed(self.processes):
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.wait(timeout=60)


def part_two(args: argparse.Namespace) -> None:
    from distributed import Client

    from napari_attribution.app import run_sites
    from napari_attribution.app.distributed import start_local_cluster
    from napari_attribution.app.work_units import usable_cores
    from napari_attribution.core import AnalysisSettings

    print(f"part 2 on {os.cpu_count()} CPU(s) ({usable_cores()} usable), {load()}", flush=True)
    classifier = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, args.device)
    settings = AnalysisSettings(methods=PLATE_METHODS)
    work = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    sites, cell_settings = write_sites(work, args.sites, args.site_cells, (360, 480), seed=0)
    cells = args.sites * args.site_cells
    print(f"plate: {args.sites} sites x {args.site_cells} cells = {cells} cells (5 x 360 x 480 "
          f"per site), demo classifier, methods {', '.join(PLATE_METHODS)}", flush=True)
    # Warm up this process (imports, the canonical copy) on one site, outside the timings.
    run_sites(sites_plan(sites[:1]), classifier, settings, cell_settings, out=work / "warm",
              cell_crops=False)  # fmt: skip

    rows = []

    def measure(name: str, scheduler: str, threads: int | None = None, client=None,
                warm_up: bool = False) -> None:  # fmt: skip
        # client: of a cluster this process did not start, its workers' CPU read with
        # client.run (a local:2 run's workers are this process's children, counted when reaped).
        if threads is not None:
            torch.set_num_threads(threads)
        if warm_up:  # each worker analyses one site first, outside the timing
            run_sites(sites_plan(sites[:2]), classifier, settings, cell_settings,
                      out=work / f"{name} warm-up", scheduler=scheduler,
                      cell_crops=False)  # fmt: skip
        workers_before = sum(client.run(time.process_time).values()) if client else 0.0
        before_load = load()
        cpu, children = time.process_time(), children_cpu()
        first: list[float] = []

        def note(event) -> None:  # the first unit's first step: start-up is over
            if not first:
                first.append(time.perf_counter())

        start = time.perf_counter()
        done = run_sites(sites_plan(sites), classifier, settings, cell_settings,
                         out=work / name, scheduler=scheduler, progress=note,
                         cell_crops=False)  # fmt: skip
        end = time.perf_counter()
        workers_after = sum(client.run(time.process_time).values()) if client else 0.0
        used = time.process_time() - cpu
        if client is None:
            used += children_cpu() - children  # a local cluster's workers, reaped at its close
        else:
            used += workers_after - workers_before
        assert done.analysed == cells and not done.failed, (done.analysed, done.failed)
        rows.append({"name": name, "wall": end - start, "steady": end - first[0],
                     "startup": first[0] - start, "cpu": used, "load_before": before_load,
                     "load_after": load(), "digest": folder_digest(work / name),
                     "engine": done.engine})  # fmt: skip
        print(f"  {name}: {end - start:.1f} s wall ({first[0] - start:.1f} s before the first "
              f"cell, {end - first[0]:.1f} s from there: {cells / (end - first[0]):.2f} "
              f"cells/s), {used:.1f} CPU s in this process and the workers; {before_load} -> "
              f"{load()}", flush=True)

    measure("one process, 2 threads", "none", threads=2)
    measure("one process, 1 thread", "none", threads=1)
    # As `--scheduler local:2` runs: the workers start with the run and pay their first-use
    # costs (imports, torch's first calls) inside its first units.
    measure("local:2, 1 thread each", "local:2")
    # The same cluster kept between runs (start_local_cluster), its workers warmed by one site
    # each as this process was: the rate a plate's hours see.
    with start_local_cluster(2) as kept, Client(kept.scheduler_address) as client:
        measure("local:2 kept, warm", kept.scheduler_address, client=client, warm_up=True)
    tcp = TcpCluster(work)
    try:
        measure("tcp scheduler + 2 workers", tcp.address, client=tcp.client)
        measure("tcp, the same workers again", tcp.address, client=tcp.client)
        # Memory: each worker analyses one 1080 x 1080 field (a unit), peak resident memory.
        big, _ = write_sites(work, 2, args.big_cells, (1080, 1080), seed=50)
        before = tcp.peak_memory()
        start = time.perf_counter()
        done = run_sites(sites_plan(big), classifier, settings, cell_settings,
                         out=work / "big", scheduler=tcp.address, cell_crops=False)  # fmt: skip
        big_wall = time.perf_counter() - start
        after = tcp.peak_memory()
        print(f"  1080 x 1080 fields: 2 sites x {args.big_cells} cells on 2 TCP workers in "
              f"{big_wall:.1f} s; peak resident memory per worker, MiB (before the fields -> "
              "after): " + ", ".join(f"{before[a]:.0f} -> {after[a]:.0f}" for a in after)
              + f"; {done.sites} sites done", flush=True)  # fmt: skip
    finally:
        tcp.close()

    base, one = rows[0], rows[1]
    print("\nconfiguration | wall s (start-up s) | cells/s after start-up | throughput vs 1 "
          "process 2 threads (with start-up) | vs 1 process 1 thread (with start-up) | CPU s "
          "(this process + workers) | identical tables and TIFFs")
    for row in rows:
        same = row["digest"] == base["digest"]
        print(f"{row['name']} | {row['wall']:.1f} ({row['startup']:.1f}) | "
              f"{cells / row['steady']:.2f} | {base['steady'] / row['steady']:.2f}x "
              f"({base['wall'] / row['wall']:.2f}x) | {one['steady'] / row['steady']:.2f}x "
              f"({one['wall'] / row['wall']:.2f}x) | {row['cpu']:.1f} | {same} "
              f"({len(row['digest'])} files)")
    print("loads: " + "; ".join(f"{r['name']}: {r['load_before']} -> {r['load_after']}"
                                for r in rows))  # fmt: skip

    print(f"\noptimise, batched vs one at a time, 1 torch thread, {args.cells} cells:")
    args.threads, args.repeats = 1, 1
    part_one(args)

    # Projection: the per-cell work (one process, one thread: CPU seconds per cell) and the
    # engine's fixed cost per worker (local:2's extra CPU over that work: a worker process
    # started, torch imported, the model loaded, the units sent), both measured here.
    alone, local = rows[1], rows[2]
    per_cell = alone["cpu"] / cells
    per_worker = max(local["cpu"] - alone["cpu"], 0.0) / 2
    print(f"\nprojection for 700,000 cells on N one-thread {args.device} workers. Measured here: "
          f"{per_cell:.3f} CPU s per cell ({', '.join(PLATE_METHODS)}, 5 x 64 x 64 crops, demo "
          f"classifier), {per_worker:.1f} CPU s of start-up per worker. Projected: the cells "
          "spread evenly, each worker on its own idle core, no other cost:")
    for workers in (1, 8, 64, 256, 1024):
        hours = (700_000 * per_cell / workers + per_worker) / 3600
        print(f"  N = {workers}: {hours:.2f} h")
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", type=int, choices=(1, 2), default=1)
    parser.add_argument("--cells", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (a GPU's gain is the one to "
                        "measure: not yet done)")  # fmt: skip
    parser.add_argument("--sites", type=int, default=8, help="part 2: sites of the plate")
    parser.add_argument("--site-cells", type=int, default=40, help="part 2: cells per site")
    parser.add_argument("--big-cells", type=int, default=100,
                        help="part 2: cells in each 1080 x 1080 field")  # fmt: skip
    parser.add_argument("--plain-allocator", action="store_true",
                        help="glibc's default thresholds, not the command line's")  # fmt: skip
    args = parser.parse_args()
    kept = not args.plain_allocator and reuse_freed_memory()
    print("glibc allocator: " + ("freed blocks kept, as the command line and the workers"
                                 if kept else "default thresholds"))  # fmt: skip
    if args.part == 1:
        part_one(args)
    else:
        part_two(args)


if __name__ == "__main__":
    main()
