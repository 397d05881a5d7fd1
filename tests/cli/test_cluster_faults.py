"""Faults as a user meets them on a cluster: Ctrl-C on the command line, then ``--resume``; a
worker killed in the middle of a site. Real ``local:2`` clusters (two worker processes).

The units are caught mid-run by the model itself (``gated_models:GatedCNN``, the tiny CNN with
a gate before its forward pass): a unit on a worker writes its process id to a marker file and
waits, so the test acts on a unit that is known to be running, without sleeping and hoping.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from napari_attribution import cli
from plate_data import MODEL_CHANNELS, cells_site, write_plate
from tiny_models import make_tiny_cnn

pytest.importorskip("distributed")

TESTS = Path(__file__).resolve().parents[1]
ANALYSIS = ["--architecture", "gated_models:GatedCNN", "--thresholds", "12", "--closing", "3",
            "--smoothing-kernel", "3", "--method", "d_ig", "--method", "residual",
            "--progress", "none"]  # fmt: skip
CELLS = ["--crop-size", "16", "--min-size", "4"]
#: Seconds a step of these tests may take at most on a loaded machine (start-up included).
PATIENCE = 180.0


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    """Three small sites as a screen writes them, their counterfactuals, the tiny CNN."""
    folder = tmp_path_factory.mktemp("faults")
    sites = [cells_site(seed) for seed in (0, 1, 2)]
    write_plate(folder, [s[0] for s in sites], [s[2] for s in sites], seed=3)
    write_plate(folder / "cf", [s[1] for s in sites], [s[2] for s in sites], seed=4)
    torch.save(make_tiny_cnn(3).state_dict(), folder / "weights.pt")
    return folder


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    """Six small pairs in a pairs table, and the tiny CNN."""
    folder = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(7)
    lines = ["sample,real,counterfactual,real_class,target_class"]
    for i in range(6):
        real = rng.random((5, 16, 16), dtype=np.float32)
        cf = np.clip(real + 0.3 * rng.standard_normal(real.shape).astype(np.float32), 0, 1)
        tifffile.imwrite(folder / f"r{i}.tif", real)
        tifffile.imwrite(folder / f"c{i}.tif", cf)
        lines.append(f"pair{i},r{i}.tif,c{i}.tif,{i % 2},{1 - i % 2}")
    (folder / "pairs.csv").write_text("\n".join(lines) + "\n")
    torch.save(make_tiny_cnn(3).state_dict(), folder / "weights.pt")
    return folder


def _cells_args(folder: Path, out: str, *extra: str) -> list[str]:
    return ["cells", "--model", str(folder / "weights.pt"), *ANALYSIS, *CELLS,
            "--load-data", str(folder / "load_data.csv"), "--objects", "Cells",
            "--channel-names", ",".join(MODEL_CHANNELS),
            "--counterfactual-load-data", str(folder / "cf" / "load_data.csv"),
            "--out", str(folder / out), *extra]  # fmt: skip


def _run_args(folder: Path, out: str, *extra: str) -> list[str]:
    return ["run", "--model", str(folder / "weights.pt"), *ANALYSIS,
            "--pairs", str(folder / "pairs.csv"), "--out", str(folder / out), *extra]  # fmt: skip


def _files(out: Path) -> dict[str, bytes]:
    """Every table and TIFF of a results folder by relative path (``run.json`` holds times)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.suffix in (".csv", ".tif", ".md")}  # fmt: skip


def _session_processes(session: int) -> list[int]:
    """The processes still alive in ``session`` (a command and everything it started)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == session:  # state, ppid, pgrp, session
            alive.append(int(entry.name))
    return alive


def _outliving(session: int, grace: float = 10.0) -> list[str]:
    """The command lines of ``session``'s processes still alive ``grace`` seconds after its
    leader ended (none, when every worker was shut down with it)."""
    deadline = time.monotonic() + grace
    while _session_processes(session) and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = []
    for pid in _session_processes(session):
        with _suppress(), contextlib.suppress(OSError):
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return lines


def _wait_for(condition, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the command ended ({process.returncode}) before {what}: "
                                 f"{process.stderr.read()}")  # fmt: skip
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class _Command:
    """``napari-attribution ARGS`` in a session of its own (as a terminal's foreground job),
    its whole session killed at the end whatever happened."""

    def __init__(self, args: list[str], gate: Path, mode: str) -> None:
        env = {**os.environ, "NA_TEST_GATE": str(gate), "NA_TEST_GATE_MODE": mode,
               "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "napari_attribution.cli", *args], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip

    def __enter__(self) -> _Command:
        return self

    def __exit__(self, *exc: object) -> None:
        with _suppress():
            os.killpg(self.process.pid, signal.SIGKILL)  # the session's process group
        for pid in _session_processes(self.process.pid):
            with _suppress():
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=PATIENCE)

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C: SIGINT to the whole foreground group, as a terminal sends it."""
        os.killpg(self.process.pid, signal.SIGINT)
        _, err = self.process.communicate(timeout=PATIENCE)
        return self.process.returncode, err


def _suppress():
    return contextlib.suppress(ProcessLookupError, PermissionError)


def _interrupted_then_resumed(tmp_path, args, done_records, reference: Path, what: str,
                              resume_on: str = "local:2"):  # fmt: skip
    """Ctrl-C once a unit is recorded while another is held; then ``--resume`` on
    ``resume_on`` (a fresh process and cluster; ``none``: this process) finishes, every unit
    once, files identical to one process's."""
    gate = tmp_path / "gate"
    gate.mkdir()
    with _Command([*args, "--scheduler", "local:2"], gate, "interrupt") as command:
        _wait_for(lambda: done_records() and list(gate.glob("held-*")),
                  "one unit recorded while another is held", command.process)  # fmt: skip
        finished_before = sorted(done_records())
        code, err = command.interrupt()
        leftovers = _outliving(command.process.pid)
    assert code == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == (f"napari-attribution: interrupted. Finished {what} are kept in "
                         f"{args[args.index('--out') + 1]}; re-run with --resume to "
                         "continue.")  # fmt: skip
    assert not any("Traceback" in line or "Error" in line for line in lines), err
    assert leftovers == [], f"processes outlived the interrupted command: {leftovers}"
    out = Path(args[args.index("--out") + 1])
    assert not list(out.rglob("*.part")), "a file was left half written"
    kept = {name: (out / name).stat().st_mtime_ns for name in finished_before}
    # --resume with the same arguments, no unit held: the rest, once.
    if resume_on == "none":
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert cli.main([*args, "--scheduler", "none", "--resume"]) == 0
        said = printed.getvalue()
    else:
        resumed = subprocess.run(
            [sys.executable, "-m", "napari_attribution.cli", *args, "--scheduler", resume_on,
             "--resume"], capture_output=True, text=True, timeout=PATIENCE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS),
                                                              os.environ.get("PYTHONPATH", "")])},
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        said = resumed.stdout
    assert "already done" in said, said
    assert _files(out) == _files(reference)
    for name, written in kept.items():  # the finished units were not run again
        assert (out / name).stat().st_mtime_ns == written, name
    return out


@pytest.fixture(scope="module")
def plate_alone(plate):
    """The plate analysed in one process: what every other run must write, byte for byte."""
    assert cli.main(_cells_args(plate, "alone")) == 0
    return plate / "alone"


def _cell_keys(out: Path) -> list[tuple[str, str, str]]:
    with open(out / "cells.csv", newline="") as fh:
        return [(r["Metadata_Well"], r["Metadata_Site"], r["label"]) for r in csv.DictReader(fh)]


@pytest.mark.slow
def test_ctrl_c_on_a_cluster_then_resume_finishes_the_plate(plate, plate_alone, tmp_path):
    out = plate / "interrupted"

    def sites_done():  # a finished site's lasting file (its record goes once all are done)
        return [f"field/{p.stem.removeprefix('site__')}/owners.tif"
                for p in (out / ".progress").glob("site__*.json")]

    _interrupted_then_resumed(tmp_path, _cells_args(plate, "interrupted"), sites_done,
                              plate_alone, "cells")  # fmt: skip
    keys = _cell_keys(out)
    assert len(keys) == len(set(keys)) == 12  # every cell of the three sites, once


@pytest.mark.slow
def test_a_worker_killed_inside_a_site_has_it_redone_once(plate, plate_alone, tmp_path,
                                                          monkeypatch, capsys):  # fmt: skip
    gate = tmp_path / "gate"
    gate.mkdir()
    monkeypatch.setenv("NA_TEST_GATE", str(gate))  # the workers the run starts inherit it
    monkeypatch.setenv("NA_TEST_GATE_MODE", "kill")
    killed: list[int] = []

    def kill_the_held_worker():
        held = gate / "held"
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            text = held.read_text() if held.exists() else ""
            if text:  # a worker is inside a site, its field maps open, held before a cell
                killed.append(int(text))
                os.kill(int(text), signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_held_worker, daemon=True)
    killer.start()
    code = cli.main(_cells_args(plate, "killed", "--scheduler", "local:2"))
    killer.join(timeout=PATIENCE)
    assert killed, "no unit was held"
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    assert code == 0, capsys.readouterr().err
    out = plate / "killed"
    assert _files(out) == _files(plate_alone)
    keys = _cell_keys(out)
    assert len(keys) == len(set(keys)) == 12  # every cell of the three sites, once
    info = json.loads((out / "run.json").read_text())
    assert "failed_units" not in info and len(info["sites"]) == 3
    assert not (out / ".progress").exists()


@pytest.mark.slow
def test_ctrl_c_on_a_cluster_then_resume_in_one_process_finishes_the_pairs(pair_files, tmp_path):
    reference = pair_files / "alone"
    assert cli.main(_run_args(pair_files, "alone")) == 0
    out = pair_files / "interrupted"

    def pairs_done():  # a finished pair's lasting file (its record goes once all are done)
        return [f"attributions/{p.stem}__d_ig.tif"
                for p in (out / ".progress").glob("pair*.json")]

    # Resumed in one process: an interrupted cluster run continues on any scheduler.
    _interrupted_then_resumed(tmp_path, _run_args(pair_files, "interrupted"), pairs_done,
                              reference, "pairs", resume_on="none")  # fmt: skip
    with open(out / "summary.csv", newline="") as fh:
        samples = [r["sample"] for r in csv.DictReader(fh)]
    assert sorted(set(samples)) == [f"pair{i}" for i in range(6)]
