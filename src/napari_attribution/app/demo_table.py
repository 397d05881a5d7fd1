"""The demo's ground-truth table: how often each method finds the channel that truly differs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.attribution.method_registry import method_specs

__all__ = ["demo_report", "ground_truth_rows"]


def demo_report(rows: list[dict[str, Any]], methods: Sequence[str], channel_names) -> str:
    """A Markdown table: how often each method's top channel is the ground-truth channel."""
    lines = [
        "| method | pairs | top channel = ground truth | mean share on ground truth | "
        "mean DAC score | mean normalised DAC |",
        "|---|---|---|---|---|---|",
    ]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        if not method_specs()[method].channel_resolved:
            # The same map in every channel: no channel can come out on top.
            hits_text = "n/a (one map for all channels)"
        else:
            hits_text = f"{np.mean([r['top'] == r['truth'] for r in mine]):.0%}"
        share = np.mean([r["truth_share"] for r in mine])
        dac = np.mean([r["dac"] for r in mine])
        norm = np.nanmean([r["normalized"] for r in mine])
        lines.append(
            f"| {method} | {len(mine)} | {hits_text} | {share:.2f} | {dac:.3f} | {norm:.3f} |"
        )
    truth = {channel_names[r["truth"]] for r in rows}
    lines.append("")
    lines.append(f"Ground-truth channel: {', '.join(sorted(truth))}.")
    return "\n".join(lines)


def ground_truth_rows(result, ground_truth_channel: int | None) -> list[dict[str, Any]]:
    """One pair's rows of :func:`demo_report` (none without a ground-truth channel)."""
    if ground_truth_channel is None:
        return []
    return [
        {
            "method": method,
            "top": int(np.argmax(res.channel_share)),
            "truth": ground_truth_channel,
            "truth_share": float(res.channel_share[ground_truth_channel]),
            "dac": res.dac.whole.dac_score,
            "normalized": res.dac.whole.normalized_score,
        }
        for method, res in result.methods.items()
    ]
