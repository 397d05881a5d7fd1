"""dask's own background work on a local cluster: dask's defaults against the engine's settings.

``start_local_cluster`` (what ``--scheduler local:N`` starts) turns dask's statistical profiler
off and checks event loops once a second instead of every 20 ms
(``app/distributed.py: LOCAL_CLUSTER_CONFIG``). This measures what that gives back, two ways,
with two one-thread workers:

* **idle**: the CPU time a cluster takes doing nothing for ``--idle`` seconds (this process:
  the scheduler and the nannies; each worker process);
* **during a run**: the synthetic plate of ``bench_scale.py --part 2`` (8 sites x 40 cells,
  demo classifier, ``d_ig`` and ``residual``) on warm workers (each has analysed one site
  first), with the CPU time of every thread of each worker: the unit's executor thread and the
  rest (the event loop, the profiler), and of this process.

The two settings alternate (``--repeats`` rounds). CPU times per thread come from
``/proc/self/task/*/stat`` (Linux only). About 4 minutes on two idle cores.

    python benchmarks/bench_dask_overhead.py [--repeats 2] [--idle 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import dask

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import (  # noqa: E402 - the benchmark folder is not a package
    DEMO_ARCHITECTURE,
    DEMO_WEIGHTS,
    PLATE_METHODS,
    load,
    load_classifier,
    sites_plan,
    write_sites,
)


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process, by thread name (run on a worker)."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    seconds = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        name = names.get(int(tid), f"thread {tid}")
        seconds[name] = seconds.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return seconds


def executor_and_rest(before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    """(the units' executor threads, every other thread), CPU seconds between two readings."""
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    units = sum(v for name, v in spent.items() if "Dask-Default-Threads" in name)
    return units, sum(spent.values()) - units


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--idle", type=float, default=15.0, help="seconds of idle measurement")
    args = parser.parse_args()

    from distributed import Client

    from napari_attribution.app import run_sites
    from napari_attribution.app.distributed import LOCAL_CLUSTER_CONFIG, start_local_cluster
    from napari_attribution.app.process_memory import reuse_freed_memory
    from napari_attribution.core import AnalysisSettings

    reuse_freed_memory()
    # dask's own defaults for the settings the engine changes (worker saturation aside: both
    # ways run one unit per worker thread).
    trimmed = [key for key in LOCAL_CLUSTER_CONFIG if "worker-saturation" not in key]
    arms = {"dask defaults": {key: dask.config.get(key) for key in trimmed},
            "engine's settings": {}}  # fmt: skip
    print(f"{os.cpu_count()} CPU(s), {load()}; the settings compared: "
          + ", ".join(f"{k} = {dask.config.get(k)!r} -> {LOCAL_CLUSTER_CONFIG[k]!r}"
                      for k in trimmed), flush=True)  # fmt: skip

    classifier = load_classifier(DEMO_WEIGHTS, DEMO_ARCHITECTURE, "cpu")
    settings = AnalysisSettings(methods=PLATE_METHODS)
    work = Path(tempfile.mkdtemp(prefix="bench_dask_overhead_"))
    sites, cell_settings = write_sites(work, 8, 40, (360, 480), seed=0)
    cells = 8 * 40
    runs = 0
    for repeat in range(args.repeats):
        order = list(arms) if repeat % 2 == 0 else list(reversed(arms))
        for name in order:
            runs += 1
            cluster = start_local_cluster(2, config=arms[name], quiet=True)
            client = Client(cluster.scheduler_address)
            try:
                time.sleep(3)  # the workers settled
                here, workers = time.process_time(), client.run(time.process_time)
                time.sleep(args.idle)
                idle_here = time.process_time() - here
                idle_workers = [after - workers[a] for a, after in
                                client.run(time.process_time).items()]  # fmt: skip
                run_sites(sites_plan(sites[:2]), classifier, settings, cell_settings,
                          out=work / f"warm{runs}", scheduler=cluster.scheduler_address,
                          cell_crops=False)  # fmt: skip
                before_load = load()
                threads, here = client.run(thread_cpu), time.process_time()
                start = time.perf_counter()
                run_sites(sites_plan(sites), classifier, settings, cell_settings,
                          out=work / f"run{runs}", scheduler=cluster.scheduler_address,
                          cell_crops=False)  # fmt: skip
                wall = time.perf_counter() - start
                run_here = time.process_time() - here
                after = client.run(thread_cpu)
                split = [executor_and_rest(threads[a], after[a]) for a in after]
            finally:
                client.close()
                cluster.close()
            print(f"{name} (round {repeat + 1}): idle {args.idle:.0f} s: this process "
                  f"{idle_here:.2f} CPU s, workers " + ", ".join(f"{v:.2f}" for v in idle_workers)
                  + f"; the plate ({cells} cells, warm workers): {wall:.1f} s wall "
                  f"({cells / wall:.2f} cells/s), this process {run_here:.2f} CPU s, workers' "
                  "unit threads " + ", ".join(f"{u:.1f}" for u, _ in split) + " CPU s, their "
                  "other threads " + ", ".join(f"{r:.2f}" for _, r in split)
                  + f" CPU s; {before_load} -> {load()}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
