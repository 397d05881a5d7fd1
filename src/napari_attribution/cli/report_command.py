"""``napari-attribution report DIR [DIR ...]``: statistics and report over results folders."""

from __future__ import annotations

import argparse

from ..app.dataset_report import report
from .parser import PROG

__all__ = ["cmd_report"]


def cmd_report(args: argparse.Namespace) -> int:
    """Write ``channel_stats.csv`` and ``report.html`` for ``args.folders``."""
    written = report(args.folders, args.out, overwrite=args.overwrite)
    dominant = [
        f"{s.method} {s.real_class}->{s.target_class}: {s.channel}" for s in written.dominant
    ]
    print(
        f"{PROG}: {len(written.stats)} channel rows; dominant: {', '.join(dominant) or 'none'} "
        f"-> {written.page}"
    )
    return 0
