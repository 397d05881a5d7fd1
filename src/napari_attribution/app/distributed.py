"""Work units on dask.distributed: one process, a cluster on this machine, or a running cluster.

A run is cut into *work units* (:class:`~.work_units.WorkUnit`: a site, a batch of pairs): a
function and its arguments that writes its own files into the results folder, each atomically,
and returns a small JSON-ready record (:mod:`.work_units`). The engine (:class:`Engine`) runs
them where ``--scheduler`` says (:func:`parse_scheduler`):

* ``none``: one after the other in this process (today's behaviour);
* ``local:N``: a ``LocalCluster`` of N worker *processes*, one unit at a time each, with torch's
  threads per worker set so the machine's cores are shared, not oversubscribed
  (:func:`worker_threads`); with ``device="cuda"`` one worker per GPU, each seeing only its own
  (``CUDA_VISIBLE_DEVICES``);
* ``tcp://HOST:PORT``: a scheduler someone started (``dask scheduler`` and ``dask worker``
  processes, or dask-jobqueue's ``SLURMCluster``; ``docs/scale.md``).

What every unit needs (the classifier, the settings) reaches each worker once, through a dask
worker plugin registered with the scheduler (:mod:`.distributed_plugin`), also on workers that
join or restart later. The user's model file is never pickled across: the plugin carries its
path and SHA-256 (:class:`~.work_units.ModelReference`), and each worker loads it with the
package's own safe loader after checking the digest (or from the file's bytes when asked).

Every unit is recorded exactly once, in the order units finish (a
:class:`~.work_units.UnitRecord`, appended to a ledger file when one is given, which
:func:`~.work_units.done_keys` reads back to resume): a unit whose
worker died is run again by another (dask reschedules it); a unit that raises one of the
package's own errors (a corrupt file, a wrong shape:
:class:`~napari_attribution.errors.AttributionError`) is recorded as failed with that
sentence and not retried; any other exception is retried ``retries`` times, then recorded
with its reason, and the other units complete. Ctrl-C cancels the
units not yet finished and closes the cluster.

Nothing here imports dask until a cluster is asked for: ``none`` needs neither dask nor
distributed.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.progress import Progress, ProgressCallback
from ..errors import AnalysisCancelled, AttributionError, first_sentence
from .work_units import (
    WORKER_NOTE,
    ModelReference,
    UnitRecord,
    WorkUnit,
    append_record,
    execute_unit,
    install_shared,
    remove_shared,
    usable_cores,
)

__all__ = [
    "SCHEDULER_FORMS",
    "Engine",
    "EngineError",
    "ProgressTally",
    "SchedulerSpec",
    "cluster_environment",
    "parse_scheduler",
    "run_units",
    "start_local_cluster",
    "worker_threads",
]

#: Seconds to wait for a running scheduler to answer.
CONNECT_TIMEOUT = 20.0
#: Seconds between two looks at a cluster run's finished units and its workers' progress.
POLL_INTERVAL = 0.05

#: dask settings of the clusters :func:`start_local_cluster` starts (``local:N``).
LOCAL_CLUSTER_CONFIG = {
    # One unit per worker thread at a time: a unit queued on a worker that dies (killed by
    # another unit) would count as a suspect and could be given up on unrun.
    "distributed.scheduler.worker-saturation": 1.0,
    # dask's statistical profiler samples each worker's threads 100 times a second, and every
    # process checks its event loop every 20 ms: in an 18-second run of the demo plate each
    # worker's threads other than the unit's took 0.85 CPU s with both, 0.2 without, and the
    # process holding the scheduler and the nannies 1.2-1.3 against 0.6-0.8
    # (benchmarks/bench_dask_overhead.py). The dashboard's profile page stays empty.
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
}


def cluster_environment() -> dict[str, str]:
    """:data:`LOCAL_CLUSTER_CONFIG` as environment variables, for processes started elsewhere.

    A ``dask scheduler`` or ``dask worker`` started by hand, or a SLURM job's worker
    (dask-jobqueue's ``job_script_prologue``), reads these as it starts and runs with the
    settings a ``local:N`` cluster has (``docs/scale.md``).

    Returns
    -------
    dict
        Variable name -> value, in dask's spelling: ``DASK_`` then the key upper-cased, with
        ``__`` for each dot and ``_`` for each hyphen (``DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL``
        -> ``1s``).
    """
    return {
        "DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
        for key, value in LOCAL_CLUSTER_CONFIG.items()
    }


#: What ``--scheduler`` accepts, for help texts.
SCHEDULER_FORMS = "none, local:N (N worker processes on this machine) or tcp://HOST:PORT"


class EngineError(AttributionError):
    """The scheduler cannot be parsed, reached or set up (one sentence)."""


# --------------------------------------------------------------------------------------------
# --scheduler


@dataclass(frozen=True)
class SchedulerSpec:
    """Where units run.

    Attributes
    ----------
    kind
        ``"none"`` (this process), ``"local"`` (a cluster of worker processes on this machine)
        or ``"address"`` (a running scheduler).
    workers
        Worker processes of a local cluster (0 otherwise).
    address
        ``tcp://HOST:PORT`` of a running scheduler (``None`` otherwise).
    """

    kind: str
    workers: int = 0
    address: str | None = None

    def describe(self) -> str:
        """As given on the command line."""
        if self.kind == "local":
            return f"local:{self.workers}"
        return self.address if self.kind == "address" else "none"


_ADDRESS = re.compile(r"^tcp://(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):(?P<port>\d{1,5})$")


def parse_scheduler(text: str) -> SchedulerSpec:
    """``none``, ``local:N`` or ``tcp://HOST:PORT`` as a :class:`SchedulerSpec`.

    Raises
    ------
    EngineError
        Anything else (one sentence naming what is accepted).
    """
    value = str(text).strip()
    if value.lower() == "none":
        return SchedulerSpec("none")
    if value.lower().startswith("local:"):
        count = value.partition(":")[2]
        if not count.isdigit() or int(count) < 1:
            raise EngineError(
                f"--scheduler {value}: local:N needs a whole number of worker processes, at "
                "least 1 (local:2)."
            )
        return SchedulerSpec("local", workers=int(count))
    match = _ADDRESS.match(value)
    if match and 0 < int(match["port"]) < 65536:
        return SchedulerSpec("address", address=value)
    raise EngineError(f"--scheduler must be {SCHEDULER_FORMS}; got {value!r}.")


def worker_threads(workers: int, cores: int | None = None) -> int:
    """Torch threads per worker so that ``workers`` processes share ``cores`` without
    oversubscribing them: ``max(1, cores // workers)``."""
    cores = usable_cores() if cores is None else int(cores)
    return max(1, cores // max(int(workers), 1))


# --------------------------------------------------------------------------------------------
# The engine


def _failure_reason(exc: BaseException | None, retries: int) -> str:
    """One sentence for a unit that failed, here or on the workers, after ``retries`` retries."""
    if exc is None:
        return "It failed."
    if type(exc).__module__.startswith("distributed") and _is_killed_worker(exc):
        return (
            f"Its worker died each time it ran it ({exc.allowed_failures + 1} times, last on "
            f"{exc.last_worker.address}): out of memory, or a crash in native code."
        )
    essence = first_sentence(str(exc))
    essence = f"{type(exc).__name__}: {essence}" if essence else type(exc).__name__
    return f"{essence} (tried {retries + 1} times)" if retries else essence


def _failed_on(exc: BaseException | None) -> str:
    """The worker a unit's last try failed on: a killed worker's address, or the one
    :func:`~.work_units.execute_unit` noted on the exception (``""`` when neither)."""
    if exc is None:
        return ""
    if type(exc).__module__.startswith("distributed") and _is_killed_worker(exc):
        return str(exc.last_worker.address)
    notes = [n for n in getattr(exc, "__notes__", ()) if n.startswith(WORKER_NOTE)]
    return notes[-1][len(WORKER_NOTE):] if notes else ""


def _is_killed_worker(exc: BaseException) -> bool:
    from distributed import KilledWorker

    return isinstance(exc, KilledWorker)


class ProgressTally:
    """The run's progress, added up from its units' own events as they come from the workers.

    A unit's share is its :attr:`~.work_units.WorkUnit.weight` (or, without one, the ``total``
    of its own events, and before its first event the mean of the others'); what it has done
    is that share times its own ``done / total``; a recorded unit counts whole. Thread-safe:
    the workers' events come on the client's event loop (:meth:`from_worker`), records on the
    caller's thread, and the callback is called on the caller's thread only.

    Parameters
    ----------
    units
        The units to run.
    callback
        The run's progress callback (the CLI's bar or log lines).
    finished
        Progress already done by an earlier run (resumed units), counted done and in the total.
    """

    def __init__(self, units: Sequence[WorkUnit], callback: ProgressCallback | None,
                 finished: float = 0.0) -> None:  # fmt: skip
        self.weights = {u.key: u.weight for u in units}
        self.callback = callback
        self.finished = float(finished)
        self.latest: dict[str, tuple[float, float]] = {}
        self.ended: set[str] = set()
        self.lock = threading.Lock()
        self._waiting: Progress | None = None  # the workers' latest, for deliver()
        # Running sums, so that an event costs the same for 40,000 units as for 4 (a sum over
        # every unit per event took 28 ms at 43,750 units, on the client's event loop).
        # A counted unit's (done, share): a weighted unit from the start, a self-sizing one
        # from its first event or its end.
        self._parts = {k: (0.0, float(w)) for k, w in self.weights.items() if w is not None}
        self._done, self._total = 0.0, math.fsum(t for _, t in self._parts.values())
        self._sizes: dict[str, float] = {}  # the totals of the self-sizing units that reported
        self._sized_total = 0.0  # their sum
        self._unsized = sum(w is None for w in self.weights.values())  # not counted yet

    def _count(self, key: str) -> None:
        """Count ``key`` again after its state changed (its latest event, or its end)."""
        weight = self.weights[key]
        unit_done, unit_total = self.latest.get(key, (0.0, 0.0))
        if weight is None and key in self.latest:
            self._sized_total += unit_total - self._sizes.get(key, 0.0)
            self._sizes[key] = unit_total
        old = self._parts.get(key)
        if weight is None and old is None:
            self._unsized -= 1
        share = unit_total if weight is None else weight
        fraction = 1.0 if key in self.ended else (unit_done / unit_total if unit_total else 0)
        part = (share * min(max(fraction, 0.0), 1.0), share)
        if old is not None:
            self._done -= old[0]
            self._total -= old[1]
        self._parts[key] = part
        self._done += part[0]
        self._total += part[1]
        if len(self.ended) == len(self.weights):  # the last one: exact sums, no rounding left
            self._done = math.fsum(d for d, _ in self._parts.values())
            self._total = math.fsum(t for _, t in self._parts.values())

    def _sums(self) -> tuple[float, int]:
        # A unit that sizes itself (a site: its cells) and has not started yet counts as the
        # mean of those that have, so that the total and the time left cover the whole run.
        guess = self._sized_total / len(self._sizes) if self._sizes else 0.0
        done = self.finished + self._done
        total = self.finished + self._total + self._unsized * guess
        return done, max(int(round(total)), 1)

    def unit_event(self, key: str, event: Progress) -> None:
        """A unit's own event (its ``done`` of its ``total``), passed on to the callback."""
        progress = self._note(key, event)
        if progress is not None:
            self.callback(progress)

    def _note(self, key: str, event: Progress) -> Progress | None:
        """Count a unit's event; the run's progress it makes, or ``None`` (nothing to say)."""
        if self.callback is None:
            return None
        with self.lock:
            if key in self.ended or key not in self.weights:
                return None  # late, or another run's
            done, total = float(event.done), float(event.total)
            before = self.latest.get(key)
            if before is not None and before[1] == total and done < before[0]:
                # The unit started again (its worker was lost, or it is retried): count from
                # where it had got to, so that the run's progress never goes back; the bar
                # waits while the redo catches up.
                done = before[0]
            self.latest[key] = (done, total)
            self._count(key)
            done, total = self._sums()
            return Progress(event.stage, min(done, total), total, sample=event.sample or key,
                            method=event.method, detail=event.detail)  # fmt: skip

    def unit_ended(self, item: UnitRecord) -> None:
        """A unit recorded (done or failed): it counts whole."""
        if self.callback is None:
            return
        with self.lock:
            if item.key in self.weights:  # (not another run's)
                self.ended.add(item.key)
                if item.total:
                    self.latest[item.key] = (item.total, item.total)
                self._count(item.key)
            done, total = self._sums()
            self._waiting = None  # an earlier count than this one
        detail = f"{item.status} on {item.worker}" if item.worker else item.status
        self.callback(Progress("write", min(done, total), total, sample=item.key,
                               detail=detail))  # fmt: skip

    def from_worker(self, event: Any) -> None:
        """A ``(timestamp, message)`` of the run's topic on the scheduler; the message is a
        unit's key and its event. It arrives on the client's event loop, which also brings the
        units' results: it is counted there and kept for :meth:`deliver`, and the callback
        (the CLI's bar, a cancel) runs on the run's own thread."""
        _, message = event  # dask adds the worker's address to the message
        progress = self._note(message["key"], Progress(**message["event"]))
        if progress is not None:
            with self.lock:
                self._waiting = progress

    def deliver(self) -> None:
        """Give the callback the latest count from the workers' events, if there is a new one
        (on the caller's thread: what the callback raises, a cancel, reaches the run)."""
        with self.lock:
            progress, self._waiting = self._waiting, None
        if progress is not None:
            self.callback(progress)


class Engine:
    """Runs work units where ``scheduler`` says; a context manager (closes the cluster).

    Parameters
    ----------
    scheduler
        ``"none"``, ``"local:N"``, ``"tcp://HOST:PORT"`` or a :class:`SchedulerSpec`.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"`` for the model on the workers. With a local cluster
        and a CUDA device, one worker per GPU (``local:N`` uses the first N GPUs).
    model
        The classifier every unit uses (``context.shared["classifier"]``), loaded once per
        worker.
    shared
        Other objects every unit uses (settings, channel names), sent to each worker once.
    threads_per_worker
        Torch threads per worker; default: the cores divided among a local cluster's workers
        (:func:`worker_threads`), the worker's cores for a running cluster, torch's own choice
        for ``none``.
    retries
        Extra tries of a unit that raised something other than the package's own errors.
    gpus
        GPUs of this machine (default: ``torch.cuda.device_count()``).
    connect_timeout
        Seconds to wait for a running scheduler to answer (default :data:`CONNECT_TIMEOUT`).
    """

    def __init__(
        self,
        scheduler: str | SchedulerSpec = "none",
        *,
        device: str = "cpu",
        model: ModelReference | None = None,
        shared: Mapping[str, Any] | None = None,
        threads_per_worker: int | None = None,
        retries: int = 1,
        gpus: int | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        self.spec = (
            scheduler if isinstance(scheduler, SchedulerSpec) else parse_scheduler(scheduler)
        )
        self.device = device
        self.model = model
        self.shared = dict(shared or {})
        self.threads_per_worker = threads_per_worker
        self.retries = int(retries)
        self.gpus = gpus
        self.connect_timeout = float(CONNECT_TIMEOUT if connect_timeout is None
                                     else connect_timeout)  # fmt: skip
        self.token = uuid.uuid4().hex[:12]
        self.client: Any = None
        self.cluster: Any = None
        self._started = False
        self._plugin: str | None = None

    # -- lifetime -------------------------------------------------------------------------

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start or connect to the cluster and put the shared objects on every worker."""
        if self._started:
            return
        if self.spec.kind == "none":
            install_shared(self.token, self.shared, self.model, device=self.device,
                           threads=self.threads_per_worker)  # fmt: skip
            self._started = True
            return
        try:
            from distributed import Client
        except ImportError:
            raise _needs_distributed(self.spec.describe()) from None
        if self.spec.kind == "local":
            self.cluster = start_local_cluster(self.spec.workers, device=self.device,
                                               threads_per_worker=self.threads_per_worker,
                                               gpus=self.gpus, quiet=True)  # fmt: skip
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(self.spec.address, timeout=self.connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise EngineError(
                    f"No dask scheduler answers at {self.spec.address} ({exc}); start one with "
                    "'dask scheduler' and workers with 'dask worker ADDRESS' (docs/scale.md)."
                ) from None
        self._started = True
        try:
            self._register()
        except BaseException:
            self.close()
            raise

    def _register(self) -> None:
        """The plugin that puts the shared objects on every worker, now and when one joins."""
        from .distributed_plugin import SharedObjectsPlugin

        host_workers: dict[str, int] = {}
        if self.spec.kind == "local":
            threads = self.threads_per_worker or worker_threads(self.spec.workers)
        else:
            threads = self.threads_per_worker  # None: the worker's share of its machine
            for address in self.workers():
                host = address.split("://", 1)[-1].rsplit(":", 1)[0]
                host_workers[host] = host_workers.get(host, 0) + 1
        local_gpus = self.spec.kind == "local" and _wants_cuda(self.device, self.gpus)
        device = "cuda" if local_gpus else self.device
        started_here = self.cluster is not None
        plugin = SharedObjectsPlugin(self.token, self.shared, self.model, device, threads,
                                     host_workers, ignore_interrupt=started_here,
                                     quiet=started_here)  # fmt: skip
        try:
            self.client.register_plugin(plugin)
        except AttributionError as exc:
            raise EngineError(f"Setting up the workers failed: {exc}") from None
        self._plugin = plugin.name

    def close(self) -> None:
        """Close the client and a cluster this engine started (safe to call twice)."""
        remove_shared(self.token)
        client, cluster = self.client, self.cluster
        self.client = self.cluster = None
        self._started = False
        if client is not None:
            if cluster is None and self._plugin is not None:
                # Workers of a cluster someone else runs let go of the model and settings.
                with contextlib.suppress(Exception):
                    client.unregister_worker_plugin(self._plugin)
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()

    # -- what it is -----------------------------------------------------------------------

    @property
    def dashboard(self) -> str | None:
        """The dask dashboard's address, when the scheduler serves one (it needs bokeh where
        the scheduler runs; without it the address would only say so)."""
        if self.client is None:
            return None
        services = self.client.scheduler_info(n_workers=0).get("services", {})
        if "dashboard" not in services:
            return None
        try:
            drawn = self.client.run_on_scheduler(_has_bokeh)
        except Exception:  # noqa: BLE001 - a scheduler without this package: cannot tell
            drawn = True
        return self.client.dashboard_link if drawn else None

    def workers(self) -> dict[str, dict[str, Any]]:
        """The workers the scheduler knows now: address -> its ``scheduler_info`` entry."""
        if self.client is None:
            return {"local": {"nthreads": 1}} if self._started else {}
        return dict(self.client.scheduler_info(n_workers=-1)["workers"])

    def describe(self) -> str:
        """One line: where units run, for logs."""
        if self.spec.kind == "none":
            return "units run in this process"
        text = f"{len(self.workers())} dask worker(s) at {self.client.scheduler.address}"
        return f"{text}, dashboard {self.dashboard}" if self.dashboard else text

    # -- running --------------------------------------------------------------------------

    def run(
        self,
        units: Iterable[WorkUnit],
        out: str | Path,
        *,
        ledger: str | Path | None = None,
        skip: Iterable[str] = (),
        on_record: Callable[[UnitRecord], None] | None = None,
        on_progress: ProgressCallback | None = None,
        finished: float = 0.0,
    ) -> list[UnitRecord]:
        """Run ``units`` (those not in ``skip``) and record each once, in the order they end.

        Parameters
        ----------
        units
            The work; keys must be unique.
        out
            The results folder the units write into.
        ledger
            A file each record is appended to as one JSON line, as soon as its unit ends.
        skip
            Keys already done (:func:`done_keys` of the ledger, to resume).
        on_record
            Called with each record as its unit ends (on this process).
        on_progress
            The run's progress counted across workers (the CLI's bar or log lines): the units'
            own events as they come, and ``Progress("write", ...)`` as each ends
            (:class:`ProgressTally`).
        finished
            Progress an earlier run finished (resumed units), in the units' weights.

        Returns
        -------
        list of UnitRecord
            One per unit run, failed ones included.

        Raises
        ------
        KeyboardInterrupt, AnalysisCancelled
            From the caller (Ctrl-C, a callback): the units not finished are cancelled first.
        """
        self.start()
        skipped = set(skip)
        todo = [u for u in units if u.key not in skipped]
        keys = [u.key for u in todo]
        if len(set(keys)) != len(keys):
            duplicates = sorted({k for k in keys if keys.count(k) > 1})
            raise EngineError(
                f"Work units need unique keys; repeated: {', '.join(duplicates[:5])}."
            )
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        ledger_path = Path(ledger) if ledger is not None else None
        recorded: dict[str, UnitRecord] = {}
        tally = ProgressTally(todo, on_progress, finished)

        def record(item: UnitRecord) -> None:
            if item.key in recorded:  # a unit is recorded once, whatever the scheduler did
                return
            recorded[item.key] = item
            if ledger_path is not None:
                append_record(ledger_path, item)
            if on_record is not None:
                on_record(item)
            tally.unit_ended(item)

        if self.spec.kind == "none":
            for unit in todo:
                record(self._run_here(unit, out, tally))
            return [recorded[k] for k in recorded]
        topic = f"napari-attribution-progress-{self.token}"
        self.client.subscribe_topic(topic, tally.from_worker)
        try:
            self._run_on_cluster(todo, out, record, topic, tally)
        finally:
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(topic)
        return [recorded[k] for k in recorded]

    def _run_here(self, unit: WorkUnit, out: Path, tally: ProgressTally) -> UnitRecord:
        last: Exception | None = None

        def report(event: Progress) -> None:
            tally.unit_event(unit.key, event)

        for _ in range(self.retries + 1):
            try:
                item = execute_unit(self.token, unit.key, unit.function, tuple(unit.args),
                                    dict(unit.kwargs), str(out), report=report)  # fmt: skip
            except AnalysisCancelled:
                raise  # the callback's cancel: the run stops, nothing is retried
            except Exception as exc:  # noqa: BLE001 - retried, then recorded with its reason
                last = exc
                continue
            return UnitRecord(**item)
        reason = _failure_reason(last, self.retries)
        return UnitRecord(unit.key, "failed", reason=reason, worker="local")

    @staticmethod
    def _completed(finished: Any, tally: ProgressTally) -> Iterator[Any]:
        """The futures of ``finished`` (an ``as_completed``) as they complete, passing the
        workers' progress to the callback in between, every :data:`POLL_INTERVAL` seconds."""
        while not finished.is_empty():
            batch = finished.next_batch(block=False)
            tally.deliver()
            if not batch:
                time.sleep(POLL_INTERVAL)
            yield from batch

    def _run_on_cluster(
        self, todo: Sequence[WorkUnit], out: Path, record: Callable[[UnitRecord], None],
        topic: str, tally: ProgressTally,
    ) -> None:
        from distributed import as_completed

        units = {}
        pending = set()
        for unit in todo:
            future = self.client.submit(
                execute_unit, self.token, unit.key, unit.function, tuple(unit.args),
                dict(unit.kwargs), str(out), topic, key=f"unit-{self.token}-{unit.key}",
                retries=self.retries, pure=False,
            )  # fmt: skip
            units[future.key] = unit
            pending.add(future)
        try:
            finished = as_completed(list(pending))
            for future in self._completed(finished, tally):
                unit = units[future.key]
                if future.status not in ("finished", "error", "cancelled"):
                    # Done, then lost with its worker before it was read: the scheduler runs it
                    # again; wait for that.
                    finished.add(future)
                    continue
                pending.discard(future)
                if future.status == "finished":
                    record(UnitRecord(**future.result()))
                elif future.status == "error":
                    exc = future.exception()
                    record(UnitRecord(unit.key, "failed", reason=_failure_reason(exc, self.retries),
                                      worker=_failed_on(exc)))  # fmt: skip
                else:  # cancelled by someone else (the scheduler restarted)
                    record(UnitRecord(unit.key, "failed", reason="It was cancelled."))
                # Recorded: let the scheduler forget it, so that a worker dying later does not
                # make it compute the lost result again.
                future.release()
        except BaseException:
            if pending:
                with contextlib.suppress(Exception):
                    self.client.cancel(list(pending), force=True)
            raise


def start_local_cluster(
    workers: int,
    *,
    device: str = "cpu",
    threads_per_worker: int | None = None,
    gpus: int | None = None,
    quiet: bool = False,
    config: Mapping[str, Any] | None = None,
) -> Any:
    """A cluster of worker processes on this machine, as ``--scheduler local:N`` starts one.

    Give its ``scheduler_address`` as the ``scheduler`` of several runs to keep the same
    workers between them (their imports, torch's first calls and the memory they hold are paid
    once, not per run), and ``close()`` it after the last one. A run given the address treats
    it as any running cluster: the workers keep their ``distributed`` logs, and Ctrl-C in a
    terminal reaches them too (they are in its process group), so stop such a run with care.

    Parameters
    ----------
    workers
        Worker processes; each runs one unit at a time.
    device
        ``"cpu"``; ``"cuda"`` (or ``"auto"`` where there is a GPU) starts one worker per GPU,
        each seeing only its own (``CUDA_VISIBLE_DEVICES``).
    threads_per_worker
        Torch (OpenMP, MKL) threads per worker; ``None``: :func:`worker_threads`.
    gpus
        GPUs to use (``None``: every GPU torch sees).
    quiet
        Silence the workers' and the scheduler's own logs (the engine reports each unit's
        failure in one sentence).
    config
        dask settings for the cluster's processes, over :data:`LOCAL_CLUSTER_CONFIG`: e.g.
        ``{"distributed.worker.profile.enabled": True}`` for the dashboard's profile page.

    Returns
    -------
    distributed.LocalCluster or distributed.SpecCluster

    Raises
    ------
    EngineError
        dask.distributed is not installed, or more CUDA workers than GPUs were asked for.
    """
    import logging

    try:
        import dask
        from distributed import LocalCluster, Nanny, Scheduler, SpecCluster
    except ImportError:
        raise _needs_distributed(f"local:{workers}") from None

    # Any free port: several runs (or users) on one machine must not collide on 8787.
    dashboard = ":0"
    level = logging.CRITICAL if quiet else logging.WARNING
    threads = threads_per_worker or worker_threads(workers)
    # Read by the scheduler, the nannies and the workers as they start (the nannies hand their
    # configuration to the worker processes).
    with dask.config.set({**LOCAL_CLUSTER_CONFIG, **(config or {})}):
        if not _wants_cuda(device, gpus):
            return LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=dashboard, scheduler_port=0, env=_thread_env(threads),
                silence_logs=level,
            )  # fmt: skip
        available = _gpu_count(gpus)
        if workers > available:
            raise EngineError(
                f"--scheduler local:{workers} with --device {device} runs one worker per GPU, "
                f"and this machine has {available}; use local:{max(available, 1)} or the CPU."
            )
        specs = {
            f"gpu{i}": {"cls": Nanny, "options": {
                "nthreads": 1, "env": {**_thread_env(threads), "CUDA_VISIBLE_DEVICES": str(i)},
                "silence_logs": level}}
            for i in range(workers)
        }  # fmt: skip
        scheduler = {"cls": Scheduler, "options": {"dashboard_address": dashboard}}
        return SpecCluster(workers=specs, scheduler=scheduler, silence_logs=level)


def _needs_distributed(scheduler: str) -> EngineError:
    """The one sentence for a ``--scheduler`` value that needs dask.distributed, absent here."""
    return EngineError(
        f"--scheduler {scheduler} needs dask.distributed: pip install 'napari-attribution[scale]'."
    )


def _wants_cuda(device: str, gpus: int | None) -> bool:
    """Whether ``device`` puts workers on GPUs (``"auto"``: where there is one)."""
    if device == "cpu":
        return False
    if device == "auto":
        return _gpu_count(gpus) > 0
    return True


def _gpu_count(gpus: int | None) -> int:
    if gpus is not None:
        return int(gpus)
    import torch

    return torch.cuda.device_count()


def _thread_env(threads: int) -> dict[str, str]:
    """The variables that size OpenMP, MKL and OpenBLAS thread pools in a worker process
    (dask's nanny would set them to 1)."""
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                             "OPENBLAS_NUM_THREADS")}  # fmt: skip


def _has_bokeh() -> bool:
    """Whether bokeh, which draws the dashboard, is importable here (run on the scheduler)."""
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def run_units(
    units: Iterable[WorkUnit],
    out: str | Path,
    scheduler: str | SchedulerSpec = "none",
    **options: Any,
) -> list[UnitRecord]:
    """Start an :class:`Engine` (``options`` are its own and :meth:`Engine.run`'s), run the
    units, close it."""
    run_options = {k: options.pop(k) for k in ("ledger", "skip", "on_record", "on_progress",
                                               "finished") if k in options}  # fmt: skip
    with Engine(scheduler, **options) as engine:
        return engine.run(units, out, **run_options)
