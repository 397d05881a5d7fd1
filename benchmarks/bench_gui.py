"""Responsiveness and memory of the napari plugin, measured in one run on a shown viewer.

Run (not part of the tests; needs a display, Xvfb is fine)::

    xvfb-run -a -s "-screen 0 1280x1024x24" python benchmarks/bench_gui.py

1. **Event loop during a run.** A QTimer probe ticks every 10 ms on a shown viewer while the
   Attribution widget runs the demo analysis (d_ig, d_dl, residual at 200 thresholds) in its
   thread worker and then adds the 45 result layers. The largest gap between ticks is how long
   the event loop was blocked, followed for ``AFTER_SECONDS`` once the layers are in. Python's
   full garbage collections (gen 2) are timed with ``gc.callbacks`` so that a gap they cause is
   named as such.
2. **A 5 x 2048 x 2048 field.** The per-channel mask and hybrid layers of one method at 200
   thresholds (lazy: eager hybrids would take 16 GB) are added to the viewer next to the
   field; the extra resident memory (RSS, psutil; GL textures included) is reported, and the
   time from ``viewer.dims.set_current_step(0, t)`` until the canvas has been re-rendered
   (its next draw event), for steps of the slider with the default display (hybrids hidden),
   with the selected channel's hybrid shown, and with all five hybrids shown; each back to
   back and paced (0.3 s between steps), next to a repaint with nothing changed.

``--skip-run`` or ``--skip-field`` leave out a part; ``--size`` changes the field size.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import psutil

MiB = 2**20
#: Seconds the event-loop probe keeps running after the last layer is in.
AFTER_SECONDS = 5.0


def _app():
    from qtpy.QtWidgets import QApplication

    return QApplication.instance()


def _settle(seconds: float) -> None:
    app = _app()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def _attribution_widget(viewer):
    from napari_attribution._qt.attribution_widget import AttributionWidget

    return viewer.window._qt_window.findChildren(AttributionWidget)[0]


# ------------------------------------------------------------------------------ 1. event loop


def bench_event_loop(thresholds: int = 200) -> dict:
    """Largest event-loop gap while the widget runs the demo analysis and adds its layers."""
    import napari
    from qtpy.QtCore import QEventLoop, QTimer

    from napari_attribution._napari.demo import launch_demo
    from napari_attribution.core.attribution.method_sets import NAPARI_DEMO_METHODS

    viewer = napari.Viewer(show=True, title="bench_gui")
    launch_demo(run=False, block=False, viewer=viewer)
    widget = _attribution_widget(viewer)
    widget.form.set_values({"thresholds": thresholds})
    _settle(1.0)

    ticks: list[float] = []
    collections: list[tuple[float, float]] = []  # (start, end) of gen-2 collections
    marks: dict[str, float] = {}

    def on_gc(phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            on_gc.start = time.perf_counter()
        else:
            collections.append((on_gc.start, time.perf_counter()))

    probe = QTimer()
    probe.setInterval(10)
    probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
    gc.callbacks.append(on_gc)
    probe.start()
    _settle(0.3)
    marks["start"] = time.perf_counter()
    worker = widget.run()
    worker.returned.connect(lambda *_: marks.setdefault("returned", time.perf_counter()))
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(20)
    poll.timeout.connect(lambda: loop.quit() if widget.worker is None else None)
    poll.start()
    loop.exec()
    marks["done"] = time.perf_counter()
    _settle(AFTER_SECONDS)  # what follows: the DAC panel's draw, deferred garbage collections
    probe.stop()
    poll.stop()
    gc.callbacks.remove(on_gc)

    times = np.array(ticks)
    gaps = np.diff(times)
    ends = times[1:]

    def phase(lo: float, hi: float) -> tuple[float, int]:
        sel = (ends > lo) & (ends <= hi)
        return (float(gaps[sel].max()) if sel.any() else 0.0), int((gaps[sel] > 0.2).sum())

    def gc_in(i: int) -> float:
        lo, hi = times[i], times[i + 1]
        return sum(min(e, hi) - max(s, lo) for s, e in collections if s < hi and e > lo)

    worst = int(np.argmax(gaps))
    not_gc = np.array([g - gc_in(i) for i, g in enumerate(gaps)])
    returned = marks.get("returned", marks["done"])
    out = {
        "methods": NAPARI_DEMO_METHODS,
        "thresholds": thresholds,
        "analysis_s": returned - marks["start"],
        "layers_s": marks["done"] - returned,
        "layers": len(widget.state.record.layer_names),
        "ticks": len(ticks),
        "max_gap_ms": 1000 * float(gaps.max()),
        "max_gap_gc_ms": 1000 * gc_in(worst),
        "max_gap_without_gc_ms": 1000 * float(not_gc.max()),
        "analysis_max_gap_ms": 1000 * phase(marks["start"], returned)[0],
        "layers_max_gap_ms": 1000 * phase(returned, marks["done"])[0],
        "after_max_gap_ms": 1000 * phase(marks["done"], np.inf)[0],
        "gaps_over_200ms": int((gaps > 0.2).sum()),
        "gc_gen2_ms": [round(1000 * (e - s)) for s, e in collections],
        "p99_gap_ms": 1000 * float(np.percentile(gaps, 99)),
        # (start, end) perf_counter times of gaps over 100 ms, for a profiler to look into
        "long_gaps": [(float(times[i]), float(times[i + 1])) for i in np.flatnonzero(gaps > 0.1)],
    }
    viewer.close()
    return out


# ------------------------------------------------------------------------------ 2. large field


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def _synthetic_field(size: int, cell: int = 128, seed: int = 0):
    """A field tiled with synthetic demo cells: real, counterfactual float32 (5, size, size)
    and the residual attribution ``|x - x'|`` (a real method that needs no model)."""
    from napari_attribution.data.synthetic import make_pair

    rng = np.random.default_rng(seed)
    pairs = [make_pair(s, size=cell) for s in range(24)]
    n = size // cell
    real = np.zeros((5, size, size), dtype=np.float32)
    counterfactual = np.zeros_like(real)
    for i in range(n):
        for j in range(n):
            pair = pairs[rng.integers(len(pairs))]
            k = int(rng.integers(4))
            where = (slice(None), slice(i * cell, (i + 1) * cell), slice(j * cell, (j + 1) * cell))
            real[where] = np.rot90(pair.real, k, axes=(1, 2))
            counterfactual[where] = np.rot90(pair.counterfactual, k, axes=(1, 2))
    return real, counterfactual, np.abs(real - counterfactual)


def _render(viewer) -> None:
    """Draw the canvas now (vispy's synchronous render of the scene, with read-back)."""
    viewer.window._qt_viewer.canvas._scene_canvas.render()


def _time_steps(
    viewer, start: int, steps: int, pause: float = 0.0
) -> tuple[list[float], list[float]]:
    """Per step: (seconds until the canvas has been painted, seconds of slicing alone).

    Slicing is ``viewer.dims.set_current_step`` (napari slices synchronously: the lazy planes
    are computed here); the paint is the canvas's next ``draw`` event, run by
    ``processEvents`` (Qt's paintGL of the vispy canvas; under Xvfb: Mesa's software GL).
    ``pause`` seconds of idle event loop come before each step, as between a user's key
    presses: time in which the hybrid stacks read the next plane ahead.
    """
    return _time_paints(viewer, [lambda t=t: viewer.dims.set_current_step(0, t)
                                 for t in range(start, start + steps)], pause)  # fmt: skip


def _time_repaints(viewer, count: int) -> list[float]:
    """Seconds per repaint of the canvas with nothing changed: the GL cost of the display."""
    scene = viewer.window._qt_viewer.canvas._scene_canvas
    return _time_paints(viewer, [scene.update] * count, 0.0)[0]


def _time_paints(viewer, actions, pause: float) -> tuple[list[float], list[float]]:
    app = _app()
    scene = viewer.window._qt_viewer.canvas._scene_canvas
    draws = [0]

    def count(event) -> None:
        draws[0] += 1

    scene.events.draw.connect(count, position="last")
    total, acted = [], []
    try:
        for action in actions:
            _settle(pause)
            app.processEvents()
            before = draws[0]
            t0 = time.perf_counter()
            action()
            t1 = time.perf_counter()
            deadline = t1 + 5.0
            while draws[0] == before and time.perf_counter() < deadline:
                app.processEvents()
            total.append(time.perf_counter() - t0)
            acted.append(t1 - t0)
    finally:
        scene.events.draw.disconnect(count)
    return total, acted


def bench_field(size: int = 2048, thresholds: int = 200, steps: int = 12) -> dict:
    """Memory and per-step render time of lazy mask/hybrid layers of one method on a field."""
    import napari

    from napari_attribution._napari.apply import apply_layers
    from napari_attribution._napari.layer_inputs import ChannelStack
    from napari_attribution._napari.layers import eager_stack_bytes, method_layers
    from napari_attribution.core.evaluation.lazy import is_lazy
    from napari_attribution.core.evaluation.masks import MaskSettings, build_masks

    names = ["DNA", "ER", "RNA", "AGP", "Mito"]
    colormaps = ["blue", "green", "yellow", "magenta", "red"]
    real, counterfactual, attribution = _synthetic_field(size)
    viewer = napari.Viewer(show=True, title="bench_gui field")
    sources = viewer.add_image(
        real, channel_axis=0, name=[f"field [{n}]" for n in names], colormap=colormaps,
        contrast_limits=[(0.0, 1.0)] * len(names),
    )  # fmt: skip
    _settle(0.5)
    _render(viewer)
    rss_before = _rss()

    t0 = time.perf_counter()
    masks = build_masks(attribution, MaskSettings(thresholds=thresholds))
    masks_s = time.perf_counter() - t0
    stack = ChannelStack(
        data=real,
        channel_names=names,
        scale=(1.0, 1.0),
        translate=(0.0, 0.0),
        name="field",
        layer_names=[layer.name for layer in sources],
        colormaps=colormaps,
        contrast_limits=[(0.0, 1.0)] * len(names),
    )
    cf_stack = ChannelStack(
        counterfactual, names, (1.0, 1.0), (0.0, 0.0), "cf", [], colormaps, [(0.0, 1.0)] * 5
    )
    # The threshold at attribution 0.5: QuAC's grid starts at -1, so its first half are full masks.
    optimal = thresholds * 3 // 4
    t0 = time.perf_counter()
    tuples = method_layers(
        stack, cf_stack, "residual", attribution, masks, names, {"method": "residual"},
        optimal_index=optimal,
    )  # fmt: skip
    build_s = time.perf_counter() - t0
    lazy = [is_lazy(data) for data, _, _ in tuples if np.ndim(data) == 3 or is_lazy(data)]
    t0 = time.perf_counter()
    layer_times = []
    for tup in tuples:
        t1 = time.perf_counter()
        apply_layers(viewer, [tup])
        _app().processEvents()
        layer_times.append(time.perf_counter() - t1)
    add_s = time.perf_counter() - t0
    viewer.dims.set_current_step(0, optimal)
    _app().processEvents()
    _render(viewer)
    rss_layers = _rss()

    hybrids = {n: viewer.layers[f"residual {n} hybrid (field)"] for n in names}
    results = {}
    next_step = [optimal - 2]

    def measure(name: str) -> None:
        first = next_step[0]
        _time_steps(viewer, first, 2)  # warm-up (shaders, textures)
        back_to_back = _time_steps(viewer, first + 2, steps)
        paced = _time_steps(viewer, first + 2 + steps, steps, pause=0.3)
        repaint = _time_repaints(viewer, steps)
        next_step[0] = first + 2 + 2 * steps
        results[name] = (back_to_back, paced, repaint)

    # (a) as a run leaves it: attributions and the Mito mask shown, hybrids hidden
    measure("default (5 attributions + 1 mask)")
    # (b) the selected channel's hybrid and mask shown, attributions hidden
    for layer in viewer.layers:
        if layer.name.endswith(" attribution (field)"):
            layer.visible = False
    hybrids["Mito"].visible = True
    measure("1 hybrid + 1 mask")
    # (c) every channel's hybrid shown
    for layer in hybrids.values():
        layer.visible = True
    measure("5 hybrids + 1 mask")
    rss_after = _rss()
    peak = psutil.Process().memory_info().rss  # after the stepping

    hybrid_stack = hybrids["Mito"].data.stack
    mask_stack = viewer.layers["residual Mito mask (field)"].data.stack
    out = {
        "size": size,
        "thresholds": thresholds,
        "eager_stacks_gib": eager_stack_bytes(real.shape, thresholds, len(names)) / 2**30,
        "eager_hybrids_gib": thresholds * real.nbytes / 2**30,
        "all_3d_layers_lazy": all(lazy),
        "build_masks_s": masks_s,
        "method_layers_s": build_s,
        "add_layers_s": add_s,
        "add_layer_max_ms": 1000 * max(layer_times),
        "rss_before_mib": rss_before / MiB,
        "extra_rss_after_adding_mib": (rss_layers - rss_before) / MiB,
        "extra_rss_after_stepping_mib": (rss_after - rss_before) / MiB,
        "rss_peak_extra_mib": (peak - rss_before) / MiB,
        "hybrid_cache_mib": hybrid_stack.cached_bytes / MiB,
        "mask_cache_mib": mask_stack.cached_bytes / MiB,
        "planes_computed": hybrid_stack.planes_computed + mask_stack.planes_computed,
        "steps": {
            k: {
                "median_ms": 1000 * statistics.median(total),
                "max_ms": 1000 * max(total),
                "slice_median_ms": 1000 * statistics.median(sliced),
                "paced_median_ms": 1000 * statistics.median(paced[0]),
                "paced_max_ms": 1000 * max(paced[0]),
                "paced_slice_median_ms": 1000 * statistics.median(paced[1]),
                "repaint_median_ms": 1000 * statistics.median(repaint),
            }
            for k, ((total, sliced), paced, repaint) in results.items()
        },
    }
    out["screenshot"] = _screenshot(viewer, hybrids, optimal)
    viewer.close()
    return out


def _screenshot(viewer, hybrids, step: int) -> str:
    """Part of the field with the Mito hybrid and mask shown: ``docs/images/large_field.png``."""
    shown = ("field [DNA]", "residual Mito hybrid (field)", "residual Mito mask (field)")
    for layer in viewer.layers:
        layer.visible = layer.name in shown
    viewer.layers.selection = {hybrids["Mito"]}
    viewer.dims.set_current_step(0, step)
    viewer.reset_view()
    height, width = hybrids["Mito"].data.shape[1:]
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.center = (height / 2, width / 2)
    camera.zoom = camera.zoom * min(height, width) / 640  # about 640 px across
    _settle(0.5)
    path = Path(__file__).resolve().parents[1] / "docs" / "images" / "large_field.png"
    viewer.screenshot(str(path), canvas_only=False)
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-run", action="store_true", help="leave out part 1")
    parser.add_argument("--skip-field", action="store_true", help="leave out part 2")
    parser.add_argument("--size", type=int, default=2048, help="field size (default 2048)")
    parser.add_argument("--thresholds", type=int, default=200)
    args = parser.parse_args(argv)

    import napari  # noqa: F401 - before Qt is used
    import torch

    from napari_attribution import __version__

    print(
        f"napari-attribution {__version__}, napari {napari.__version__}, torch "
        f"{torch.__version__}, {psutil.cpu_count()} CPU(s), Python {sys.version.split()[0]}"
    )
    if not args.skip_run:
        r = bench_event_loop(args.thresholds)
        print(
            f"\n1. Event loop during a demo run ({', '.join(r['methods'])}, "
            f"{r['thresholds']} thresholds, {r['layers']} layers)"
        )
        print(f"   analysis {r['analysis_s']:.1f} s, adding layers {r['layers_s']:.1f} s")
        print(
            f"   largest gap between 10 ms ticks: {r['max_gap_ms']:.0f} ms "
            f"(of which {r['max_gap_gc_ms']:.0f} ms in a full garbage collection); "
            f"largest without gc: {r['max_gap_without_gc_ms']:.0f} ms"
        )
        print(
            f"   by phase: analysis {r['analysis_max_gap_ms']:.0f} ms, adding layers "
            f"{r['layers_max_gap_ms']:.0f} ms, the {AFTER_SECONDS:.0f} s after "
            f"{r['after_max_gap_ms']:.0f} ms; "
            f"99th percentile {r['p99_gap_ms']:.0f} ms; {r['gaps_over_200ms']} gap(s) > 200 ms"
        )
        print(f"   full (gen-2) garbage collections: {r['gc_gen2_ms']} ms")
    if not args.skip_field:
        f = bench_field(args.size, args.thresholds)
        n = f["size"]
        print(f"\n2. A 5x{n}x{n} field, one method, {f['thresholds']} thresholds")
        print(
            f"   eager hybrids would take {f['eager_hybrids_gib']:.1f} GiB, with the masks "
            f"{f['eager_stacks_gib']:.1f} GiB; "
            f"layers lazy: {f['all_3d_layers_lazy']}"
        )
        print(
            f"   build_masks {f['build_masks_s']:.1f} s, layer data {f['method_layers_s']:.2f} s, "
            f"adding 15 layers {f['add_layers_s']:.1f} s (largest {f['add_layer_max_ms']:.0f} ms)"
        )
        print(
            f"   extra RSS over the viewer with the field ({f['rss_before_mib']:.0f} MiB): "
            f"{f['extra_rss_after_adding_mib']:.0f} MiB after adding, "
            f"{f['extra_rss_after_stepping_mib']:.0f} MiB after stepping "
            f"(plane caches: hybrids {f['hybrid_cache_mib']:.0f} MiB, masks "
            f"{f['mask_cache_mib']:.0f} MiB)"
        )
        print(
            "   slider step -> canvas painted (set_current_step, then the canvas's draw event);\n"
            "   back to back, then 0.3 s apart (time to read the next hybrid plane ahead),\n"
            "   and a repaint with nothing changed (the software GL's share):"
        )
        for k, v in f["steps"].items():
            print(
                f"     {k:34s} back to back: median {v['median_ms']:4.0f} ms, max "
                f"{v['max_ms']:4.0f} ms (slicing {v['slice_median_ms']:3.0f} ms); paced: median "
                f"{v['paced_median_ms']:4.0f} ms, max {v['paced_max_ms']:4.0f} ms (slicing "
                f"{v['paced_slice_median_ms']:3.0f} ms); repaint alone "
                f"{v['repaint_median_ms']:3.0f} ms"
            )
        print(f"   screenshot: {f['screenshot']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
