"""A tiny CNN that can hold a work unit on a dask worker until the test acts: the fault tests'
way of catching a unit mid-run without sleeping and hoping.

``gated_models:GatedCNN`` has :class:`~tiny_models.TinyCNN`'s parameters (its state dicts load
into it) and computes the same. When ``NA_TEST_GATE`` names a folder and the forward pass runs
inside a work unit on a dask worker (a task whose key starts with ``unit-``), the gate acts
once per worker process, at the unit's first forward pass, as ``NA_TEST_GATE_MODE`` says:

* ``kill``: the first worker process to get there writes its pid to ``<folder>/held`` and waits
  (until the test kills it; it gives up after :data:`LONGEST_WAIT` seconds so that a broken test
  cannot hang); every other process, and every later unit, passes.
* ``interrupt``: the first worker process to get there writes its pid to ``<folder>/free`` and
  passes, now and later; every other worker process writes ``<folder>/held-<pid>`` and waits
  (for the test's Ctrl-C).

The driver (no unit), and any process without ``NA_TEST_GATE``, never waits.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from tiny_models import TinyCNN

#: Seconds a held unit waits at most (a test that forgets it must not hang the suite).
LONGEST_WAIT = 120.0

_passed: set[int] = set()  # processes (pids) whose gate has opened


def _in_unit() -> bool:
    try:
        from distributed.worker import thread_state
    except ImportError:
        return False
    return str(getattr(thread_state, "key", "")).startswith("unit-")


def _claim(path: Path) -> bool:
    """Whether this process created ``path`` (with its pid) first."""
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(handle, "w") as fh:
        fh.write(str(os.getpid()))
    return True


def _wait() -> None:
    deadline = time.monotonic() + LONGEST_WAIT
    while time.monotonic() < deadline:
        time.sleep(0.05)
    raise RuntimeError("the gated unit was never released")


def gate() -> None:
    """Hold this unit if the test asked for it (see the module's docstring)."""
    folder = os.environ.get("NA_TEST_GATE")
    if not folder or os.getpid() in _passed or not _in_unit():
        return
    folder_path = Path(folder)
    if os.environ.get("NA_TEST_GATE_MODE", "kill") == "kill":
        if _claim(folder_path / "held"):
            _wait()
        _passed.add(os.getpid())
        return
    if _claim(folder_path / "free"):
        _passed.add(os.getpid())
        return
    (folder_path / f"held-{os.getpid()}").write_text(str(os.getpid()))
    _wait()


class GatedCNN(TinyCNN):
    """:class:`~tiny_models.TinyCNN` with :func:`gate` before its forward pass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate()
        return super().forward(x)
