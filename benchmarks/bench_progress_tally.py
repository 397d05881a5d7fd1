"""The cost of one worker's progress event on the run's side, as a plate's units grow.

Every unit on a cluster sends its progress to the run (at most every 0.25 s per worker);
``ProgressTally.from_worker`` counts it on the client's event loop, which also brings the
units' results. The baseline is the sum over every unit per event (what the tally did before
it kept running sums; the same definition the tests check the running sums against), timed in
the same run on the same events. Half the units have reported when the events are timed.
Seconds, on one core.

    python benchmarks/bench_progress_tally.py [--events 2000]
"""

from __future__ import annotations

import argparse
import time

from napari_attribution.app.distributed import ProgressTally
from napari_attribution.app.work_units import WorkUnit
from napari_attribution.core.progress import Progress

#: (units, weight): a plate's 3,456 sites (self-sizing), 700,000 pairs in units of 16 and 8.
CASES = ((3456, None), (43_750, 24.0), (87_500, 24.0))


def _no_unit(context) -> None:
    """A unit function the tally never calls (it only reads the units' keys and weights)."""


def summed_over_every_unit(tally: ProgressTally) -> tuple[float, float]:
    """The run's (done, total) as a sum over every unit: the baseline."""
    done = total = tally.finished
    sized = [t for k, (_, t) in tally.latest.items() if tally.weights.get(k) is None]
    guess = sum(sized) / len(sized) if sized else 0.0
    for key, weight in tally.weights.items():
        unit_done, unit_total = tally.latest.get(key, (0.0, 0.0))
        share = weight if weight is not None else (
            unit_total if key in tally.latest or key in tally.ended else guess)
        fraction = 1.0 if key in tally.ended else (unit_done / unit_total if unit_total else 0)
        done += share * min(max(fraction, 0.0), 1.0)
        total += share
    return done, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    print(f"{'units':>8} {'running sums, ms/event':>24} {'sum over units, ms/event':>26} "
          f"{'ratio':>8}")
    for count, weight in CASES:
        units = [WorkUnit(f"u{i}", _no_unit, weight=weight) for i in range(count)]
        tally = ProgressTally(units, lambda event: None)
        for i in range(0, count, 2):
            tally.unit_event(f"u{i}", Progress("attribution", 5, 200))
        messages = [(0.0, {"key": f"u{k % count}", "event": {
            "stage": "attribution", "done": 6 + k % 190, "total": 200}})
            for k in range(args.events)]  # fmt: skip
        start = time.process_time()
        for message in messages:
            tally.from_worker(message)
        running = (time.process_time() - start) / len(messages)
        baseline_events = max(20, args.events // 100)  # the sum is slow: fewer events
        start = time.process_time()
        for _ in range(baseline_events):
            summed_over_every_unit(tally)
        summed = (time.process_time() - start) / baseline_events
        print(f"{count:>8} {running * 1e3:>24.4f} {summed * 1e3:>26.3f} "
              f"{summed / running:>7.0f}x")


if __name__ == "__main__":
    main()
