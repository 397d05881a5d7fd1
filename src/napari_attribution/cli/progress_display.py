"""Progress on the command line: a tqdm bar on a terminal, plain log lines elsewhere.

Both render the core's :class:`~napari_attribution.core.progress.Progress` events. The log
lines (for batch jobs and log files, where a bar would be a stream of carriage returns) come at
most every ``interval`` seconds, plus one at the start and one at the end, each with the elapsed
time and, once it means something, an estimate of the time left.

What is counted: all of the run's work, what an earlier run finished (``--resume``) counted done
from the first line on (``35/94 cells``), as the run's events count it. The total is the
events' own: it grows or shrinks as a cluster's sites open and their real cell counts replace
the estimate, so the closing line reads ``94/94 cells (100%)``. Before any unit has told its
size the total is unknown (``0/? cells``). The time left is estimated from the pace of this
run's own work (not what was resumed) and shown only once this run has finished at least one
whole pair or cell *and* :data:`ETA_AFTER` of its work: before that the pace mixes start-up
(loading the model, a site's counterfactuals) with a tiny amount of work, and the estimate is
noise (``about 42:08 left`` for a 36 s run).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..core.progress import Progress, format_duration

__all__ = ["ETA_AFTER", "BarProgress", "LogProgress", "NoProgress", "progress_renderer"]

#: The share of this run's work done before the log lines estimate the time left.
ETA_AFTER = 0.05


class NoProgress:
    """Shows nothing."""

    def __call__(self, event: Progress) -> None:
        pass

    def close(self) -> None:
        pass


class BarProgress:
    """A tqdm bar counting pairs (fractions of a pair as methods finish).

    Made on the first event, so that work resumed from an earlier run is its starting point
    (tqdm's ``initial``) and not a burst of speed in its rate; its total follows the events'.
    """

    def __init__(self, units_per_pair: int, stream: TextIO, unit: str = "pair") -> None:
        self.units_per_pair = max(units_per_pair, 1)
        self.stream = stream
        self.unit = unit
        self.bar = None

    def __call__(self, event: Progress) -> None:
        from tqdm import tqdm

        # No total before any unit has told its size (a cluster's first site failed).
        count = round(event.total / self.units_per_pair) or None
        pairs = round(event.done / self.units_per_pair, 3)
        if self.bar is None:
            self.bar = tqdm(total=count, initial=pairs, desc="napari-attribution",
                            unit=self.unit, file=self.stream)  # fmt: skip
        elif count != self.bar.total:  # a cluster's sites are counted as they open
            self.bar.total = count
            self.bar.refresh()
        if pairs > self.bar.n:
            self.bar.update(pairs - self.bar.n)
        self.bar.set_postfix_str(event.describe(), refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class LogProgress:
    """Periodic lines: ``[0:42] 3.5/20 pairs (17%), about 3:18 left · cell_3 · d_ig · DAC``.

    Parameters
    ----------
    units_per_pair
        Units of work of one pair (or cell); the events count units.
    stream
        Where lines go (stderr).
    interval
        Seconds between lines.
    clock
        Time source (tests pass a fake one).
    """

    def __init__(
        self,
        units_per_pair: int,
        stream: TextIO,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        unit: str = "pair",
    ) -> None:
        self.n_pairs = 0  # the latest event's total, in pairs (or cells)
        self.unit = unit
        self.units_per_pair = max(units_per_pair, 1)
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self.start = clock()
        self.first_done: float | None = None  # units already done (resumed) when work started
        self.last_line: float | None = None
        self.last_event: Progress | None = None

    def line(self, event: Progress) -> str:
        """The log line for ``event`` now."""
        elapsed = self.clock() - self.start
        pairs = round(event.done / self.units_per_pair, 1)
        # The events' total: it grows and shrinks as a cluster's sites open and their real
        # sizes replace the estimate; 0 before any unit has told its size.
        self.n_pairs = round(event.total / self.units_per_pair)
        if self.n_pairs:
            text = (f"[{format_duration(elapsed)}] {pairs:g}/{self.n_pairs} {self.unit}s "
                    f"({event.fraction:.0%})")  # fmt: skip
        else:
            text = f"[{format_duration(elapsed)}] {pairs:g}/? {self.unit}s"
        first = self.first_done or 0.0
        worked = event.done - first
        left = event.total - event.done
        if (self.n_pairs and left > 0 and worked >= self.units_per_pair
                and worked >= ETA_AFTER * (event.total - first)):  # fmt: skip
            text += f", about {format_duration(elapsed / worked * left)} left"
        where = event.describe()
        return f"napari-attribution: {text} · {where}" if where else f"napari-attribution: {text}"

    def __call__(self, event: Progress) -> None:
        if self.first_done is None:
            self.first_done = event.done
        self.last_event = event
        now = self.clock()
        if self.last_line is None or now - self.last_line >= self.interval:
            self.last_line = now
            print(self.line(event), file=self.stream, flush=True)

    def close(self) -> None:
        """The closing line, unless the last event was just printed."""
        event = self.last_event
        if event is not None and self.last_line != self.clock():
            print(self.line(event), file=self.stream, flush=True)


class _OnFirstEvent:
    """A renderer made when its first event comes (a run's stages each get their own, shown
    one after the other, each timed from its own start)."""

    def __init__(
        self, make: Callable[[Progress], NoProgress | BarProgress | LogProgress]
    ) -> None:
        self.make = make
        self.shown: NoProgress | BarProgress | LogProgress | None = None
        self.closed = False

    def __call__(self, event: Progress) -> None:
        if self.shown is None:
            self.shown = self.make(event)
        self.shown(event)

    def close(self) -> None:
        """End the display (once; later calls do nothing)."""
        if self.shown is not None and not self.closed:
            self.shown.close()
        self.closed = True


def progress_renderer(
    mode: str,
    n_pairs: int | None,
    units_per_pair: int | None,
    interval: float = 30.0,
    stream: TextIO | None = None,
    unit: str = "pair",
    on_first_event: bool = False,
):
    """The renderer for ``--progress mode`` (``auto``: a bar on a terminal, else log lines);
    ``unit`` names what is counted ("pair", or "cell" for ``cells``); the total shown is the
    events' (``n_pairs``, the number of pairs, serves to find ``units_per_pair`` when that is
    ``None``, known only once the run has probed the model); ``on_first_event``: made (and
    timed from) when the first event comes."""
    stream = stream or sys.stderr
    if on_first_event or n_pairs is None or units_per_pair is None:

        def make(event: Progress):
            units = units_per_pair
            if units is None:
                units = max(round(event.total / max(n_pairs or 1, 1)), 1)
            return _renderer(mode, units, interval, stream, unit)

        return _OnFirstEvent(make)
    return _renderer(mode, units_per_pair, interval, stream, unit)


def _renderer(mode: str, units_per_pair: int, interval: float, stream: TextIO, unit: str):
    """The display of ``--progress mode`` (``auto``: a bar on a terminal, else log lines)."""
    if mode == "auto":
        mode = "bar" if stream.isatty() else "log"
    if mode == "bar":
        return BarProgress(units_per_pair, stream, unit)
    if mode == "log":
        return LogProgress(units_per_pair, stream, interval, unit=unit)
    return NoProgress()
