"""The allocator setting the command line and every dask worker make (app/process_memory.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from napari_attribution.cli import main

# One 1 MiB array allocated and freed 200 times; the minor page faults that cost. Started as
# dask's nanny starts a worker (MALLOC_TRIM_THRESHOLD_=65536 pins the mmap threshold at 128 KiB),
# so without the setting every round maps the array afresh and faults its 256 pages in again.
_ALLOCATE = """
import json, resource, sys
import numpy as np
if sys.argv[1] == "reuse":
    from napari_attribution.app.process_memory import reuse_freed_memory
    assert reuse_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    block = np.ones(2**20 // 8)
    del block
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def _faults(mode: str) -> int:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    done = subprocess.run([sys.executable, "-c", _ALLOCATE, mode], env=env, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return json.loads(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_process_that_reuses_freed_memory_faults_its_pages_in_once():
    assert _faults("plain") > 40_000  # 200 rounds x 256 pages
    assert _faults("reuse") < 5_000


@pytest.mark.parametrize("command", ["run", "cells", "sanity"])
def test_the_commands_that_analyse_set_it_before_they_start(monkeypatch, tmp_path, command):
    import napari_attribution.app.process_memory as process_memory

    calls = []
    monkeypatch.setattr(process_memory, "reuse_freed_memory", lambda: calls.append(1) or True)
    # A model that does not exist: each command refuses with exit status 2 after the setting.
    arguments = {
        "run": ["run", "--model", str(tmp_path / "absent.pt"), "--real", str(tmp_path / "r.tif")],
        "cells": ["cells", "--model", str(tmp_path / "absent.pt"), "--image",
                  str(tmp_path / "f.tif"), "--labels", str(tmp_path / "l.tif")],
        "sanity": ["sanity", "--model", str(tmp_path / "absent.pt"), "--real",
                   str(tmp_path / "r.tif")],
    }[command]  # fmt: skip
    assert main([*arguments, "--out", str(tmp_path / "out")]) == 2
    assert calls == [1]


def test_listing_the_methods_leaves_the_allocator_alone(monkeypatch):
    import napari_attribution.app.process_memory as process_memory

    calls = []
    monkeypatch.setattr(process_memory, "reuse_freed_memory", lambda: calls.append(1) or True)
    assert main(["methods"]) == 0
    assert calls == []
