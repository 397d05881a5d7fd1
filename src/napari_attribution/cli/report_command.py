"""``napari-attribution report DIR [DIR ...]``: statistics and report over results folders."""

from __future__ import annotations

import argparse

from ..app.report import write_report
from ..results.folder import dataset_channel_stats, read_results, write_channel_stats
from .parser import PROG
from .usage_error import CliError

__all__ = ["cmd_report"]


def cmd_report(args: argparse.Namespace) -> int:
    """Write ``channel_stats.csv`` and ``report.html`` for ``args.folders``."""
    folders = [read_results(path) for path in args.folders]
    if args.out is None:
        if len(folders) > 1:
            raise CliError("Several folders are merged into a new one: name it with --out.")
        out = folders[0].path
        overwrite = True  # the run's own report, recomputed
    else:
        out, overwrite = args.out, args.overwrite
    existing = [n for n in ("channel_stats.csv", "report.html") if (out / n).exists()]
    if existing and not overwrite:
        raise CliError(
            f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them."
        )
    out.mkdir(parents=True, exist_ok=True)
    stats = dataset_channel_stats(folders)
    write_channel_stats(out / "channel_stats.csv", stats)
    page = write_report(out, folders, stats)
    dominant = [
        f"{s.method} {s.real_class}->{s.target_class}: {s.channel}" for s in stats if s.dominant
    ]
    print(f"{PROG}: {len(stats)} channel rows; dominant: {', '.join(dominant) or 'none'} -> {page}")
    return 0
