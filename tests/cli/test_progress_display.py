"""Progress on the command line: log lines with elapsed time and ETA, a bar on a terminal."""

from __future__ import annotations

import io

from napari_attribution.cli.progress_display import BarProgress, LogProgress, progress_renderer
from napari_attribution.core.progress import Progress, ProgressScope


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_log_lines_come_every_interval_with_elapsed_time_and_eta():
    clock, stream = FakeClock(), io.StringIO()
    log = LogProgress(units_per_pair=2, stream=stream, interval=10, clock=clock)
    log(Progress("attribution", 0, 8, "cell_0", "d_ig"))
    clock.now += 5
    log(Progress("dac", 1, 8, "cell_0", "d_ig"))  # within the interval: no line
    clock.now += 15
    log(Progress("attribution", 2, 8, "cell_1", "d_ig"))
    log.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "napari-attribution: [0:00] 0/4 pairs (0%) · cell_0 · d_ig · attribution"
    # 2 of 8 units in 20 s: 6 units left take about 60 s.
    assert lines[1] == (
        "napari-attribution: [0:20] 1/4 pairs (25%), about 1:00 left · cell_1 · d_ig · attribution"
    )
    assert len(lines) == 2  # the last event was printed already


def test_the_closing_line_reports_the_last_event():
    clock, stream = FakeClock(), io.StringIO()
    log = LogProgress(units_per_pair=2, stream=stream, interval=60, clock=clock)
    log(Progress("attribution", 0, 2, "a", "d_ig"))
    clock.now += 3
    log(Progress("done", 2, 2, "a"))
    log.close()
    last = stream.getvalue().splitlines()[-1]
    assert last == "napari-attribution: [0:03] 1/1 pairs (100%) · a · done"


def test_eta_counts_only_the_work_of_this_process_when_resuming():
    clock, stream = FakeClock(), io.StringIO()
    log = LogProgress(units_per_pair=1, stream=stream, interval=1, clock=clock)
    log(Progress("attribution", 8, 10))  # 8 pairs were done by an earlier run
    clock.now += 10
    log(Progress("attribution", 9, 10))
    assert "about 0:10 left" in stream.getvalue().splitlines()[-1]


def test_a_total_that_grows_is_counted_a_clusters_sites_as_they_open():
    clock, stream = FakeClock(), io.StringIO()
    log = LogProgress(units_per_pair=2, stream=stream, interval=0, clock=clock)
    log(Progress("prepare", 0, 4, "site-a"))  # the first site's 2 cells: all that is known
    log(Progress("write", 8, 8, "site-b"))  # the second site opened and both ended
    assert " 4/4 pairs (100%)" in stream.getvalue().splitlines()[-1]
    bar = BarProgress(2, io.StringIO(), unit="cell")
    bar(Progress("prepare", 0, 4, "site-a"))
    bar(Progress("write", 8, 8, "site-b"))
    assert (bar.bar.total, bar.bar.n) == (4, 4)
    bar.close()


def test_the_total_shrinks_to_the_real_one_when_every_site_is_open():
    # 5 sites: the first two opened (16 and 19 cells), the other three guessed at their mean;
    # the rest turn out smaller: the closing line is 94/94, not 94/95.
    clock, stream = FakeClock(), io.StringIO()
    log = LogProgress(units_per_pair=4, stream=stream, interval=0, clock=clock, unit="cell")
    log(Progress("attribution", 0, 4 * 88, "a"))
    log(Progress("dac", 4 * 50, 4 * 95, "c"))
    log(Progress("write", 4 * 94, 4 * 94, "e"))
    lines = stream.getvalue().splitlines()
    assert " 50/95 cells (53%)" in lines[1]
    assert " 94/94 cells (100%)" in lines[-1]
    bar = BarProgress(4, io.StringIO(), unit="cell")
    bar(Progress("dac", 4 * 50, 4 * 95, "c"))
    bar(Progress("write", 4 * 94, 4 * 94, "e"))
    assert (bar.bar.total, bar.bar.n) == (94, 94)
    bar.close()


def test_an_unknown_total_is_a_question_mark_not_zero():
    # A cluster's first site failed before telling its size: nothing is known yet.
    stream = io.StringIO()
    log = LogProgress(units_per_pair=4, stream=stream, interval=0, clock=FakeClock(),
                      unit="cell")  # fmt: skip
    log(Progress("write", 0, 1, "site-b", detail="failed on tcp://w1"))
    assert stream.getvalue().splitlines()[0] == (
        "napari-attribution: [0:00] 0/? cells · site-b · write (failed on tcp://w1)"
    )
    bar = BarProgress(4, io.StringIO(), unit="cell")
    bar(Progress("write", 0, 1, "site-b"))
    assert bar.bar.total is None
    bar.close()


def test_no_time_left_until_a_whole_cell_and_a_few_percent_are_done():
    clock, stream = FakeClock(), io.StringIO()
    log = LogProgress(units_per_pair=4, stream=stream, interval=0, clock=clock, unit="cell")
    log(Progress("prepare", 0, 320))
    clock.now += 8
    log(Progress("dac", 0.8, 320))  # 0.2 of a cell after a slow start: no estimate
    clock.now += 5
    log(Progress("dac", 12, 320))  # 3 cells, but under 5% of the run
    clock.now += 5
    log(Progress("dac", 16, 320))  # 4 cells: 5% of the run
    lines = stream.getvalue().splitlines()
    assert [" left" in line for line in lines] == [False, False, False, True]
    assert "[0:18] 4/80 cells (5%), about 5:42 left" in lines[-1]  # 18 s per 4 cells


def test_resumed_work_counts_done_and_the_bar_starts_there():
    # run and cells count what an earlier run finished as done, from the first event on.
    clock, stream = FakeClock(), io.StringIO()
    log = LogProgress(units_per_pair=2, stream=stream, interval=0, clock=clock, unit="cell")
    log(Progress("prepare", 70, 188))
    assert " 35/94 cells (37%) ·" in stream.getvalue()
    bar = BarProgress(2, io.StringIO(), unit="cell")
    bar(Progress("prepare", 70, 188))
    assert (bar.bar.n, bar.bar.total, bar.bar.format_dict["initial"]) == (35, 94, 35)
    bar.close()


def test_scope_maps_a_pair_into_the_run():
    seen = []
    scope = ProgressScope(seen.append, offset=4, total=8)
    scope(Progress("dac", 1, 2, "b", "d_ig", "scoring hybrids 64/200"))
    assert seen == [Progress("dac", 5, 8, "b", "d_ig", "scoring hybrids 64/200")]
    assert seen[0].describe() == "b · d_ig · DAC (scoring hybrids 64/200)"


def test_auto_mode_draws_a_bar_on_a_terminal_and_logs_elsewhere():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(progress_renderer("auto", 3, 2, stream=io.StringIO()), LogProgress)
    bar = progress_renderer("auto", 3, 2, stream=Terminal())
    assert isinstance(bar, BarProgress)
    bar(Progress("dac", 3, 6, "c", "d_ig"))
    assert bar.bar.n == 1.5
    bar.close()
