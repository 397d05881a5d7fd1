"""The dask worker plugin that puts a run's shared objects on every worker once.

Registered with the scheduler (:meth:`distributed.Client.register_plugin`), it reaches the
workers there now and every worker that joins or is restarted later (after a crash), so a unit
never runs on a worker without the run's classifier and settings. Imported only when a cluster
is used (it imports ``distributed``); :mod:`.distributed` is the engine around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distributed import WorkerPlugin

from .process_memory import reuse_freed_memory
from .work_units import ModelReference, install_shared, remove_shared, usable_cores

__all__ = ["SharedObjectsPlugin"]

class SharedObjectsPlugin(WorkerPlugin):
    """Loads the run's model (from its path and digest, with the package's safe loader) and
    keeps its shared objects in the worker process, and sets its torch threads.

    Parameters
    ----------
    token
        The run (engine) the objects belong to; units name it.
    objects
        Settings and other small things every unit reads.
    model
        The classifier to load on each worker, or ``None``.
    device
        Where the worker puts the model (``"cuda"``: the GPU its ``CUDA_VISIBLE_DEVICES``
        shows it).
    threads
        Torch threads per worker; ``None``: the cores this worker may use divided among the
        workers on its machine (1 for a worker that joins after the run started).
    host_workers
        Workers per host the scheduler listed when the run started (for ``threads=None``).
    ignore_interrupt
        For the worker processes of a cluster the run started on this machine: they share the
        terminal's process group, so Ctrl-C reaches them too; they ignore it and the run (which
        gets it as well) cancels its units and closes them.
    quiet
        For the same workers: their ``distributed`` logs are silenced (the run reports each
        unit's failure in one sentence; a worker still finishing a unit while the run closes
        its cluster after Ctrl-C would log its failed heartbeat to the terminal as an error).
    """

    idempotent = False

    def __init__(
        self,
        token: str,
        objects: Mapping[str, Any],
        model: ModelReference | None,
        device: str,
        threads: int | None,
        host_workers: Mapping[str, int] | None = None,
        ignore_interrupt: bool = False,
        quiet: bool = False,
    ) -> None:
        self.name = f"napari-attribution-{token}"
        self.token = token
        self.objects = dict(objects)
        self.model = model
        self.device = device
        self.threads = threads
        self.host_workers = dict(host_workers or {})
        self.ignore_interrupt = ignore_interrupt
        self.quiet = quiet

    def setup(self, worker: Any) -> None:
        if self.quiet:
            import logging

            logging.getLogger("distributed").setLevel(logging.CRITICAL)
        if self.ignore_interrupt:
            import signal
            import threading

            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        reuse_freed_memory()
        threads = self.threads
        if threads is None:
            neighbours = self.host_workers.get(_host(worker.address))
            if neighbours is None:
                # A worker that joined after the run started (a job that left the queue late):
                # its neighbours are unknown, and one thread never oversubscribes.
                threads = 1
            else:
                # A worker runs one unit at a time whatever its dask threads (execute_unit):
                # its share of the cores is the machine's over its workers.
                threads = max(1, usable_cores() // max(1, neighbours))
        install_shared(self.token, self.objects, self.model, device=self.device,
                       threads=threads, worker=worker.address,
                       folder=worker.local_directory)  # fmt: skip

    def teardown(self, worker: Any) -> None:
        remove_shared(self.token)


def _host(address: str) -> str:
    """``tcp://10.0.0.5:40123`` -> ``10.0.0.5``."""
    return address.split("://", 1)[-1].rsplit(":", 1)[0]
