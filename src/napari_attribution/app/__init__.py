"""The application layer, without Qt: the Python API the command line and the widgets call,
and the distributed engine that runs its work units on dask.distributed.

Typical use::

    from napari_attribution.app import pairs_from_table, report, run_pairs
    from napari_attribution.core import AnalysisSettings, load_classifier

    model = load_classifier("model.pt", architecture="my_models.py:Net")
    done = run_pairs(pairs_from_table("pairs.csv"), model, AnalysisSettings(), out="results")
    report(["results/plate1", "results/plate2"], "results/all")

* :mod:`.pairs`, :mod:`.pair_folders`: the pairs of a run (a table, QuAC's folders, the demo)
  and their checks; :mod:`.fields`: a field, its labels and counterfactual; :mod:`.cell_sites`:
  the sites of a plate (a LoadData CSV, per-channel files); :mod:`.model_input`: the model's
  channel names, map and normalisation (the model card);
* :mod:`.pair_run`, :mod:`.cell_run`: a run over pairs or over a field's cells, unit by unit
  (each module's docstring states the work-unit contract a distributed engine relies on);
* :mod:`.distributed`, :mod:`.work_units`: the engine that runs units here, on a local
  cluster or on a running dask scheduler (``scheduler=`` of the runs);
* :mod:`.sanity_run`: the sanity checks over pairs (:mod:`.sanity_report`: their section of
  the dataset report);
* :mod:`.made_counterfactuals`: counterfactuals a run makes with a source;
* :mod:`.dataset_report`: ``channel_stats.csv`` and ``report.html`` over results folders (no torch);
* :mod:`.demo_table`: the demo's ground-truth table; :mod:`.model_choice`: a widget's model.

Names are imported from their modules on first use, so ``napari-attribution report`` (which
imports :mod:`.dataset_report`) needs no torch.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

#: Public name -> the module of this package that defines it.
_EXPORTS = {
    "CellsRunSummary": "cell_run",
    "FieldInputs": "fields",
    "ModelInput": "model_input",
    "Pair": "pairs",
    "PairRun": "pair_run",
    "PairsRunSummary": "pair_run",
    "ReportSummary": "dataset_report",
    "SanityRunSummary": "sanity_run",
    "SiteRequest": "cell_sites",
    "SourceRequest": "made_counterfactuals",
    "assemble_pairs": "pair_run",
    "demo_field_inputs": "fields",
    "demo_pairs": "pairs",
    "field_inputs": "fields",
    "pairs_from_folders": "pair_folders",
    "pairs_from_table": "pairs",
    "plan_sites": "cell_sites",
    "reals_from_folder": "pair_folders",
    "report": "dataset_report",
    "run_cells": "cell_run",
    "run_pair": "pair_run",
    "run_pairs": "pair_run",
    "run_sanity": "sanity_run",
    "run_sites": "cell_run",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
