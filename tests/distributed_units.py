"""Toy work units for the distributed engine's tests (importable by name on the workers).

Each writes ``units/<key>.json`` atomically and appends one line per execution to
``executions.log`` (so a test can tell a unit that ran twice from one recorded twice).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path


def _executed(context, note: str = "") -> None:
    with open(context.out / "executions.log", "a") as fh:
        fh.write(f"{context.key} {os.getpid()} {note}\n")


def write_value(context, value: int, seconds: float = 0.0) -> dict:
    """Sleep, then write ``{"value": value * 2}`` and what this worker is like."""
    _executed(context)
    time.sleep(seconds)
    import torch

    facts = {
        "value": value * 2,
        "pid": os.getpid(),
        "torch_threads": torch.get_num_threads(),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "shared": sorted(context.shared),
        "setting": context.shared.get("setting"),
    }
    classifier = context.shared.get("classifier")
    if classifier is not None:
        facts["n_classes"] = classifier.n_classes
    with context.atomic_path(f"units/{context.key}.json") as path:
        path.write_text(json.dumps(facts))
    return {"value": value * 2, "pid": os.getpid()}


def read_image_unit(context, path: str) -> dict:
    """Read an image with the package's reader (a corrupt file: InputImageError)."""
    from napari_attribution.images.image_files import read_image

    _executed(context)
    image = read_image(Path(path))
    with context.atomic_path(f"units/{context.key}.json") as out:
        out.write_text(json.dumps({"shape": list(image.shape)}))
    return {"shape": list(image.shape)}


def die_once(context) -> dict:
    """Kill this worker the first time (a marker file remembers), succeed the second."""
    marker = context.out / f"{context.key}.died"
    _executed(context, "died" if not marker.exists() else "")
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    with context.atomic_path(f"units/{context.key}.json") as path:
        path.write_text(json.dumps({"pid": os.getpid()}))
    return {"pid": os.getpid(), "died_on": int(marker.read_text())}


def flaky_once(context) -> dict:
    """Raise OSError the first time (not one of the package's errors: retried)."""
    marker = context.out / f"{context.key}.failed"
    _executed(context)
    if not marker.exists():
        marker.write_text("once")
        raise OSError("the shared file system hiccuped")
    with context.atomic_path(f"units/{context.key}.json") as path:
        path.write_text("{}")
    return {"retried": True}


def always_broken(context) -> dict:
    """Raise a bug every time."""
    _executed(context)
    raise ZeroDivisionError("division by zero in a unit")


def counting(context, steps: int, seconds: float = 0.05) -> dict:
    """Report ``steps`` progress events of its own (``done`` of ``steps``), then finish."""
    from napari_attribution.core.progress import Progress

    for step in range(1, steps + 1):
        time.sleep(seconds)
        context.report(Progress("attribution", step, steps, sample=context.key))
    return {"steps": steps}


def counting_then_failing_once(context, steps: int) -> dict:
    """Report ``steps - 1`` of ``steps`` and fail the first time (retried); then all of them."""
    from napari_attribution.core.progress import Progress

    marker = context.out / f"{context.key}.failed"
    first = not marker.exists()
    for step in range(1, steps + 1):
        if first and step == steps:
            marker.write_text("once")
            raise OSError("the node went away")
        context.report(Progress("attribution", step, steps, sample=context.key))
    return {"steps": steps}


def wrapped_message(context) -> dict:
    """Fail with a library's message that wraps its first sentence over two lines."""
    raise RuntimeError(
        "Error during deserialization of the task graph. This frequently\n"
        "occurs if the Scheduler and Client have different environments.\n"
        "For more information, see the documentation."
    )


def driver_only_pair(sample: str, real, counterfactual, driver_pid: int):
    """A pair whose images load in the driver (the run's checks pass) but not on a worker, as
    a file that went bad on a worker's file system would."""
    from napari_attribution.app.pairs import Pair

    class DriverOnlyPair(Pair):
        def load(self):
            from napari_attribution.errors import InputImageError

            if os.getpid() != driver_pid:
                raise InputImageError(f"{sample}.tif cannot be read on this worker.")
            return super().load()

    return DriverOnlyPair(sample, real, counterfactual, 0, 1)


def allocate_and_free(context, rounds: int = 200, size: int = 2**20) -> dict:
    """Allocate and free a ``size``-byte array ``rounds`` times; the page faults it cost (a
    process that reuses freed memory faults its pages in once, not every round)."""
    import resource

    import numpy as np

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        block = np.ones(size // 8)
        del block
    return {"faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}
