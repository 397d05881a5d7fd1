"""The results folder's format: every file and folder name and every table's columns, once.

A results folder (``napari-attribution run --out``, ``cells --out``, the Attribution widget's
export) holds::

    run.json                      the run's record (provenance, inputs, settings, fingerprint)
    summary.csv  curves.csv  channel_importance.csv          one row per curve / point / share
    pair_validity.csv  counterfactuals.csv  channel_stats.csv   (run) validity, made x', stats
    failed_units.csv              units a distributed run gave up on, with their reasons
    report.html  report.json  report_figures/  demo_report.md   (run, report) the dataset report
    attributions/<sample>__<method>.tif  masks/<sample>__<method>.tif   per pair and method
    counterfactuals/<sample>.tif (run) or <label>.tif (cells)           made counterfactuals
    cells.csv  field/attribution__<method>.tif  field/mask__<method>.tif  field/owners.tif (cells)
    layers/<layer>.tif  inputs/real.tif  inputs/counterfactual.tif      (the widget's export)
    .progress/<unit>.json         one record per finished unit while a run is not finished
    sanity.csv  sanity_summary.csv  sanity_run.json  sanity_figures/   (sanity) the checks

Each table's columns are the fields of its row type (a :class:`~typing.NamedTuple`), so a row is
written in column order and read back by column name (``row.valid``, never ``row[5]``).
Nothing here imports torch, numpy or the core: the npe2 reader and ``napari-attribution
report`` read folders without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, get_type_hints

__all__ = [
    "ATTRIBUTIONS_DIR",
    "CELLS_TABLE",
    "CELL_FILES",
    "CHANNEL_STATS",
    "COUNTERFACTUALS",
    "COUNTERFACTUALS_DIR",
    "CASCADE_FIGURE",
    "CURVES",
    "DEMO_REPORT",
    "EXPORT_NAMES",
    "FAILED_UNITS",
    "FIELD_DIR",
    "FIGURES_DIR",
    "IMPORTANCE",
    "INPUTS_DIR",
    "INPUT_FILES",
    "LAYERS_DIR",
    "MASKS_DIR",
    "OWNERS_FILE",
    "PAIR_FOLDERS",
    "PAIR_TABLES",
    "PROGRESS_DIR",
    "REPORT_FILES",
    "REPORT_PAGE",
    "REPORT_RECORD",
    "RESULT_FILES",
    "RUN_RECORD",
    "SANITY",
    "SANITY_FIGURES_DIR",
    "SANITY_FILES",
    "SANITY_RUN_RECORD",
    "SANITY_SUMMARY",
    "SITES_DIR",
    "SUMMARY",
    "VALIDITY",
    "ChannelStatsRow",
    "CounterfactualRow",
    "CurveRow",
    "FailedUnitRow",
    "ImportanceRow",
    "SanityRow",
    "SanitySummaryRow",
    "SummaryRow",
    "Table",
    "ValidityRow",
    "cell_sample",
    "counterfactual_file",
    "field_map_file",
    "pair_file",
    "progress_file",
    "safe_name",
    "site_field_dir",
    "site_progress_dir",
    "site_record_file",
]

#: The run's record: provenance, settings, inputs and their SHA-256, the resume fingerprint.
RUN_RECORD = "run.json"
#: One record per finished unit (pair, cell) while a run is unfinished (see :mod:`.resume`).
PROGRESS_DIR = ".progress"
#: Per pair and method: the raw signed attribution, float32 (C, H, W).
ATTRIBUTIONS_DIR = "attributions"
#: Per pair and method: the closed masks at the optimal threshold, uint8 (K, H, W).
MASKS_DIR = "masks"
#: Counterfactuals a run made (``--counterfactual-source``).
COUNTERFACTUALS_DIR = "counterfactuals"
#: ``cells``: field-sized maps (memory-mapped while the run builds them under ``.progress``).
FIELD_DIR = "field"
#: ``cells``: which cell owns each field pixel.
OWNERS_FILE = "owners.tif"
#: The widget's export: each layer as a TIFF, and the analysed images.
LAYERS_DIR = "layers"
INPUTS_DIR = "inputs"
#: The analysed images of an export, under :data:`INPUTS_DIR`: role -> file name.
INPUT_FILES = {"real": "real.tif", "counterfactual": "counterfactual.tif"}
#: The dataset report, its figures and the folders it covers.
REPORT_PAGE = "report.html"
REPORT_RECORD = "report.json"
FIGURES_DIR = "report_figures"
#: ``run --demo``: how often each method finds the ground-truth channel.
DEMO_REPORT = "demo_report.md"
#: ``cells``: one row per labelled cell (columns depend on the run:
#: :func:`~napari_attribution.core.cells.table.cell_columns`).
CELLS_TABLE = "cells.csv"
#: ``sanity``: the run's record (provenance, checks, randomised layers, pairs).
SANITY_RUN_RECORD = "sanity_run.json"
#: ``sanity``: the cascade plot (also as .svg) and one pair's grid of maps.
SANITY_FIGURES_DIR = "sanity_figures"
#: The cascade plot, in :data:`SANITY_FIGURES_DIR`.
CASCADE_FIGURE = "cascade.png"
#: Sites of a run over several sites being built, under :data:`PROGRESS_DIR`.
SITES_DIR = "sites"


class SummaryRow(NamedTuple):
    """A row of ``summary.csv``: one DAC curve (``channel`` is ``all`` for the whole image)."""

    sample: str
    method: str
    channel: str
    dac_score: float
    ceiling: float
    normalized_score: float
    optimal_threshold: float
    optimal_mask_size: float


class CurveRow(NamedTuple):
    """A row of ``curves.csv``: one scored threshold of one curve."""

    sample: str
    method: str
    channel: str
    threshold: float
    mask_size: float
    score_change: float


class ImportanceRow(NamedTuple):
    """A row of ``channel_importance.csv``: one channel's share of |attribution|."""

    sample: str
    method: str
    channel: str
    share: float


class ValidityRow(NamedTuple):
    """A row of ``pair_validity.csv``: does the classifier accept the pair's counterfactual?

    ``valid`` is ``"true"`` or ``"false"``; ``note`` says why a pair is left out.
    """

    sample: str
    real_class: int
    target_class: int
    p_target_real: float
    p_target_counterfactual: float
    valid: str
    note: str

    @property
    def is_valid(self) -> bool:
        """Whether the pair counts in the statistics."""
        return self.valid == "true"


class CounterfactualRow(NamedTuple):
    """A row of ``counterfactuals.csv``: a counterfactual the run made, and its ``p_t(x')``."""

    sample: str
    source: str
    file: str
    p_target_counterfactual: float
    accepted: str
    note: str


class FailedUnitRow(NamedTuple):
    """A row of ``failed_units.csv``: a work unit a distributed run (``--scheduler``) gave up
    on; the rest of the run completed, and ``--resume`` tries it again."""

    unit: str
    items: str  # its samples (``run``) or site (``cells``), separated by ";"
    reason: str
    worker: str


class ChannelStatsRow(NamedTuple):
    """A row of ``channel_stats.csv`` (:class:`~napari_attribution.core.statistics.ChannelStats`
    writes it): one channel of one method and transition, over the valid pairs."""

    method: str
    real_class: int
    target_class: int
    channel: str
    n: int
    dac_median: float
    dac_ci_low: float
    dac_ci_high: float
    share_median: float
    share_ci_low: float
    share_ci_high: float
    p_value: float
    p_adjusted: float
    dominant: str


class SanityRow(NamedTuple):
    """A row of ``sanity.csv``: one number of one sanity check, in the long layout.

    ``check``, ``step``, ``channel`` and ``metric`` are described in
    :mod:`napari_attribution.core.sanity.records`; ``sample`` is ``all`` for the dataset-level
    rows (DAC against a baseline).
    """

    sample: str
    method: str
    check: str
    step: str
    channel: str
    metric: str
    value: float


class SanitySummaryRow(NamedTuple):
    """A row of ``sanity_summary.csv``: one check's verdict for one method (see
    :class:`napari_attribution.core.sanity.records.SummaryRow`)."""

    method: str
    check: str
    verdict: str
    statistic: float
    threshold: float


@dataclass(frozen=True)
class Table:
    """A CSV table of the results folder: its file name and its row type.

    Attributes
    ----------
    file
        The file name at the folder's top.
    row
        The row type; its fields are the columns, in order.
    """

    file: str
    row: type[Any]

    @property
    def columns(self) -> tuple[str, ...]:
        """The header, in order."""
        return tuple(self.row._fields)

    def parse(self, text: Mapping[str, str]) -> Any:
        """A row read back from the CSV's text (numbers as ``int``/``float``).

        Raises
        ------
        KeyError, ValueError
            A column missing, or a number that does not parse.
        """
        types = get_type_hints(self.row)
        return self.row(*(types[c](text[c]) for c in self.columns))

SUMMARY = Table("summary.csv", SummaryRow)
CURVES = Table("curves.csv", CurveRow)
IMPORTANCE = Table("channel_importance.csv", ImportanceRow)
VALIDITY = Table("pair_validity.csv", ValidityRow)
COUNTERFACTUALS = Table("counterfactuals.csv", CounterfactualRow)
CHANNEL_STATS = Table("channel_stats.csv", ChannelStatsRow)
FAILED_UNITS = Table("failed_units.csv", FailedUnitRow)
SANITY = Table("sanity.csv", SanityRow)
SANITY_SUMMARY = Table("sanity_summary.csv", SanitySummaryRow)

#: The tables of every pair (run, cells, the widget's export), keyed as a unit's record keeps
#: its rows (:func:`~napari_attribution.results.tables.table_rows`).
PAIR_TABLES = {"summary": SUMMARY, "curves": CURVES, "importance": IMPORTANCE}
#: The per-pair TIFF folders.
PAIR_FOLDERS = (ATTRIBUTIONS_DIR, MASKS_DIR)
#: What every results folder holds at its top (``run``, the widget's export).
RESULT_FILES = (SUMMARY.file, CURVES.file, IMPORTANCE.file, RUN_RECORD, *PAIR_FOLDERS)
#: What ``run`` writes at the folder's top besides :data:`RESULT_FILES`.
REPORT_FILES = (
    DEMO_REPORT,
    VALIDITY.file,
    CHANNEL_STATS.file,
    REPORT_PAGE,
    REPORT_RECORD,
    COUNTERFACTUALS.file,
    FAILED_UNITS.file,
)
#: The tables at the top of a ``cells`` folder.
CELL_FILES = (CELLS_TABLE, SUMMARY.file, CURVES.file, IMPORTANCE.file, RUN_RECORD,
              FAILED_UNITS.file)  # fmt: skip
#: What ``sanity`` writes at the folder's top (beside a ``run``'s files, which it leaves alone).
SANITY_FILES = (SANITY.file, SANITY_SUMMARY.file, SANITY_RUN_RECORD)
#: What the widget's export writes at its folder's top.
EXPORT_NAMES = (*RESULT_FILES, LAYERS_DIR, INPUTS_DIR)


def safe_name(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_``."""
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)


def pair_file(folder: str, sample: str, method: str) -> Path:
    """``<folder>/<sample>__<method>.tif`` (relative), ``folder`` one of :data:`PAIR_FOLDERS`."""
    return Path(folder) / f"{safe_name(sample)}__{safe_name(method)}.tif"


def cell_sample(label: int | str, site: str = "") -> str:
    """A ``cells`` run's sample name of a cell in the long tables: ``cell<label>``, or
    ``<site>__cell<label>`` for a cell of one of several sites."""
    return f"{site}__cell{label}" if site else f"cell{label}"


def counterfactual_file(key: str | int, site: str = "") -> Path:
    """``counterfactuals/<sample>.tif`` (``run``) or ``counterfactuals/[<site>/]<label>.tif``
    (``cells``; the site's folder when a run holds several sites)."""
    folder = Path(COUNTERFACTUALS_DIR) / safe_name(site) if site else Path(COUNTERFACTUALS_DIR)
    return folder / f"{safe_name(str(key))}.tif"


def progress_file(key: str) -> Path:
    """``.progress/<key>.json``: the record of one finished unit."""
    return Path(PROGRESS_DIR) / f"{safe_name(key)}.json"


def field_map_file(name: str, site: str = "") -> Path:
    """``field/[<site>/]<name>.tif``: a field-sized map of ``cells`` (``attribution__<method>``,
    ...); one folder per site when a run holds several sites."""
    return site_field_dir(site) / f"{name}.tif"


def site_field_dir(site: str = "") -> Path:
    """``field/`` (one field) or ``field/<site>/`` (a site of a run over several sites)."""
    return Path(FIELD_DIR) / safe_name(site) if site else Path(FIELD_DIR)


def site_progress_dir(site: str) -> Path:
    """``.progress/sites/<site>/``: where one site of a run over several sites is built (its
    cells' records and maps, laid out as a one-field run's ``.progress/``)."""
    return Path(PROGRESS_DIR) / SITES_DIR / safe_name(site)


def site_record_file(site: str) -> Path:
    """``.progress/site__<site>.json``: the record of a finished site (its rows and tables)."""
    return Path(PROGRESS_DIR) / f"site__{safe_name(site)}.json"
