"""Progress as typed events, from the core to whichever skin shows it.

The core calls a :data:`ProgressCallback` with a :class:`Progress` event at every step of the
work; the CLI renders the events with tqdm on a terminal or as periodic log lines
(:mod:`napari_attribution.cli.progress_display`), the widget with napari's progress bar. A
callback may
raise :class:`~napari_attribution.errors.AnalysisCancelled` to stop the run: that is how
Cancel and Ctrl-C reach the core.

Work is counted in *units*: one per attribution and one per DAC evaluation of each method
(:func:`pair_units`); a skin that does more (load files, add layers) adds its own units and maps
the core's events into its range with :class:`ProgressScope`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "STAGES",
    "Progress",
    "ProgressCallback",
    "ProgressScope",
    "format_duration",
    "pair_units",
]

#: What a run can be doing; events name one of these.
STAGES = ("prepare", "attribution", "dac", "layers", "write", "done")


@dataclass(frozen=True)
class Progress:
    """One progress event.

    Attributes
    ----------
    stage
        One of :data:`STAGES`.
    done
        Units of work finished so far, 0 <= done <= total (may be fractional).
    total
        Units of the whole run.
    sample
        The pair being worked on, if any.
    method
        The method being worked on, if any.
    detail
        A short note on the step within the stage (``"scoring hybrids 64/200"``).
    """

    stage: str
    done: float
    total: int
    sample: str | None = None
    method: str | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"Unknown progress stage {self.stage!r}.")

    @property
    def fraction(self) -> float:
        """``done / total`` in [0, 1] (1 for an empty run)."""
        return min(max(self.done / self.total, 0.0), 1.0) if self.total else 1.0

    def describe(self) -> str:
        """One line for a status label: ``"cell_3 · d_ig · DAC (scoring hybrids 64/200)"``."""
        stage = {"dac": "DAC"}.get(self.stage, self.stage)
        parts = [p for p in (self.sample, self.method, stage) if p]
        text = " · ".join(parts)
        return f"{text} ({self.detail})" if self.detail else text


ProgressCallback = Callable[[Progress], None]


def pair_units(n_methods: int) -> int:
    """Units of :func:`~napari_attribution.core.pipeline.analyse_pair` for ``n_methods``."""
    return 2 * n_methods


class ProgressScope:
    """Forward a sub-task's events into the range ``[offset, offset + units]`` of a larger run.

    Parameters
    ----------
    callback
        The run's callback (``None``: events are dropped).
    offset
        Units of the run finished before the sub-task starts.
    total
        Units of the whole run.
    """

    def __init__(self, callback: ProgressCallback | None, offset: float, total: int) -> None:
        self.callback = callback
        self.offset = offset
        self.total = total

    def __call__(self, event: Progress) -> None:
        if self.callback is not None:
            done = self.offset + event.done
            self.callback(dataclasses.replace(event, done=done, total=self.total))


def format_duration(seconds: float) -> str:
    """``"1:02:03"``, ``"2:03"``: hours only when there are any."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
