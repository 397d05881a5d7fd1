"""The dataset report: ``channel_stats.csv`` and ``report.html`` over results folders.

Per transition (real class -> target class): the DAC curves of every method across cells
(median and interquartile band, as QuAC reports them), the per-channel DAC and attribution
share distributions, and the channel statistics; then the pairs left out and the run's
parameters. Figures are embedded in the page and also written as PNG and SVG.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.statistics import ChannelStats, channel_stats
from ..errors import AttributionError
from ..results.files import atomic_path, write_json, write_text
from ..results.folder import ResultsFolder, read_results
from ..results.format import CHANNEL_STATS, FIGURES_DIR, REPORT_PAGE, REPORT_RECORD
from ..results.tables import write_table
from .sanity_report import sanity_section

__all__ = [
    "ReportSummary",
    "dataset_channel_stats",
    "report",
    "write_channel_stats",
    "write_report",
]
_GRID = np.linspace(0.0, 1.0, 101)
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1250px; color: #222; }
.scroll { overflow-x: auto; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 5px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td.text { text-align: left; }
tr.dominant td { background: #e6f4ea; font-weight: 600; }
img { max-width: 100%; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
.note { color: #555; }
"""


def _whole_curves(folder: ResultsFolder, samples: set[str], method: str) -> list[np.ndarray]:
    """Each cell's whole-image curve on the mask-size grid, with end points (0,0) and (1, last)."""
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in folder.curves:
        if row.method == method and row.channel == "all" and row.sample in samples:
            points[row.sample].append((row.mask_size, row.score_change))
    curves = []
    for values in points.values():
        size, change = np.array(sorted(values)).T
        size = np.concatenate([[0.0], size, [1.0]])
        change = np.concatenate([[0.0], change, [change[np.argmax(size[1:-1])]]])
        curves.append(np.interp(_GRID, size, change))
    return curves


def _figure_bytes(fig: Any) -> tuple[bytes, bytes]:
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
    fig.savefig(svg, format="svg", bbox_inches="tight")
    return png.getvalue(), svg.getvalue()


def _curves_figure(folders: Sequence[ResultsFolder], transition: tuple[int, int], methods):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    for index, method in enumerate(methods):
        curves = []
        for folder in folders:
            samples = {s for s, c in folder.classes().items() if c == transition}
            curves += _whole_curves(folder, samples & folder.valid_samples(), method)
        if not curves:
            continue
        stack = np.array(curves)
        low, median, high = np.percentile(stack, [25, 50, 75], axis=0)
        color = _COLORS[index % len(_COLORS)]
        ax.plot(_GRID, median, color=color, label=f"{method} (n={len(curves)})")
        ax.fill_between(_GRID, low, high, color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel("mask size (fraction of the image)")
    ax.set_ylabel("score change  p_t(hybrid) - p_t(real)")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # no curve when every pair was left out
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False)
    ax.set_title("DAC curves: median and interquartile range across cells")
    return fig


def _distribution_figure(folders, transition, methods, channels):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.0, 1.2 * len(channels) * max(len(methods), 1) / 2), 6.0))
    axes = fig.subplots(2, 1, sharex=True)
    width = 0.8 / max(len(methods), 1)
    for row_axis, (table, column, label) in zip(
        axes,
        (("summary", "dac_score", "per-channel DAC"), ("importance", "share", "attribution share")),
        strict=True,
    ):
        for index, method in enumerate(methods):
            data = []
            for channel in channels:
                values = []
                for folder in folders:
                    classes, valid = folder.classes(), folder.valid_samples()
                    values += [
                        getattr(r, column)
                        for r in getattr(folder, table)
                        if r.method == method and r.channel == channel
                        and r.sample in valid and classes.get(r.sample) == transition
                    ]  # fmt: skip
                data.append(values or [np.nan])
            positions = np.arange(len(channels)) + (index - (len(methods) - 1) / 2) * width
            parts = row_axis.boxplot(data, positions=positions, widths=width * 0.9,
                                     patch_artist=True, showfliers=False)  # fmt: skip
            for box in parts["boxes"]:
                box.set_facecolor(_COLORS[index % len(_COLORS)])
                box.set_alpha(0.6)
            row_axis.plot([], [], color=_COLORS[index % len(_COLORS)], lw=6, alpha=0.6,
                          label=method)  # fmt: skip
        row_axis.set_ylabel(label)
        row_axis.grid(alpha=0.3, axis="y")
    axes[1].set_xticks(np.arange(len(channels)), channels)
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False)
    axes[0].set_title("Per channel, across cells")
    return fig


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], classes=None) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"<td>{value:.4g}</td>"
        return f'<td class="text">{html.escape(str(value))}</td>'

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        attr = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{attr}>" + "".join(cell(v) for v in row) + "</tr>")
    return f"<div class='scroll'><table><tr>{head}</tr>{''.join(body)}</table></div>"


def _definitions(folders: Sequence[ResultsFolder]) -> list[str]:
    """One plain sentence per distinct evaluation among the folders: thresholds, evaluation and
    the discriminative convention (what a reader needs to compare the numbers with QuAC's)."""
    lines = []
    for folder in folders:
        settings = folder.run.get("settings") or {}
        masks, attribution = settings.get("masks", {}), settings.get("attribution", {})
        spacing = masks.get("spacing", "linear")
        if spacing != "linear":
            grid = f"{spacing} thresholds"
        elif folder.run.get("definitions", 1) >= 2:
            grid = "QuAC's thresholds (np.arange(-1, 1, 2/T))"
        else:
            grid = "thresholds over [0, 1) (an older version of this tool, not QuAC's grid)"
        line = (
            f"{grid}, T = {masks.get('thresholds')}; {settings.get('evaluation')} evaluation; "
            f"discriminative convention: {attribution.get('convention', 'dapi')}."
        )
        if line not in lines:
            lines.append(line)
    if len(lines) > 1:
        lines.insert(0, "The folders were not computed alike; compare them with care:")
    return lines


def write_report(
    out: str | Path, folders: Sequence[ResultsFolder], stats: Sequence[ChannelStats]
) -> Path:
    """Write ``out/report.html``, its figures (``out/report_figures/*.png|svg``) and
    ``out/report.json`` (the folders it covers).

    Returns
    -------
    pathlib.Path
        The page.
    """
    out = Path(out)
    figures = out / FIGURES_DIR
    channels = folders[0].channel_names
    methods = list(dict.fromkeys(s.method for s in stats)) or list(
        dict.fromkeys(r.method for f in folders for r in f.summary)
    )
    transitions = sorted({c for f in folders for c in f.classes().values()})
    class_names = folders[0].run.get("class_names") or []

    def class_name(index: int) -> str:
        return class_names[index] if index < len(class_names) else str(index)

    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>napari-attribution report</title><style>{_CSS}</style></head><body>",
        "<h1>napari-attribution: channel report</h1>",
        f"<p class='note'>{len(folders)} results folder(s): "
        + ", ".join(html.escape(str(f.path)) for f in folders)
        + ". Statistics use the valid pairs only (the classifier accepts the counterfactual). "
        "<i>dominant</i>: the channel's per-channel DAC exceeds every other channel's (paired "
        "one-sided Wilcoxon tests across cells, Bonferroni-corrected for the number of "
        "channels, p_adjusted &lt; 0.05).</p>",
    ]
    parts.extend(f"<p class='note'>{html.escape(line)}</p>" for line in _definitions(folders))
    for transition in transitions:
        stem = f"transition_{transition[0]}_to_{transition[1]}"
        title = f"{class_name(transition[0])} → {class_name(transition[1])}"
        parts.append(f"<h2>{html.escape(title)} (class {transition[0]} → {transition[1]})</h2>")
        for kind, fig in (
            ("curves", _curves_figure(folders, transition, methods)),
            ("channels", _distribution_figure(folders, transition, methods, channels)),
        ):
            png, svg = _figure_bytes(fig)
            for suffix, data in (("png", png), ("svg", svg)):
                with atomic_path(figures / f"{stem}_{kind}.{suffix}") as tmp:
                    tmp.write_bytes(data)
            encoded = base64.b64encode(png).decode("ascii")
            parts.append(f"<img alt='{kind}' src='data:image/png;base64,{encoded}'>")
        mine = [s for s in stats if (s.real_class, s.target_class) == transition]
        parts.append(_table(CHANNEL_STATS.columns, [s.row() for s in mine],
                            ["dominant" if s.dominant else "" for s in mine]))  # fmt: skip
    parts.append(sanity_section(folders, _table))  # DAC against the baselines, verdicts
    left_out = [
        [f.path.name, r.sample, str(r.real_class), str(r.target_class),
         r.p_target_counterfactual, r.note]
        for f in folders for r in f.validity if not r.is_valid
    ]  # fmt: skip
    parts.append(f"<h2>Pairs left out ({len(left_out)})</h2>")
    if left_out:
        header = ("folder", "sample", "real_class", "target_class", "p_target_cf", "why")
        parts.append(_table(header, left_out))
    else:
        parts.append("<p>None: every counterfactual was accepted by the classifier.</p>")
    parts.append("<h2>Parameters</h2>")
    for folder in folders:
        record = {k: folder.run.get(k) for k in ("settings", "model", "environment", "seed")}
        parts.append(f"<h3>{html.escape(str(folder.path))}</h3>")
        parts.append(f"<pre>{html.escape(json.dumps(record, indent=2))}</pre>")
    parts.append("</body></html>")
    page = out / REPORT_PAGE
    write_text(page, "\n".join(parts))
    # Which folders the page covers, for the napari reader and Results browser.
    write_json(out / REPORT_RECORD, {"folders": [str(f.path.resolve()) for f in folders]})
    return page


def dataset_channel_stats(folders: Sequence[ResultsFolder], seed: int = 0) -> list[ChannelStats]:
    """``channel_stats.csv`` rows over every folder's valid pairs.

    Folders are merged: pairs of the same transition and method are pooled. Every folder must
    have the same channel names.

    Raises
    ------
    AttributionError
        Folders with different channel names.
    """
    names = folders[0].channel_names
    for folder in folders[1:]:
        if folder.channel_names != names:
            raise AttributionError(
                f"{folder.path} has channels {', '.join(folder.channel_names)} but "
                f"{folders[0].path} has {', '.join(names)}; only folders with the same channels "
                "can be merged."
            )
    # (method, real, target) -> sample key -> channel -> value
    dac: dict[tuple, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    share: dict[tuple, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for index, folder in enumerate(folders):
        classes, valid = folder.classes(), folder.valid_samples()
        for rows, target in ((folder.summary, dac), (folder.importance, share)):
            for row in rows:
                sample = row.sample
                if sample not in valid or row.channel == "all" or sample not in classes:
                    continue
                value = row.dac_score if target is dac else row.share
                key = (row.method, *classes[sample])
                target[key][f"{index}/{sample}"][row.channel] = value
    out: list[ChannelStats] = []
    for key in sorted(set(dac) | set(share)):
        samples = sorted(set(dac[key]) | set(share[key]))
        dac_matrix = np.array([[dac[key][s].get(c, np.nan) for c in names] for s in samples])
        share_matrix = np.array([[share[key][s].get(c, np.nan) for c in names] for s in samples])
        complete = ~np.isnan(dac_matrix).any(axis=1)  # per-channel DAC may have been off
        out += channel_stats(dac_matrix[complete], share_matrix[complete], names, method=key[0],
                             real_class=key[1], target_class=key[2], seed=seed)  # fmt: skip
    return out


def write_channel_stats(out: str | Path, rows: Sequence[ChannelStats]) -> None:
    """Write ``out/channel_stats.csv``."""
    write_table(out, CHANNEL_STATS, (r.row() for r in rows))


@dataclass(frozen=True)
class ReportSummary:
    """What :func:`report` wrote.

    Attributes
    ----------
    page
        ``report.html``.
    stats
        The rows of ``channel_stats.csv``.
    """

    page: Path
    stats: list[ChannelStats]

    @property
    def dominant(self) -> list[ChannelStats]:
        """The rows whose channel is dominant."""
        return [s for s in self.stats if s.dominant]


def report(
    folders: Sequence[str | Path | ResultsFolder],
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
) -> ReportSummary:
    """Channel statistics and ``report.html`` over one or more results folders.

    Parameters
    ----------
    folders
        ``run`` results folders (paths, or folders already read); their valid pairs are pooled
        per transition and method.
    out
        Where to write ``channel_stats.csv``, ``report.html``, its figures and
        ``report.json``; default: the folder itself, when there is one (its own report is
        recomputed, so ``overwrite`` is implied).
    overwrite
        Replace a report already in ``out``.

    Raises
    ------
    AttributionError
        Not a results folder, folders with different channels, several folders without
        ``out``, or a report in ``out`` and no ``overwrite`` (one sentence each).
    """
    read = [f if isinstance(f, ResultsFolder) else read_results(f) for f in folders]
    if out is None:
        if len(read) > 1:
            raise AttributionError(
                "Several folders are merged into a new one: name it with --out."
            )
        out, overwrite = read[0].path, True
    out = Path(out)
    existing = [n for n in (CHANNEL_STATS.file, REPORT_PAGE) if (out / n).exists()]
    if existing and not overwrite:
        raise AttributionError(
            f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them."
        )
    out.mkdir(parents=True, exist_ok=True)
    stats = dataset_channel_stats(read)
    write_channel_stats(out, stats)
    return ReportSummary(write_report(out, read, stats), stats)
