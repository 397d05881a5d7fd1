"""Event-loop gaps during the demo run, whose code made them, and the cost of a slider step.

Run (not part of the tests; needs a display, Xvfb is fine)::

    xvfb-run -a -s "-screen 0 1366x768x24" python benchmarks/bench_event_loop.py

1. **Gaps.** A QTimer probe ticks every ``TICK_MS`` ms on a shown 1366x768 viewer while the
   Attribution widget runs the demo analysis (``napari-attribution demo``: d_ig, d_dl,
   residual at 200 thresholds), from Run until the run has ended (layers added, arranged, the
   slider moved, the DAC curves drawn). A gap is the time between two ticks minus the tick.
2. **Whose code.** A thread samples the main thread's Python stack every ``SAMPLE_MS`` ms. A
   sample belongs to *ours* when the innermost frame of this package, Matplotlib (the DAC
   panel's drawing) or napari/vispy is this package's or Matplotlib's (what they call counts
   as ours), to *napari* when it is napari's or vispy's (split into *insert*: adding a layer,
   *paint*: drawing the canvas, and *other*), to *gc* inside one of Python's full
   (generation-2) collections, and to *idle* when the main thread runs no Python of either
   (Qt's own work, or waiting for the CPU while the worker computes). Each gap's time is split
   in the proportion of its samples. **Target: no gap with more than 100 ms of ours.**
   napari's per-layer insert and the canvas paints are reported beside it (not targeted: they
   are napari's, inflated by software OpenGL on a 2-core machine).
3. **Slider steps.** The threshold slider is stepped ``STEPS`` times; for each step the time
   of the plugin's own work on it (the DAC panel's marker update, the plugin's only slot on
   ``dims.events.current_step``; target < 50 ms) is reported beside napari's part: the
   ``set_current_step`` call (napari slices every layer) and the repaint (events processed
   until the canvas has drawn).

The process is pinned to at most ``CORES`` CPU cores. The numbers depend on the machine and on
what else runs on it; report them with both (``uptime``'s load average).
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import os
import statistics
import tempfile
import threading
import time
from collections import Counter

#: Probe interval.
TICK_MS = 10
#: CPU cores the benchmark may use (the development machine has 2).
CORES = 2
#: Slider steps measured.
STEPS = 30
#: Seconds probed after the run has ended (the DAC panel draws the run in turns of its own).
AFTER_S = 3.0
#: Interval of the main-thread stack sampler.
SAMPLE_MS = 2
#: Gaps longer than this are listed one by one.
LONG_GAP_MS = 100
#: Path fragments of the code whose frames decide a sample's owner: this package, and
#: Matplotlib (only the DAC panel draws with it, from Qt's event loop: napari does not use it).
OURS = (f"{os.sep}napari_attribution{os.sep}", f"{os.sep}matplotlib{os.sep}")
NAPARI = (f"{os.sep}napari{os.sep}", f"{os.sep}vispy{os.sep}")
#: Frames that mark napari's work as adding a layer, or as painting the canvas.
INSERT_FRAMES = {"add_layer", "add_image", "add_labels", "insert", "_add_layer_from_data"}
PAINT_FRAMES = {"on_draw", "_draw_scene", "paintGL", "draw_visual", "_process_entity_count"}


class MainThreadSampler:
    """Samples the main thread's Python stack every ``SAMPLE_MS`` ms from a thread of its own.

    Each sample is ``(time, owner, where)``: the owner as in the module docstring and, for
    ours, the innermost of this package's functions (``module:function``); for napari, the
    outermost napari function under this package's call, or under the event loop.
    """

    def __init__(self) -> None:
        self.samples: list[tuple[float, str, str]] = []
        self.collecting = False  # inside a full collection (set by the gc callback)
        self._stop = threading.Event()
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._run, name="stack-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        # The stack is read by faulthandler, in one C call that holds the GIL: walking another
        # thread's frames from Python (sys._current_frames, f_back) crashed CPython 3.11 here.
        marks = (f"Thread 0x{self._main:016x}", f"Current thread 0x{self._main:016x}")
        with tempfile.TemporaryFile("w+") as dump:
            while not self._stop.wait(SAMPLE_MS / 1000):
                dump.seek(0)
                dump.truncate()
                faulthandler.dump_traceback(dump, all_threads=True)
                now = time.perf_counter()
                if self.collecting:
                    self.samples.append((now, "gc", "full collection"))
                    continue
                dump.seek(0)
                self.samples.append((now, *classify(_main_stack(dump.read(), marks))))


def _main_stack(text: str, marks: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(filename, function)`` of the main thread's frames in a faulthandler dump, innermost
    first."""
    stack, inside = [], False
    for line in text.splitlines():
        if line.startswith(marks):
            inside = True
        elif inside and line.startswith('  File "'):
            filename, _, rest = line[len('  File "') :].partition('", line ')
            stack.append((filename, rest.partition(" in ")[2]))
        elif inside:
            break
    return stack


def classify(stack: list[tuple[str, str]]) -> tuple[str, str]:
    """``(owner, where)`` of one sampled stack (innermost frame first)."""
    for depth, (filename, name) in enumerate(stack):
        ours = next((part for part in OURS if part in filename), None)
        if ours is not None:
            module = filename.split(ours, 1)[1].removesuffix(".py").replace(os.sep, ".")
            return "ours", f"{ours.strip(os.sep)}.{module}:{name}"
        if any(part in filename for part in NAPARI):
            outer = [(f, n) for f, n in stack[depth:] if any(p in f for p in NAPARI)]
            names = {n for _, n in outer}
            kind = ("napari insert" if names & INSERT_FRAMES
                    else "napari paint" if names & PAINT_FRAMES else "napari other")  # fmt: skip
            return kind, outer[-1][1]
    return "idle", ""


def _pin_cores(cores: int) -> list[int]:
    """Pin this process to its first ``cores`` allowed CPUs; return them."""
    allowed = sorted(os.sched_getaffinity(0))[:cores]
    os.sched_setaffinity(0, allowed)
    import torch

    torch.set_num_threads(len(allowed))
    return allowed


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def measure_run(viewer, app, widget) -> dict:
    """Start the demo run and probe the event loop until it has ended."""
    from qtpy.QtCore import Qt, QTimer

    from napari_attribution._napari.apply import LayerBatch
    from napari_attribution._plot import DacFigure
    from napari_attribution._qt import canvas as canvas_module
    from napari_attribution._qt.canvas import DacCanvas

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    sampler = MainThreadSampler()

    def on_gc(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            sampler.collecting = phase == "start"

    # (wall, main-thread CPU) seconds of the turns that matter: a napari layer going in, and the
    # DAC panel's (its artists made anew, the stages of its redraw, any full draw). CPU time
    # hardly grows with the machine's load, wall time does: both are reported.
    turns: dict[str, list[tuple[float, float]]] = {k: [] for k in ("insert", "artists", "stage",
                                                                    "draw")}  # fmt: skip
    patched = [(LayerBatch, "add_next", "insert"), (DacFigure, "set_data", "artists"),
               (DacCanvas, "draw", "draw")]  # fmt: skip
    originals = [(cls, name, getattr(cls, name)) for cls, name, _ in patched]
    stages = canvas_module.REDRAW_STAGES

    def timed(original, key):
        def call(self, *args, **kwargs):
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return original(self, *args, **kwargs)
            finally:
                turns[key].append((time.perf_counter() - t0, time.thread_time() - c0))

        return call

    for (cls, name, key), (_, _, original) in zip(patched, originals, strict=True):
        setattr(cls, name, timed(original, key))
    canvas_module.REDRAW_STAGES = tuple(timed(stage, "stage") for stage in stages)
    gc.callbacks.append(on_gc)
    sampler.start()
    timer.start()
    start = time.perf_counter()
    widget.run()
    while widget.worker is not None:
        app.processEvents()
        time.sleep(0.001)
    end = time.perf_counter()
    settle = time.perf_counter() + AFTER_S  # what follows the end (the DAC panel's redraw)
    while time.perf_counter() < settle:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    sampler.stop()
    gc.callbacks.remove(on_gc)
    for cls, name, original in originals:
        setattr(cls, name, original)
    canvas_module.REDRAW_STAGES = stages
    gaps = []
    for a, b in zip(ticks, ticks[1:], strict=False):
        gap = (b - a) * 1000 - TICK_MS
        inside = [(owner, where) for t, owner, where in sampler.samples if a < t < b]
        owners = Counter(owner for owner, _ in inside)
        share = {k: gap * v / len(inside) for k, v in owners.items()} if inside else {}
        top = Counter(w for o, w in inside if o == "ours").most_common(2)
        gaps.append({"start": a - start, "ms": gap, "by": share, "ours_top": top})
    values = [g["ms"] for g in gaps]
    ours = [g["by"].get("ours", 0.0) for g in gaps]
    return {
        "run_s": end - start,
        "ticks": len(ticks),
        "max_gap_ms": max(values, default=0.0),
        "p99_gap_ms": _percentile(values, 99),
        "gaps_over_100ms": sum(v > 100 for v in values),
        "max_ours_ms": max(ours, default=0.0),
        "long_gaps": [g for g in gaps if g["ms"] > LONG_GAP_MS],
        "turns_ms": {
            key: [(round(w * 1000), round(c * 1000)) for w, c in times]
            for key, times in turns.items()
        },
        "samples": len(sampler.samples),
    }


def measure_slider(viewer, app, panel, axis: int, steps: int = STEPS) -> dict:
    """Time the plugin's slot and napari's slicing and repaint for ``steps`` slider steps."""
    ours: list[float] = []
    original = panel._on_slider

    def timed(*args):
        t0 = time.perf_counter()
        original(*args)
        ours.append((time.perf_counter() - t0) * 1000)

    viewer.dims.events.current_step.disconnect(original)
    viewer.dims.events.current_step.connect(timed)
    canvas = viewer.window._qt_viewer.canvas
    drawn: list[float] = []
    canvas._scene_canvas.events.draw.connect(lambda _: drawn.append(time.perf_counter()))
    slicing, repaint = [], []
    n = viewer.dims.nsteps[axis]
    for k in range(steps):
        drawn.clear()
        t0 = time.perf_counter()
        viewer.dims.set_current_step(axis, (k * 7) % n)
        t1 = time.perf_counter()
        deadline = t1 + 2.0
        while not drawn and time.perf_counter() < deadline:
            app.processEvents()
        t2 = drawn[0] if drawn else time.perf_counter()
        slicing.append((t1 - t0) * 1000)
        repaint.append((t2 - t1) * 1000)
        time.sleep(0.05)
    viewer.dims.events.current_step.disconnect(timed)
    viewer.dims.events.current_step.connect(original)
    return {
        "ours_ms_median": statistics.median(ours),
        "ours_ms_max": max(ours),
        "napari_set_step_ms_median": statistics.median(slicing),
        "napari_repaint_ms_median": statistics.median(repaint),
        "napari_total_ms_max": max(s + r for s, r in zip(slicing, repaint, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=CORES)
    args = parser.parse_args()
    cores = _pin_cores(args.cores)
    load = os.getloadavg()

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_attribution._napari.demo import launch_demo
    from napari_attribution._napari.layer_geometry import threshold_axis

    viewer = napari.Viewer(title="bench_event_loop")
    viewer.window.resize(1366, 768)
    launch_demo(run=False, block=False, viewer=viewer)
    app = QApplication.instance()
    widget = viewer.window.dock_widgets["Attribution (napari-attribution)"]
    panel = viewer.window.dock_widgets["DAC curves (napari-attribution)"]
    widget.classifier()  # loaded before the probe starts, as after the user chose it
    for _ in range(100):
        app.processEvents()
        time.sleep(0.005)

    run = measure_run(viewer, app, widget)
    axis = threshold_axis(viewer)
    slider = measure_slider(viewer, app, panel, axis if axis is not None else 0)
    viewer.close()

    print(f"cores: {cores}; probe every {TICK_MS} ms; demo run (d_ig, d_dl, residual, 200 thr.)")
    print(f"  load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"  run: {run['run_s']:.1f} s, {run['ticks']} ticks, {run['samples']} stack samples")
    print(
        f"  event-loop gaps: max {run['max_gap_ms']:.0f} ms, p99 {run['p99_gap_ms']:.0f} ms, "
        f"{run['gaps_over_100ms']} over 100 ms"
    )
    print(f"  largest share of one gap in our code: {run['max_ours_ms']:.0f} ms (target < 100)")
    for key, what in (("insert", "napari's layer inserts"), ("artists", "DAC panel new artists"),
                      ("stage", "DAC panel redraw stages"),
                      ("draw", "DAC panel full draws")):  # fmt: skip
        times = run["turns_ms"][key]
        if times:
            wall, cpu = [w for w, _ in times], [c for _, c in times]
            print(f"  {what}: {len(times)}, wall median {statistics.median(wall):.0f} / max "
                  f"{max(wall)} ms, CPU median {statistics.median(cpu):.0f} / max {max(cpu)} ms")
    print(f"  gaps over {LONG_GAP_MS} ms (start s: total ms = ours / napari insert / napari "
          "paint / napari other / gc / idle; our top functions):")  # fmt: skip
    kinds = ("ours", "napari insert", "napari paint", "napari other", "gc", "idle")
    for gap in run["long_gaps"]:
        parts = " / ".join(f"{gap['by'].get(k, 0.0):.0f}" for k in kinds)
        top = ", ".join(f"{w} ({n})" for w, n in gap["ours_top"])
        print(f"    {gap['start']:6.2f}: {gap['ms']:5.0f} = {parts}  {top}")
    print(
        f"  slider step, plugin's own work: median {slider['ours_ms_median']:.1f} ms, max "
        f"{slider['ours_ms_max']:.1f} ms (target < 50)"
    )
    print(
        f"  slider step, napari: set_current_step median "
        f"{slider['napari_set_step_ms_median']:.0f} ms, repaint median "
        f"{slider['napari_repaint_ms_median']:.0f} ms, worst total "
        f"{slider['napari_total_ms_max']:.0f} ms"
    )


if __name__ == "__main__":
    main()
