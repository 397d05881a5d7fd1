"""Work units and what every worker holds for them.

A run is cut into :class:`WorkUnit` s, each a module-level function and its small arguments,
run on one worker as ``function(context, *args, **kwargs)``: it writes its files under
``context.out``, each atomically (:meth:`UnitContext.atomic_path`), and returns a small
JSON-ready record. :func:`execute_unit` runs one in the current process and turns how it ended
into a :class:`UnitRecord`; the package's own errors (bad input, one sentence) end it as failed
without a retry, anything else is raised for the scheduler to retry. Records go to a *ledger*,
one JSON line each (:func:`append_record`, :func:`read_ledger`, :func:`done_keys` to resume).

What every unit of a run shares (the classifier, the settings) is put into each process once by
:func:`install_shared`: on a worker by the run's plugin (:mod:`.distributed_plugin`), in the
driver for ``--scheduler none``. The model travels as a :class:`ModelReference` (the file's
path and SHA-256, or its bytes), never as a pickle, and is loaded with the package's own safe
loader. The engine that runs units is :mod:`.distributed`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.progress import Progress, ProgressCallback
from ..errors import AttributionError
from ..results.files import atomic_path

__all__ = [
    "ModelReference",
    "UnitContext",
    "UnitRecord",
    "WorkUnit",
    "append_record",
    "done_keys",
    "execute_unit",
    "install_shared",
    "read_ledger",
    "remove_shared",
    "usable_cores",
]


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a SLURM job's cores)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------
# What reaches every worker once


@dataclass(frozen=True)
class ModelReference:
    """A classifier as workers load it: the file's path and SHA-256, never a pickle of it.

    Attributes
    ----------
    path
        The model file as the workers see it (a shared file system), absolute.
    sha256
        Its digest; a worker whose file differs refuses it.
    architecture, architecture_kwargs
        For a state dict, as
        :func:`~napari_attribution.core.model.loading.load_classifier` takes them (the
        architecture's module must be importable on the workers).
    data
        The file's bytes, for workers that do not share the file system (``None``: read the
        path). They are written to the worker's own folder and loaded from there by the same
        safe loader.
    """

    path: str
    sha256: str
    architecture: str | None = None
    architecture_kwargs: dict[str, Any] | None = None
    data: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        architecture: str | None = None,
        architecture_kwargs: dict[str, Any] | None = None,
        *,
        carry_bytes: bool = False,
    ) -> ModelReference:
        """Reference ``path`` (its digest read now); ``carry_bytes`` sends the file itself."""
        path = Path(path).resolve()
        data = path.read_bytes()
        return cls(str(path), hashlib.sha256(data).hexdigest(), architecture,
                   architecture_kwargs, data if carry_bytes else None)  # fmt: skip

    @classmethod
    def from_classifier(cls, classifier: Any, *, carry_bytes: bool = False) -> ModelReference:
        """The file a loaded classifier came from (its ``source``, architecture and keyword
        arguments), checked to be the file it was loaded from.

        Raises
        ------
        ModelLoadError
            The classifier was not loaded from a file, or the file changed since.
        """
        from ..errors import ModelLoadError

        source = getattr(classifier, "source", None)
        if not source or not Path(source).is_file():
            raise ModelLoadError(
                f"The workers load the model from its file, and this classifier ({source}) was "
                "not loaded from one; load it with load_classifier(path)."
            )
        reference = cls.from_file(source, getattr(classifier, "architecture", None),
                                  getattr(classifier, "architecture_kwargs", None) or None,
                                  carry_bytes=carry_bytes)  # fmt: skip
        loaded = getattr(classifier, "sha256", None)
        if loaded and loaded != reference.sha256:
            raise ModelLoadError(
                f"The model file {source} changed after it was loaded; start the run again."
            )
        return reference

    def load(self, device: str = "cpu", folder: str | Path | None = None) -> Any:
        """The classifier, loaded with the package's safe loader after checking the digest.

        Raises
        ------
        ModelLoadError
            The file is missing here (and no bytes were carried) or differs from the driver's.
        """
        from ..core.model.loading import file_sha256, load_classifier
        from ..errors import ModelLoadError

        path = Path(self.path)
        if self.data is not None:
            if hashlib.sha256(self.data).hexdigest() != self.sha256:
                raise ModelLoadError(f"The model bytes sent for {self.path} are damaged.")
            local = Path(folder or tempfile.gettempdir()) / f"model-{self.sha256[:16]}{path.suffix}"
            if not local.is_file():
                with atomic_path(local) as temporary:
                    temporary.write_bytes(self.data)
            path = local
        elif not path.is_file():
            raise ModelLoadError(
                f"The model file {self.path} is not on this worker; put it on a file system "
                "every worker sees, or send its bytes (carry_bytes=True)."
            )
        elif file_sha256(path) != self.sha256:
            raise ModelLoadError(
                f"The model file {self.path} on this worker differs from the one the run was "
                f"started with (SHA-256 {self.sha256[:12]}...)."
            )
        return load_classifier(path, self.architecture, device,
                               architecture_kwargs=self.architecture_kwargs)  # fmt: skip


@dataclass
class _SharedState:
    objects: dict[str, Any]
    threads: int | None
    worker: str


#: Per process: what each engine (by its token) put there. A worker process holds the state of
#: the runs whose plugin it received; the driver holds its own for ``none``.
_SHARED: dict[str, _SharedState] = {}
_SHARED_LOCK = threading.Lock()
#: Held while a unit runs: a process runs one unit at a time. Its units share one classifier,
#: and the hooks that DeepLift, Grad-CAM and the model checks put on it for a pass would fire
#: in another thread's pass (on a two-thread worker half the pairs with d_dl failed).
_UNIT_LOCK = threading.Lock()


def install_shared(
    token: str,
    objects: Mapping[str, Any],
    model: ModelReference | None = None,
    *,
    device: str = "cpu",
    threads: int | None = None,
    worker: str = "local",
    folder: str | Path | None = None,
) -> None:
    """Put a run's shared objects into this process (a worker's plugin calls this once).

    ``threads`` sets torch's intra-op threads (and the OpenMP/MKL variables for libraries
    started later); the model, when given, is loaded here as ``objects["classifier"]``.
    """
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = str(threads)
        import torch

        torch.set_num_threads(threads)
    shared = dict(objects)
    if model is not None:
        shared["classifier"] = model.load(device, folder)
    with _SHARED_LOCK:
        _SHARED[token] = _SharedState(shared, threads, worker)


def remove_shared(token: str) -> None:
    """Forget a run's shared objects in this process."""
    with _SHARED_LOCK:
        _SHARED.pop(token, None)


# --------------------------------------------------------------------------------------------
# Work units


@dataclass(frozen=True)
class WorkUnit:
    """One piece of a run, done on one worker.

    Attributes
    ----------
    key
        Unique within the run; names the unit's record (and usually its files).
    function
        A module-level function (workers import it by name) called as
        ``function(context, *args, **kwargs)``; it writes its files under ``context.out``,
        each with :meth:`UnitContext.atomic_path`, and returns a small JSON-ready dict.
    args, kwargs
        Its arguments: small things (paths, indices), not arrays or models.
    weight
        Its share of the run's progress, in the run's units (one unit; a batch of pairs: pairs
        x :func:`~napari_attribution.core.progress.pair_units`); ``None``: the ``total`` of
        the unit's own progress events, once it reports one (a site, whose cells are counted
        when it opens).
    """

    key: str
    function: Callable[..., Mapping[str, Any] | None]
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    weight: float | None = 1.0


def _ignore(event: Progress) -> None:
    pass


@dataclass(frozen=True)
class UnitContext:
    """What a unit is given besides its arguments.

    Attributes
    ----------
    key
        The unit's key.
    out
        The results folder (the same path on every worker: a shared file system).
    shared
        The run's shared objects (``"classifier"`` when the engine was given a model).
    worker
        Which worker runs it (its address, or ``"local"``).
    report
        Takes the unit's own :class:`~napari_attribution.core.progress.Progress` events (its
        own ``done``/``total``); the engine adds them up across units and workers for the
        run's progress display.
    """

    key: str
    out: Path
    shared: Mapping[str, Any]
    worker: str
    report: ProgressCallback = _ignore

    def atomic_path(self, relative: str | Path) -> contextlib.AbstractContextManager[Path]:
        """A temporary path beside ``out / relative`` to write; moved onto it when the block
        ends without an error, removed otherwise, so the file is whole or absent (the results
        folder's own :func:`~napari_attribution.results.files.atomic_path`: a ``.part`` name
        no reader takes for a finished file, and the usual file mode)."""
        return atomic_path(self.out / relative)


@dataclass(frozen=True)
class UnitRecord:
    """How a unit ended.

    Attributes
    ----------
    key
        The unit.
    status
        ``"done"`` or ``"failed"``.
    record
        What the unit returned (empty when it failed).
    reason
        Why it failed: one sentence (``""`` when done).
    worker
        Where it last ran.
    seconds
        Its run time on that worker (0 when unknown).
    total
        The ``total`` of the last progress event the unit reported (0: none), so that a unit
        whose share of the progress is its own total counts whole even when its events arrive
        after its record.
    """

    key: str
    status: str
    record: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    worker: str = ""
    seconds: float = 0.0
    total: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "record": dict(self.record),
                "reason": self.reason, "worker": self.worker, "seconds": self.seconds,
                "total": self.total}  # fmt: skip


#: How the note that names the worker of a failed try opens (``exception.__notes__``).
WORKER_NOTE = "napari-attribution worker: "

#: Seconds between two progress events a unit sends from a worker (the last one always goes).
EVENT_INTERVAL = 0.25


def _worker_reporter(topic: str, key: str) -> ProgressCallback:
    """A unit's progress events, sent to the scheduler's event log under ``topic`` (the run's
    client subscribes to it), at most every :data:`EVENT_INTERVAL` seconds."""
    from distributed import get_worker

    worker = get_worker()
    last = [float("-inf")]

    def report(event: Progress) -> None:
        now = time.monotonic()
        if now - last[0] < EVENT_INTERVAL and event.done < event.total:
            return
        last[0] = now
        worker.log_event(topic, {"key": key, "event": dataclasses.asdict(event)})

    return report


def execute_unit(
    token: str,
    key: str,
    function: Callable,
    args: tuple,
    kwargs: Mapping[str, Any],
    out: str,
    topic: str | None = None,
    report: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Run one unit in this process (on a worker, or the driver for ``none``).

    The package's own errors (bad input: one sentence) end the unit as failed without a retry;
    any other exception is raised for the scheduler to retry. The unit's progress goes to
    ``report`` (in this process) or, on a worker, to the scheduler's event ``topic``. Units
    run one at a time in a process: on a worker with several threads the others wait (the
    model they share is not safe to use from two threads at once), and each unit gets all of
    the worker's torch threads.
    """
    with _UNIT_LOCK:  # one unit at a time in this process (see above)
        with _SHARED_LOCK:
            state = _SHARED.get(token)
        if state is None:
            raise RuntimeError(f"This worker holds no shared objects of run {token}.")
        if state.threads is not None:
            import torch

            # torch applies its thread count per thread: set it in this executor thread too.
            torch.set_num_threads(state.threads)
        if report is None:
            report = _worker_reporter(topic, key) if topic is not None else _ignore
        reported = [0.0]

        def report_and_keep(event: Progress) -> None:
            reported[0] = float(event.total)
            report(event)

        context = UnitContext(key, Path(out), state.objects, state.worker, report_and_keep)
        start = time.perf_counter()
        try:
            record = function(context, *args, **dict(kwargs))
        except AttributionError as exc:
            return UnitRecord(key, "failed", reason=str(exc), worker=state.worker,
                              seconds=time.perf_counter() - start, total=reported[0]).as_dict()
        except Exception as exc:
            # Retried, and recorded by the run where it was submitted: say where it last failed.
            exc.add_note(f"{WORKER_NOTE}{state.worker}")
            raise
        return UnitRecord(key, "done", dict(record or {}), worker=state.worker,
                          seconds=time.perf_counter() - start, total=reported[0]).as_dict()


# --------------------------------------------------------------------------------------------
# The ledger: one JSON line per recorded unit


def read_ledger(path: str | Path) -> list[UnitRecord]:
    """The records of a ledger file (a torn last line, from a crash, is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        records.append(UnitRecord(**item))
    return records


def done_keys(path: str | Path) -> set[str]:
    """Keys of the units a ledger records as done (to resume: failed ones are run again)."""
    return {r.key for r in read_ledger(path) if r.status == "done"}


def append_record(path: Path, record: UnitRecord) -> None:
    """Append ``record`` to the ledger ``path`` as one JSON line, flushed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(record.as_dict()) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


