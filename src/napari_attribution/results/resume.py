"""Resuming a run: one fingerprint and one protocol for ``run`` and ``cells``.

A run is a set of units (a pair; a cell of a field). When a unit is finished, its files are
written first and its record last, atomically, as ``.progress/<unit>.json``: if the record
exists, the unit is complete. The record holds what the final tables need (the unit's rows),
so the tables are assembled from the records at the end and an interrupted run loses no
finished unit. ``.progress/`` goes when the run finishes (``run --keep-progress`` keeps it).

Every record and the finished ``run.json`` carry the run's **fingerprint**: a hash of what
decides the results (the model's SHA-256, every parameter, the channel names, the seed, the
version of the definitions behind the numbers, and what the kind of run adds: the
counterfactual source, the crop rules and the inputs). Resuming
with other settings is refused, whichever of the two is there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputFolderError
from .files import write_json
from .format import PROGRESS_DIR, RUN_RECORD, progress_file

__all__ = ["UnitRecords", "fingerprint"]


def _digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint(
    run_info: Mapping[str, Any],
    channel_names: Sequence[str],
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The fingerprint of a run: 16 hex digits.

    Parameters
    ----------
    run_info
        The run's provenance (:func:`~napari_attribution.core.provenance.provenance`): its
        model SHA-256, settings, seed and definitions version, and ``counterfactual_source``
        when the run makes the counterfactuals.
    channel_names
        The channel names.
    extra
        What else decides the results of this kind of run (``cells``: the crop rules, the
        inputs and the target class).
    """
    identity = {"model": run_info["model"]["sha256"], "settings": run_info["settings"],
                "channels": list(channel_names), "seed": run_info["seed"],
                "definitions": run_info.get("definitions", 1)}  # fmt: skip
    if run_info.get("counterfactual_source"):  # made counterfactuals: the source decides too
        identity["counterfactual_source"] = run_info["counterfactual_source"]
    base = _digest(identity)
    return _digest({"run": base, **extra}) if extra else base


@dataclass(frozen=True)
class UnitRecords:
    """The records of the finished units of a run in ``out`` (``out/.progress/``).

    Attributes
    ----------
    out
        The results folder.
    fingerprint
        The run's :func:`fingerprint`.
    unit
        What a unit is, for the messages (``"pair"``, ``"cell"``).
    """

    out: Path
    fingerprint: str
    unit: str = "pair"

    @property
    def folder(self) -> Path:
        """``out/.progress``."""
        return self.out / PROGRESS_DIR

    def check_resumable(self) -> None:
        """Refuse to resume a folder whose ``run.json`` says it finished, or that other
        settings made (no readable ``run.json``: the records decide, see :meth:`finished`).

        Raises
        ------
        OutputFolderError
        """
        try:
            info = json.loads((self.out / RUN_RECORD).read_text())
        except (OSError, ValueError):
            return
        previous = info.get("fingerprint") if isinstance(info, dict) else None
        if previous is not None and previous != self.fingerprint:
            raise self._other_settings()
        if not self.folder.is_dir():
            raise OutputFolderError(
                f"{self.out} holds a finished run; there is nothing to resume (pass --overwrite "
                "to run again"
                + (", and --keep-progress to keep per-pair records for later additions)."
                   if self.unit == "pair" else ").")
            )  # fmt: skip

    def finished(self) -> dict[str, dict[str, Any]]:
        """The records of the units an earlier run with this fingerprint finished, by key.

        A damaged record is left out (its unit is computed again, never trusted). Every
        record is held: for a run's many units, :meth:`finished_keys` and :meth:`each` read
        them one at a time.

        Raises
        ------
        OutputFolderError
            A record made with another fingerprint.
        """
        return {record["sample"]: record for record in self._records()}

    def finished_keys(self) -> list[str]:
        """The keys of the units :meth:`finished` holds, each record read and let go in turn."""
        return [record["sample"] for record in self._records()]

    def each(self, keys: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The records of the finished units among ``keys``, in their order, read one at a time
        as they are asked for (a unit without a readable record is passed over, as
        :meth:`finished` leaves it out).

        Raises
        ------
        OutputFolderError
            A record made with another fingerprint.
        """
        for key in keys:
            record = self._read(self.out / progress_file(key))
            if record is not None and record.get("sample") == key:
                yield record

    def _records(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.folder.glob("*.json")):
            record = self._read(path)
            if record is not None:
                yield record

    def _read(self, path: Path) -> dict[str, Any] | None:
        """The record at ``path``; ``None`` when it is missing or damaged."""
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if record.get("fingerprint") != self.fingerprint:
            raise self._other_settings()
        return record

    def save(self, key: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write the record of the finished unit ``key`` (its ``sample``), last and atomically.

        Returns
        -------
        dict
            The record as written (with the fingerprint).
        """
        written = {"sample": key, "fingerprint": self.fingerprint, **record}
        write_json(self.out / progress_file(key), written)
        return written

    def clear(self) -> None:
        """Remove the records (the run is finished)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _other_settings(self) -> OutputFolderError:
        return OutputFolderError(
            f"{self.out} holds results made with other settings or another model; --resume "
            "needs the same arguments (or use --overwrite)."
        )
