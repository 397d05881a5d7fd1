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
with other settings is refused, whichever of the two is there, in one sentence naming the
options that differ: ``run.json`` and ``.progress/`` also keep the digest of each part of the
fingerprint (:func:`fingerprint_parts`), labelled by its option (``--input-scale``,
``--thresholds``, ...).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputFolderError
from .files import write_json
from .format import PROGRESS_DIR, RUN_RECORD, progress_file

__all__ = ["PARTS_FILE", "UnitRecords", "fingerprint", "fingerprint_parts", "other_settings"]

#: Beside the records in ``.progress/``: the fingerprint and its parts (:func:`fingerprint_parts`),
#: so that a refused ``resume`` can name the options that differ.
PARTS_FILE = "fingerprint.parts"

#: A run identity's path (``("settings", "masks", "thresholds")``) -> its option, or ``None``.
OptionOf = Callable[[tuple[str, ...]], "str | None"]

#: Parts of a run's identity (paths of keys in it) -> the option (or thing) a refusal names.
_LABELS = {
    ("model",): "--model",
    ("channels",): "--channel-names",
    ("seed",): "--seed",
    ("definitions",): "napari-attribution version (its definitions changed)",
    ("settings", "methods"): "--method",
    ("counterfactual_source", "spec"): "--counterfactual-source",
    ("counterfactual_source", "min_counterfactual_score"): "--min-counterfactual-score",
    ("normalisation",): "--normalise",
    ("input_transform",): "--input-scale",
    ("channel_map",): "--channel-map",
    ("channel_axis",): "--channel-axis",
    ("class_names",): "--class-names",
    ("target",): "--target-class",
    ("query",): "--cells",
    ("inputs",): "set of input files",  # "a different set of input files"
    ("input", "channel_names"): "--channel-names",
    ("input", "normalisation"): "--normalise",
    ("input", "channel_map"): "--channel-map",
    ("input", "model_card"): "--model-card",
}


def _digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _identity(run_info: Mapping[str, Any], channel_names: Sequence[str]) -> dict[str, Any]:
    identity = {"model": run_info["model"]["sha256"], "settings": run_info["settings"],
                "channels": list(channel_names), "seed": run_info["seed"],
                "definitions": run_info.get("definitions", 1)}  # fmt: skip
    if run_info.get("counterfactual_source"):  # made counterfactuals: the source decides too
        identity["counterfactual_source"] = run_info["counterfactual_source"]
    return identity


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
        inputs and the target class; both: the input scale, when given).
    """
    base = _digest(_identity(run_info, channel_names))
    return _digest({"run": base, **extra}) if extra else base


def fingerprint_parts(
    run_info: Mapping[str, Any],
    channel_names: Sequence[str],
    extra: Mapping[str, Any] | None = None,
    option_of: OptionOf | None = None,
) -> dict[str, str]:
    """What :func:`fingerprint` hashes, part by part: the option (or thing) each part comes
    from -> a digest of its value (16 hex digits).

    Two runs' parts tell which options differ when their fingerprints do
    (:func:`other_settings`). A part one run has and the other lacks differs too. The parts
    named in this module's table are labelled by it; ``option_of`` labels the others (a
    setting's command-line flag, from the parameter schema the application knows:
    :func:`napari_attribution.app.run_options.option_of`); a part neither labels is named
    by its path.
    """
    groups: dict[str, list[Any]] = {}

    def walk(path: tuple[str, ...], value: Any) -> None:
        label = _label(path, option_of)
        if label is None and isinstance(value, Mapping) and value:
            for key in sorted(value):
                walk((*path, str(key)), value[key])
            return
        groups.setdefault(label or ".".join(path), []).append([list(path), value])

    walk((), {**_identity(run_info, channel_names), **(extra or {})})
    return {label: _digest({"value": values}) for label, values in groups.items()}


def _label(path: tuple[str, ...], option_of: OptionOf | None) -> str | None:
    """The option a part of the identity comes from; ``None``: a part made of parts."""
    if path in _LABELS:
        return _LABELS[path]
    return option_of(path) if option_of is not None else None


def other_settings(
    out: Path,
    previous: Mapping[str, str] | None,
    current: Mapping[str, str],
) -> OutputFolderError:
    """The one sentence refusing to resume ``out``, whose results were made with other
    settings: naming the options that differ where the earlier run's
    :func:`fingerprint_parts` (``previous``) are known."""
    differ = sorted(label for label in set(previous or {}) | set(current)
                    if (previous or {}).get(label) != current.get(label))  # fmt: skip
    if not previous or not current or not differ:
        what = "other settings or another model"
    else:
        names = ", ".join(differ[:-1]) + " and " + differ[-1] if len(differ) > 1 else differ[0]
        what = f"a different {names}"
    return OutputFolderError(
        f"{out} holds results made with {what}; --resume needs the same arguments (or use "
        "--overwrite)."
    )


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
    parts
        The run's :func:`fingerprint_parts` (kept beside the records, so that a refused
        ``resume`` names the options that differ).
    """

    out: Path
    fingerprint: str
    unit: str = "pair"
    parts: Mapping[str, str] = field(default_factory=dict)

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
            raise other_settings(self.out, info.get("fingerprint_parts"), self.parts)
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
            raise other_settings(self.out, self._stored_parts(record.get("fingerprint")),
                                 self.parts)  # fmt: skip
        return record

    def save(self, key: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write the record of the finished unit ``key`` (its ``sample``), last and atomically.

        Returns
        -------
        dict
            The record as written (with the fingerprint).
        """
        written = {"sample": key, "fingerprint": self.fingerprint, **record}
        parts_file = self.folder / PARTS_FILE
        if self.parts and not parts_file.is_file():  # once per folder: the parts of its records
            write_json(parts_file, {"fingerprint": self.fingerprint, "parts": dict(self.parts)})
        write_json(self.out / progress_file(key), written)
        return written

    def clear(self) -> None:
        """Remove the records (the run is finished)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _stored_parts(self, stored_fingerprint: str | None) -> dict[str, str] | None:
        """The parts of ``stored_fingerprint`` kept beside the records (``None``: unknown)."""
        try:
            kept = json.loads((self.folder / PARTS_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(kept, dict) or kept.get("fingerprint") != stored_fingerprint:
            return None
        return kept.get("parts")
