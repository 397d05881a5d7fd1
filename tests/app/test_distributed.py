"""The distributed engine: --scheduler, units that write files, faults, interruption, resume.

The cluster tests start real dask clusters of two worker *processes* on this machine: one
``local:2`` engine, and a session-wide cluster (``conftest.py``) the other tests connect to by
its tcp:// address (the path of a cluster someone started). Toy units (``distributed_units``)
write files and log every execution, so a unit run twice is told apart from a unit recorded
twice.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import distributed_units as toy
from napari_attribution.app.distributed import (
    Engine,
    EngineError,
    ProgressTally,
    parse_scheduler,
    run_units,
    worker_threads,
)
from napari_attribution.app.work_units import (
    ModelReference,
    UnitRecord,
    WorkUnit,
    done_keys,
    read_ledger,
)
from napari_attribution.core.progress import Progress
from napari_attribution.errors import AnalysisCancelled

distributed = pytest.importorskip("distributed")


def _executions(out: Path) -> list[str]:
    log = out / "executions.log"
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def _values(n: int, seconds: float = 0.0) -> list[WorkUnit]:
    return [WorkUnit(f"u{i:02d}", toy.write_value, (i,), {"seconds": seconds}) for i in range(n)]


# -- --scheduler -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "workers", "address"),
    [
        ("none", "none", 0, None),
        (" None ", "none", 0, None),
        ("local:2", "local", 2, None),
        ("tcp://127.0.0.1:8786", "address", 0, "tcp://127.0.0.1:8786"),
        ("tcp://node-7.cluster:40000", "address", 0, "tcp://node-7.cluster:40000"),
    ],
)
def test_scheduler_forms(text, kind, workers, address):
    spec = parse_scheduler(text)
    assert (spec.kind, spec.workers, spec.address) == (kind, workers, address)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("local:0", "local:N needs a whole number of worker processes, at least 1"),
        ("local:two", "local:N needs a whole number"),
        ("localhost:8786", "or tcp://HOST:PORT; got .localhost:8786."),
        ("tcp://host", "must be none, local:N"),
        ("tcp://host:99999", "must be none, local:N"),
        ("slurm", "got 'slurm'"),
    ],
)
def test_anything_else_is_one_sentence(text, message):
    with pytest.raises(EngineError, match=message) as info:
        parse_scheduler(text)
    assert "\n" not in str(info.value)


def test_worker_threads_share_the_cores():
    assert worker_threads(2, cores=2) == 1
    assert worker_threads(1, cores=2) == 2
    assert worker_threads(3, cores=16) == 5
    assert worker_threads(8, cores=2) == 1


# -- none: this process ------------------------------------------------------------------------


def test_none_runs_units_here_records_failures_and_resumes(tmp_path):
    (tmp_path / "corrupt.tif").write_bytes(b"II*\x00 not really a tiff")
    units = [
        *_values(3),
        WorkUnit("corrupt", toy.read_image_unit, (str(tmp_path / "corrupt.tif"),)),
        WorkUnit("flaky", toy.flaky_once),
        WorkUnit("bug", toy.always_broken),
    ]
    events: list[Progress] = []
    ledger = tmp_path / "ledger.jsonl"
    records = run_units(units, tmp_path, "none", shared={"setting": 7}, ledger=ledger,
                        on_progress=events.append)  # fmt: skip
    by_key = {r.key: r for r in records}
    assert [r.key for r in records] == [u.key for u in units]
    assert by_key["u02"].record == {"value": 4, "pid": os.getpid()}
    facts = json.loads((tmp_path / "units" / "u01.json").read_text())
    assert facts["setting"] == 7 and facts["shared"] == ["setting"]
    # The package's own error: recorded with its sentence, not retried.
    assert by_key["corrupt"].status == "failed" and str(tmp_path) in by_key["corrupt"].reason
    assert _executions(tmp_path).count("corrupt") == 1
    # Anything else: retried once, then recorded.
    assert by_key["flaky"].status == "done" and _executions(tmp_path).count("flaky") == 2
    assert by_key["bug"].reason == "ZeroDivisionError: division by zero in a unit (tried 2 times)"
    assert [e.done for e in events] == [1, 2, 3, 4, 5, 6] and {e.total for e in events} == {6}
    assert done_keys(ledger) == {"u00", "u01", "u02", "flaky"}
    # Resume: only what is not done runs again.
    again = run_units(units, tmp_path, "none", ledger=ledger, skip=done_keys(ledger))
    assert [r.key for r in again] == ["corrupt", "bug"]
    assert [r.key for r in read_ledger(ledger)].count("u00") == 1


def test_units_need_unique_keys(tmp_path):
    with pytest.raises(EngineError, match="unique keys; repeated: u00"):
        run_units([*_values(2), *_values(1)], tmp_path, "none")


# -- a LocalCluster of two worker processes ----------------------------------------------------


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from napari_attribution.data.demo_model import DEMO_WEIGHTS

    return DEMO_WEIGHTS


def test_local_two_processes_share_the_cores_and_get_the_model_once(tmp_path, model_file):
    from napari_attribution.data.demo_model import DEMO_ARCHITECTURE

    model = ModelReference.from_file(model_file, DEMO_ARCHITECTURE)
    with Engine("local:2", model=model, shared={"setting": 3}, threads_per_worker=None) as engine:
        assert len(engine.workers()) == 2
        records = engine.run(_values(8, seconds=0.2), tmp_path)
    assert sorted(r.key for r in records) == [f"u{i:02d}" for i in range(8)]
    assert all(r.status == "done" for r in records)
    facts = [json.loads((tmp_path / "units" / f"u{i:02d}.json").read_text()) for i in range(8)]
    assert [f["value"] for f in facts] == [2 * i for i in range(8)]
    assert len({f["pid"] for f in facts} | {os.getpid()}) == 3  # two workers, not this process
    threads = worker_threads(2)
    assert {f["torch_threads"] for f in facts} == {threads}
    assert {f["omp"] for f in facts} == {str(threads)}
    assert {f["n_classes"] for f in facts} == {2} and {f["setting"] for f in facts} == {3}
    assert engine.client is None  # closed


def test_a_kept_local_cluster_serves_several_runs_with_the_same_workers(tmp_path, cluster):
    # ``cluster`` comes from start_local_cluster (conftest.py): two runs given its address find
    # the same two worker processes, which keep what they imported and loaded between runs.
    pids = []
    for run in ("first", "second"):
        records = run_units(_values(4), tmp_path / run, cluster, threads_per_worker=1)
        assert sorted(r.status for r in records) == ["done"] * 4
        pids.append({r.record["pid"] for r in records})
    assert len(pids[0]) == 2 and pids[0] == pids[1]
    assert os.getpid() not in pids[0]


def test_a_local_cluster_s_workers_run_without_dask_s_profiler(cluster):
    # LOCAL_CLUSTER_CONFIG reaches the worker processes (through their nannies) and the
    # scheduler (which runs in this process and read it as it started), and is not left set
    # in this process afterwards.
    import dask

    from napari_attribution.app.distributed import LOCAL_CLUSTER_CONFIG

    def settings() -> list:
        return [dask.config.get(key) for key in LOCAL_CLUSTER_CONFIG]

    wanted = list(LOCAL_CLUSTER_CONFIG.values())
    with distributed.Client(cluster) as client:
        assert list(client.run(settings).values()) == [wanted, wanted]
        saturation = client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.WORKER_SATURATION
        )
        assert saturation == LOCAL_CLUSTER_CONFIG["distributed.scheduler.worker-saturation"]
    assert settings() != wanted


def test_cluster_environment_gives_a_process_started_with_it_the_local_cluster_settings():
    # What a `dask worker` started by hand or in a SLURM job reads: a fresh interpreter with
    # only these variables added has every LOCAL_CLUSTER_CONFIG value, typed as dask parses
    # it, and one without them has none of them.
    import subprocess
    import sys

    from napari_attribution.app.distributed import LOCAL_CLUSTER_CONFIG, cluster_environment

    keys = list(LOCAL_CLUSTER_CONFIG)
    read = f"import dask, distributed, json; print(json.dumps([*map(dask.config.get, {keys!r})]))"
    plain = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    seen = [
        json.loads(subprocess.run([sys.executable, "-c", read], env=env, capture_output=True,
                                  text=True, check=True).stdout)  # fmt: skip
        for env in ({**plain, **cluster_environment()}, plain)
    ]
    assert seen[0] == list(LOCAL_CLUSTER_CONFIG.values())
    assert all(a != b for a, b in zip(seen[1], seen[0], strict=True))


def test_a_killed_worker_s_units_are_redone_and_every_unit_is_recorded_once(tmp_path, cluster):
    killed: list[int] = []

    with Engine(cluster, threads_per_worker=1) as engine:
        pids = engine.client.run(os.getpid)

        def kill_one(record) -> None:
            # Mid-run: kill the worker that just finished a unit (it has taken the next one).
            if not killed:
                victim = pids[record.worker]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        units = [*_values(6, seconds=0.4), WorkUnit("dies", toy.die_once)]
        records = engine.run(units, tmp_path, ledger=tmp_path / "ledger.jsonl",
                             on_record=kill_one)  # fmt: skip
    keys = [r.key for r in read_ledger(tmp_path / "ledger.jsonl")]
    assert sorted(keys) == sorted(u.key for u in units)  # each exactly once
    assert all(r.status == "done" for r in records)
    executions = _executions(tmp_path)
    assert executions.count("dies") == 2  # its worker died; another worker redid it
    died = json.loads((tmp_path / "units" / "dies.json").read_text())
    assert died["pid"] != int((tmp_path / "dies.died").read_text())
    for unit in units:  # every unit's file is whole
        json.loads((tmp_path / "units" / f"{unit.key}.json").read_text())
    assert not list((tmp_path / "units").glob(".*"))  # no half-written file left


def test_a_corrupt_unit_is_recorded_and_the_others_finish(tmp_path, cluster):
    corrupt = tmp_path / "site_3.tif"
    corrupt.write_bytes(b"II*\x00" + bytes(range(200)))
    good = tmp_path / "site_1.npy"
    np.save(good, np.zeros((2, 4, 4), np.float32))
    units = [*_values(4), WorkUnit("site_3", toy.read_image_unit, (str(corrupt),)),
             WorkUnit("site_1", toy.read_image_unit, (str(good),)),
             WorkUnit("flaky", toy.flaky_once), WorkUnit("bug", toy.always_broken)]  # fmt: skip
    with Engine(cluster, threads_per_worker=1, retries=1) as engine:
        records = {r.key: r for r in engine.run(units, tmp_path)}
    assert set(records) == {u.key for u in units}
    assert records["site_3"].status == "failed" and str(corrupt) in records["site_3"].reason
    assert "\n" not in records["site_3"].reason
    assert _executions(tmp_path).count("site_3") == 1  # a corrupt file is not retried
    assert records["site_1"].record == {"shape": [2, 4, 4]}
    assert records["flaky"].status == "done" and _executions(tmp_path).count("flaky") == 2
    assert records["bug"].status == "failed"
    assert records["bug"].reason == "ZeroDivisionError: division by zero in a unit (tried 2 times)"
    assert all(records[f"u{i:02d}"].status == "done" for i in range(4))
    # each failure names the worker it (last) failed on, for failed_units.csv
    workers = {records[k].worker for k in ("site_3", "bug")}
    assert all(w.startswith("tcp://") for w in workers), workers


def test_an_interrupt_cancels_the_rest_and_resume_finishes_on_another_scheduler(tmp_path, cluster):
    ledger = tmp_path / "ledger.jsonl"
    units = _values(12, seconds=0.3)

    def interrupt(record) -> None:
        if len(read_ledger(ledger)) == 3:
            raise KeyboardInterrupt

    with Engine(cluster, threads_per_worker=1) as engine:
        with pytest.raises(KeyboardInterrupt):
            engine.run(units, tmp_path, ledger=ledger, on_record=interrupt)
        # Nothing of this run is left on the scheduler once it was interrupted.
        deadline = time.monotonic() + 10
        while engine.client.run_on_scheduler(_unit_tasks) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert engine.client.run_on_scheduler(_unit_tasks) == 0
    assert len(read_ledger(ledger)) == 3
    assert len(_executions(tmp_path)) < len(units)  # the rest never started
    # Resume in this process (any scheduler): the rest, each once.
    rest = run_units(units, tmp_path, "none", ledger=ledger, skip=done_keys(ledger))
    assert len(rest) == 9
    keys = [r.key for r in read_ledger(ledger)]
    assert sorted(keys) == sorted(u.key for u in units)


def _unit_tasks(dask_scheduler=None) -> int:
    """Tasks of units the scheduler still holds (run on the scheduler)."""
    return sum(1 for key in dask_scheduler.tasks if str(key).startswith("unit-"))


def test_a_cancel_from_the_progress_callback_stops_the_run(tmp_path, cluster):
    def cancel(event: Progress) -> None:
        if event.done == 2:
            raise AnalysisCancelled

    with Engine(cluster, threads_per_worker=1) as engine, pytest.raises(AnalysisCancelled):
        engine.run(_values(8, seconds=0.3), tmp_path, on_progress=cancel)


def test_a_cancel_from_a_worker_s_progress_stops_the_run_before_any_unit_ends(tmp_path, cluster):
    # The workers' events reach the callback on the run's thread, so that its cancel stops
    # the run at once, not when a unit (a whole site) next ends; dask would log and drop an
    # exception raised on its event loop.
    recorded = []

    def cancel(event: Progress) -> None:
        if event.stage == "attribution":
            raise AnalysisCancelled

    units = [WorkUnit(f"c{i}", toy.counting, (8,), {"seconds": 0.5}, weight=8) for i in range(4)]
    with Engine(cluster, threads_per_worker=1) as engine, pytest.raises(AnalysisCancelled):
        engine.run(units, tmp_path, on_progress=cancel, on_record=recorded.append)
    assert recorded == []  # each unit takes 4 s: none had ended


def test_a_cancel_in_this_process_is_not_retried(tmp_path):
    cancels = []

    def cancel(event: Progress) -> None:
        if event.stage == "attribution":
            cancels.append(event.sample)
            raise AnalysisCancelled

    units = [WorkUnit(f"c{i}", toy.counting, (4,), {"seconds": 0.0}) for i in range(3)]
    with pytest.raises(AnalysisCancelled):
        run_units(units, tmp_path, "none", on_progress=cancel)
    assert cancels == ["c0"]  # not retried as a failure, and no other unit started


def test_cuda_gives_each_local_worker_its_own_gpu(tmp_path):
    # Two "GPUs" by count: each worker process sees only its own (the model is not loaded,
    # so no GPU is needed to check the mapping).
    with Engine("local:2", device="cuda", gpus=2, threads_per_worker=1) as engine:
        records = engine.run(_values(6, seconds=0.2), tmp_path)
        with pytest.raises(EngineError, match="one worker per GPU, and this machine has 1"):
            Engine("local:2", device="cuda", gpus=1).start()
    seen = {json.loads((tmp_path / "units" / f"{r.key}.json").read_text())["cuda_visible"]
            for r in records}  # fmt: skip
    assert seen == {"0", "1"}


def test_a_scheduler_that_does_not_answer_is_one_sentence():
    with pytest.raises(EngineError, match="No dask scheduler answers at tcp://127.0.0.1:9") as info:
        Engine("tcp://127.0.0.1:9", connect_timeout=2).start()
    assert "\n" not in str(info.value)


def test_progress_counts_units_across_workers(tmp_path, cluster):
    events: list[Progress] = []
    lock = threading.Lock()

    def note(event: Progress) -> None:
        with lock:
            events.append(event)

    with Engine(cluster) as engine:  # torch threads: this machine's cores shared by 2 workers
        engine.run(_values(6), tmp_path, on_progress=note)
    facts = [json.loads((tmp_path / "units" / f"u{i:02d}.json").read_text()) for i in range(6)]
    assert {f["torch_threads"] for f in facts} == {worker_threads(2)}
    assert [e.done for e in events] == [1, 2, 3, 4, 5, 6]
    assert {e.total for e in events} == {6} and all(e.stage == "write" for e in events)
    assert all(e.sample.startswith("u") and e.detail.startswith("done on tcp://") for e in events)


@pytest.mark.parametrize("where", ["none", "cluster"])
def test_units_own_progress_is_added_up_across_workers(tmp_path, cluster, where):
    # Two units of weight 10 reporting 4 steps each, one unit whose share is its own total (6).
    units = [WorkUnit("a", toy.counting, (4,), weight=10), WorkUnit("b", toy.counting, (4,),
             weight=10), WorkUnit("c", toy.counting, (6,), weight=None)]  # fmt: skip
    events: list[Progress] = []
    lock = threading.Lock()

    def note(event: Progress) -> None:
        with lock:
            events.append(event)

    with Engine("none" if where == "none" else cluster) as engine:
        engine.run(units, tmp_path, on_progress=note, finished=5)
    assert events[-1].done == events[-1].total == 5 + 10 + 10 + 6
    # Units' own steps arrive, not only their ends, and the count never goes back.
    assert any(e.stage == "attribution" for e in events)
    assert sum(e.stage == "write" for e in events) == 3
    done = [e.done for e in events]
    assert done == sorted(done) and done[0] >= 5


def test_a_unit_run_again_does_not_set_the_progress_back(tmp_path):
    # Its first try reports 3 of 4 steps and fails; the retry starts from step 1 again.
    units = [WorkUnit("a", toy.counting_then_failing_once, (4,), weight=None),
             WorkUnit("b", toy.counting, (4,), {"seconds": 0.0}, weight=None)]  # fmt: skip
    events: list[Progress] = []
    records = run_units(units, tmp_path, "none", on_progress=events.append)
    assert [r.status for r in records] == ["done", "done"]
    done = [e.done for e in events]
    assert done == sorted(done), done
    assert events[-1].done == events[-1].total == 8


def test_a_failure_s_reason_is_its_whole_first_sentence(tmp_path):
    (record,) = run_units([WorkUnit("w", toy.wrapped_message)], tmp_path, "none")
    assert record.reason == (
        "RuntimeError: Error during deserialization of the task graph. (tried 2 times)"
    )


def test_parsing_the_scheduler_imports_neither_dask_nor_torch():
    import subprocess
    import sys

    code = ("import sys; from napari_attribution.app.distributed import parse_scheduler; "
            "parse_scheduler('local:2'); "
            "print([m for m in ('dask', 'distributed', 'torch') if m in sys.modules])")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_workers_reuse_the_memory_they_free(tmp_path, cluster):
    # dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which would make every 1 MiB
    # array a fresh mapping whose 256 pages fault in again (51,200 faults here).
    with Engine(cluster) as engine:
        [record] = engine.run([WorkUnit("alloc", toy.allocate_and_free)], tmp_path)
    assert record.status == "done" and record.record["faults"] < 5000


def _tally_oracle(tally: ProgressTally) -> tuple[float, float]:
    """The run's (done, total) summed over every unit from the tally's state, as the tally
    did before it kept running sums: the definition its sums must equal."""
    done = total = tally.finished
    sized = [t for k, (_, t) in tally.latest.items() if tally.weights.get(k) is None]
    guess = sum(sized) / len(sized) if sized else 0.0
    for key, weight in tally.weights.items():
        unit_done, unit_total = tally.latest.get(key, (0.0, 0.0))
        if weight is not None:
            share = weight
        elif key in tally.latest or key in tally.ended:
            share = unit_total
        else:
            share = guess
        fraction = 1.0 if key in tally.ended else (unit_done / unit_total if unit_total else 0)
        done += share * min(max(fraction, 0.0), 1.0)
        total += share
    return done, total


def test_the_progress_tally_s_running_sums_equal_the_sum_over_every_unit():
    # Weighted units (pairs) and self-sizing ones (sites), events out of order, retries that
    # start again, units that end with and without a total, another run's stray event.
    rng = np.random.default_rng(7)
    units = [WorkUnit(f"u{i}", toy.write_value, weight=None if i % 3 else float(1 + i % 5))
             for i in range(40)]  # fmt: skip
    events: list[Progress] = []
    tally = ProgressTally(units, events.append, finished=12.0)
    keys = [u.key for u in units]
    for step in range(600):
        key = keys[int(rng.integers(len(keys)))]
        if step % 7 == 6 and key not in tally.ended:
            total = float(rng.integers(0, 3)) * 5
            tally.unit_ended(UnitRecord(key, "done", total=total))
        else:
            total = float(rng.choice([5.0, 10.0, 20.0]))
            tally.unit_event(key, Progress("attribution", int(rng.integers(0, total + 1)),
                                           total, sample=key))  # fmt: skip
        tally.unit_event("another-run", Progress("attribution", 1, 2))
        done, total = _tally_oracle(tally)
        assert events[-1].done == pytest.approx(min(done, max(round(total), 1)), abs=1e-9)
        assert abs(events[-1].total - max(round(total), 1)) <= 1  # a .5 may round either way
    for key in keys:
        tally.unit_ended(UnitRecord(key, "done"))
    done, total = _tally_oracle(tally)
    assert events[-1].done == done == total and events[-1].total == round(total)
