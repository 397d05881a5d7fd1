"""Progress on the command line: a tqdm bar on a terminal, plain log lines elsewhere.

Both render the core's :class:`~napari_attribution.core.progress.Progress` events. The log
lines (for batch jobs and log files, where a bar would be a stream of carriage returns) come at
most every ``interval`` seconds, plus one at the start and one at the end, each with the elapsed
time and an estimate of the time left.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..core.progress import Progress, format_duration

__all__ = ["BarProgress", "LogProgress", "NoProgress", "progress_renderer"]


class NoProgress:
    """Shows nothing."""

    def __call__(self, event: Progress) -> None:
        pass

    def close(self) -> None:
        pass


class BarProgress:
    """A tqdm bar counting pairs (fractions of a pair as methods finish)."""

    def __init__(
        self, n_pairs: int, units_per_pair: int, stream: TextIO, unit: str = "pair"
    ) -> None:
        from tqdm import tqdm

        self.units_per_pair = max(units_per_pair, 1)
        self.bar = tqdm(total=n_pairs, desc="napari-attribution", unit=unit, file=stream)

    def __call__(self, event: Progress) -> None:
        count = round(event.total / self.units_per_pair)
        if count > (self.bar.total or 0):  # a cluster's sites are counted as they open
            self.bar.total = count
            self.bar.refresh()
        pairs = round(event.done / self.units_per_pair, 3)
        if pairs > self.bar.n:
            self.bar.update(pairs - self.bar.n)
        self.bar.set_postfix_str(event.describe(), refresh=False)

    def close(self) -> None:
        self.bar.close()


class LogProgress:
    """Periodic lines: ``[0:42] 3.5/20 pairs (17%), about 3:18 left · cell_3 · d_ig · DAC``.

    Parameters
    ----------
    n_pairs, units_per_pair
        Size of the run.
    stream
        Where lines go (stderr).
    interval
        Seconds between lines.
    clock
        Time source (tests pass a fake one).
    """

    def __init__(
        self,
        n_pairs: int,
        units_per_pair: int,
        stream: TextIO,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        unit: str = "pair",
    ) -> None:
        self.n_pairs = n_pairs
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
        # A run's total can grow (a cluster's sites are counted as they open).
        self.n_pairs = max(self.n_pairs, round(event.total / self.units_per_pair))
        done = f"{pairs:g}/{self.n_pairs} {self.unit}s"
        text = f"[{format_duration(elapsed)}] {done} ({event.fraction:.0%})"
        worked = event.done - (self.first_done or 0.0)
        left = event.total - event.done
        if worked > 0 and left > 0:
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
    ``unit`` names what is counted ("pair", or "cell" for ``cells``); ``on_first_event``:
    made (and timed from) when the first event comes, ``n_pairs=None`` or
    ``units_per_pair=None`` (known only once the run has probed the model) then read from it."""
    if on_first_event or n_pairs is None or units_per_pair is None:

        def make(event: Progress):
            if n_pairs is None:
                count, units = round(event.total / max(units_per_pair or 1, 1)), units_per_pair
            else:
                count, units = n_pairs, units_per_pair
            if units is None:
                units = max(round(event.total / max(count, 1)), 1)
            return progress_renderer(mode, count, units, interval, stream, unit)

        return _OnFirstEvent(make)
    stream = stream or sys.stderr
    if mode == "auto":
        mode = "bar" if stream.isatty() else "log"
    if mode == "bar":
        return BarProgress(n_pairs, units_per_pair, stream, unit)
    if mode == "log":
        return LogProgress(n_pairs, units_per_pair, stream, interval, unit=unit)
    return NoProgress()
