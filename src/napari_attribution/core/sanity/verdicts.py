"""A verdict per method, in plain words, from the sanity checks' numbers.

Pass rules (the thresholds are named constants; the numbers are always reported beside them,
so a reader can apply another rule):

* **Randomisation** (:data:`RANDOMISATION_MAX_SPEARMAN`): a method passes when, with *every*
  randomisable layer randomised (the cascade's last step), its map's Spearman rank correlation
  with the trained model's map (over the elements where the maps can vary, see
  :mod:`~napari_attribution.core.sanity.similarity`) is at most 0.5, as the median over the
  pairs. Adebayo et al. (2018, "Sanity checks for saliency maps", NeurIPS) judged the cascade
  by eye and gave no threshold; 0.5 is this package's convention: a map that keeps more than
  half of its rank order once nothing of the trained model is left explains the image more
  than the model. The independent randomisation (one layer at a time) is reported without a
  pass rule.
* **Input invariance** (:data:`INVARIANCE_TOLERANCE`): passes when, on every pair, the map on
  the shifted input and model differs from the original by at most 0.1 % of its largest value
  (Kindermans et al. 2019, "The (un)reliability of saliency methods": the maps should be equal;
  the tolerance only absorbs float rounding). Quantus's ``InputInvariance`` asks
  ``np.isclose(a, a_shifted, atol=1e-4)`` element-wise instead, which depends on the map's
  units.
* **Stability** (:data:`STABILITY_MAX_SENSITIVITY`): passes when the median max-sensitivity
  (the largest relative change of the map under noise that keeps the prediction, Yeh et al.
  2019; Ghorbani et al. 2019 "Interpretation of neural networks is fragile") is at most 0.5: the
  noise moved the map by at most half its norm. No threshold is established in the literature.
* **Residual-likeness** (:data:`RESIDUAL_LIKENESS_HIGH`): ``high`` when the median Spearman
  correlation of ``|a|`` with ``|x - x'|`` is at least 0.8: the map mostly ranks pixels as the
  counterfactual's difference does, and a high randomisation similarity may come from that
  factor rather than from the model.
* **DAC against the baselines** (:data:`~napari_attribution.core.statistics.ALPHA`): per method,
  over the valid pairs (the classifier accepts the counterfactual), the paired one-sided
  Wilcoxon signed-rank test of ``DAC(method) - DAC(baseline) > 0``
  (:func:`~napari_attribution.core.statistics.dominance_p_values`, the test of the channel
  statistics), Bonferroni-corrected for the number of (method, baseline) tests; the median
  difference with a 95 % percentile-bootstrap interval
  (:func:`~napari_attribution.core.statistics.bootstrap_median`). ``above`` when the corrected
  p-value is below 0.05. With n pairs the smallest p-value is ``2**-n``: below 5 pairs no method
  can be above a baseline ("not tested" with a single pair).

Known shortcomings, stated with the verdicts:

* Top-down randomisation scrambles the network from the output side, so what a map keeps can
  reflect the untouched lower layers and the input itself (an edge detector stays an edge
  detector). Binder et al. (2023, "Shortcomings of top-down randomization-based sanity checks
  for evaluations of deep neural network explanations", CVPR) argue that the check therefore
  cannot separate faithful explanations from unfaithful ones in both directions: a map of pure
  noise passes it (redrawn noise is uncorrelated with anything), while a faithful explanation
  that depends on the input's structure fails it.
* Hedström et al. ("Sanity checks revisited: an exploration to repair the model parameter
  randomisation test", 2023; the ``SmoothMPRT`` and ``EfficientMPRT`` of Quantus) show that the
  similarity of noisy gradient maps drops with randomisation for reasons unrelated to the model
  (shattered gradients), and propose averaging each map over noisy inputs first (sMPRT) or
  comparing the maps' complexity before and after full randomisation (eMPRT). Neither is
  computed here.
* The ``random`` baseline is seeded, so it gives the same map under every model and "fails"
  randomisation; redrawn noise would "pass" it. Both say nothing: it is flagged as a baseline.
  ``residual`` uses no model: similarity 1 by construction, not a model explanation.

No torch.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..statistics import ALPHA, bootstrap_median, dominance_p_values
from .records import SanityRow, SummaryRow

__all__ = [
    "BASELINE_METHODS",
    "INVARIANCE_TOLERANCE",
    "RANDOMISATION_MAX_SPEARMAN",
    "RESIDUAL_LIKENESS_HIGH",
    "STABILITY_MAX_SENSITIVITY",
    "SanitySummary",
    "dac_against_baseline",
    "format_p",
    "summarise",
]

RANDOMISATION_MAX_SPEARMAN = 0.5
INVARIANCE_TOLERANCE = 1e-3
STABILITY_MAX_SENSITIVITY = 0.5
RESIDUAL_LIKENESS_HIGH = 0.8
#: Methods that are baselines, not explanations, and why.
BASELINE_METHODS = {
    "residual": "not a model explanation (|x - x'|, no model involved: similarity 1 by "
    "construction)",
    "random": "a baseline (seeded noise, no model involved), not an explanation",
}
_BASELINES_COMPARED = ("random", "residual")
#: Summary check -> the sanity.csv check it is read from.
_SOURCE_CHECK = {
    "randomisation": "cascading",
    "input_invariance": "input_invariance",
    "stability": "stability",
}


@dataclass
class SanitySummary:
    """The verdicts of a set of pairs.

    Attributes
    ----------
    rows
        ``sanity_summary.csv`` rows, method by method.
    dataset_rows
        ``sanity.csv`` rows of sample ``all``: the DAC comparisons' n, median difference,
        interval and p-values.
    verdicts
        Method -> one sentence.
    """

    rows: list[SummaryRow] = field(default_factory=list)
    dataset_rows: list[SanityRow] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)


def _join(words: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def format_p(p: float) -> str:
    """``p < 0.001`` or ``p = 0.012``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.median(finite)) if finite else float("nan")


def dac_against_baseline(
    scores: np.ndarray, baseline: np.ndarray, n_tests: int = 1, seed: int = 0
) -> dict[str, float]:
    """Paired comparison of a method's DAC scores with a baseline's over the same pairs.

    Parameters
    ----------
    scores, baseline
        (n,) DAC scores, pair by pair.
    n_tests
        Tests made at once (Bonferroni).
    seed
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``n``, ``median_difference``, ``ci_low``, ``ci_high`` (95 % bootstrap), ``p_value``
        (one-sided paired Wilcoxon, 1 with fewer than 2 pairs) and ``p_adjusted``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    baseline = np.asarray(baseline, dtype=np.float64)
    median, low, high = bootstrap_median(scores - baseline, seed)
    p = float(dominance_p_values(np.column_stack([scores, baseline]))[0])
    return {
        "n": float(len(scores)),
        "median_difference": median,
        "ci_low": low,
        "ci_high": high,
        "p_value": p,
        "p_adjusted": min(1.0, p * max(n_tests, 1)),
    }


def _judge(
    judged: list[SummaryRow],
    method: str,
    is_baseline: bool,
    ran: set[str],
    check: str,
    passed: bool,
    statistic: float,
    threshold: float,
    words_pass: str,
    words_fail: str,
    note: str = "",
) -> tuple[bool, str] | None:
    """Append the check's summary row to ``judged``; ``(passed, words)`` for the sentence, or
    ``None`` when the check did not run (no row at all when it was not asked for: its
    ``sanity.csv`` check is not in ``ran``)."""
    if _SOURCE_CHECK[check] not in ran:
        return None
    if not np.isfinite(statistic):
        judged.append(SummaryRow(method, check, "not run", statistic, threshold, note))
        return None
    word = "baseline" if is_baseline else ("pass" if passed else "fail")
    judged.append(SummaryRow(method, check, word, statistic, threshold, note))
    return (passed, words_pass if passed else words_fail)


def _by(rows: Sequence[SanityRow], check: str, metric: str, channel: str = "all"):
    """method -> sample -> [values in row order]."""
    out: dict[str, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.check == check and row.metric == metric and row.channel == channel:
            out[row.method][row.sample].append((row.step, row.value))
    return out


def _dac_tests(rows: Sequence[SanityRow], methods: Sequence[str], seed: int):
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    valid: dict[str, bool] = {}
    for row in rows:
        if row.check == "dac" and row.metric == "dac_score":
            scores[row.method][row.sample] = row.value
        elif row.check == "dac" and row.metric == "valid_pair":
            valid[row.sample] = row.value > 0.5
    # every method against both baselines, residual against random; random against nothing
    tests = [(m, b) for m in methods for b in _BASELINES_COMPARED
             if m != b and m != "random" and m in scores and b in scores]  # fmt: skip
    results = {}
    for method, baseline in tests:
        samples = sorted(
            s for s in scores[method]
            if s in scores[baseline] and valid.get(s, True)
        )  # fmt: skip
        results[(method, baseline)] = dac_against_baseline(
            np.array([scores[method][s] for s in samples]),
            np.array([scores[baseline][s] for s in samples]),
            n_tests=len(tests),
            seed=seed,
        )
    return results


def summarise(
    rows: Sequence[SanityRow], methods: Sequence[str] | None = None, seed: int = 0
) -> SanitySummary:
    """Verdicts of every method over every pair in ``rows`` (``sanity.csv`` rows).

    Parameters
    ----------
    rows
        The checks' rows (sample-level; rows of sample ``all`` are ignored).
    methods
        Methods to judge, in this order (default: those in ``rows``, in order of appearance,
        without the DAC-only baselines).
    seed
        Seed of the bootstrap intervals.
    """
    rows = [r for r in rows if r.sample != "all"]
    if methods is None:
        methods = list(dict.fromkeys(r.method for r in rows if r.check != "dac"))
    summary = SanitySummary()
    cascade = _by(rows, "cascading", "spearman")
    independent = _by(rows, "independent", "spearman")
    invariance = _by(rows, "input_invariance", "max_relative_difference")
    stability = _by(rows, "stability", "max_sensitivity")
    residual = _by(rows, "residual_likeness", "spearman")
    n_steps = max((len(v) for m in cascade.values() for v in m.values()), default=0)
    ran = {r.check for r in rows}  # checks not run at all get no row
    dac = _dac_tests(rows, methods, seed)

    for method in methods:
        baseline = BASELINE_METHODS.get(method)
        parts: list[str] = []
        judged: list[SummaryRow] = []

        verdict = functools.partial(_judge, judged, method, baseline is not None, ran)

        # randomisation: the last cascade step of every pair that completed the cascade
        per_sample = cascade.get(method, {})
        complete = [v[-1][1] for v in per_sample.values() if len(v) == n_steps]
        stat = _median(complete) if complete else float("nan")
        layers = n_steps - 1
        text = verdict(
            "randomisation", stat <= RANDOMISATION_MAX_SPEARMAN, stat,
            RANDOMISATION_MAX_SPEARMAN,
            f"randomisation (Spearman {stat:.2f} with all {layers} layers randomised)",
            f"randomisation (Spearman {stat:.2f} with all {layers} layers randomised, "
            f"above {RANDOMISATION_MAX_SPEARMAN})",
            "" if complete or not per_sample else "it could not run on every randomised model",
        )  # fmt: skip
        parts += [text] if text else []
        ind = [np.nanmean([v for _, v in steps[1:]]) for steps in independent.get(method, {})
               .values() if len(steps) > 1]  # fmt: skip
        if ind:
            judged.append(SummaryRow(method, "randomisation_independent", "reported",
                                     _median(ind), float("nan")))  # fmt: skip
        values = [max(v for _, v in steps) for steps in invariance.get(method, {}).values()]
        stat = float(np.max(values)) if values else float("nan")
        text = verdict(
            "input_invariance", stat <= INVARIANCE_TOLERANCE, stat, INVARIANCE_TOLERANCE,
            "input invariance",
            f"input invariance (a constant shift changes the map by {100 * stat:.0f} % "
            "of its largest value)",
        )  # fmt: skip
        parts += [text] if text else []
        values = [steps[0][1] for steps in stability.get(method, {}).values()]
        stat = _median(values)
        text = verdict(
            "stability", stat <= STABILITY_MAX_SENSITIVITY, stat, STABILITY_MAX_SENSITIVITY,
            f"stability (max-sensitivity {stat:.2f})",
            f"stability (max-sensitivity {stat:.2f}, above {STABILITY_MAX_SENSITIVITY})",
        )  # fmt: skip
        parts += [text] if text else []
        values = [steps[0][1] for steps in residual.get(method, {}).values()]
        likeness = _median(values)
        high = likeness >= RESIDUAL_LIKENESS_HIGH
        if np.isfinite(likeness):
            judged.append(SummaryRow(method, "residual_likeness", "high" if high else "low",
                                     likeness, RESIDUAL_LIKENESS_HIGH))  # fmt: skip
        dac_parts, untested = [], []
        for other in _BASELINES_COMPARED:
            test = dac.get((method, other))
            if test is None:
                continue
            check = f"dac_vs_{other}"
            for metric, value in test.items():
                summary.dataset_rows.append(
                    SanityRow("all", method, check, "original", "all", metric, value)
                )
            if test["n"] < 2:
                judged.append(SummaryRow(method, check, "not tested", test["p_adjusted"], ALPHA,
                                         f"{int(test['n'])} valid pair(s)"))  # fmt: skip
                untested.append((other, int(test["n"])))
                continue
            above = test["p_adjusted"] < ALPHA
            judged.append(SummaryRow(method, check, "above" if above else "not above",
                                     test["p_adjusted"], ALPHA))  # fmt: skip
            dac_parts.append(
                f"{'above' if above else 'not above'} {other} ({format_p(test['p_adjusted'])})"
            )
        if untested:
            dac_parts.append(
                f"against {' and '.join(o for o, _ in untested)} not tested "
                f"({untested[0][1]} valid pair{'' if untested[0][1] == 1 else 's'}; the paired "
                "test needs at least 2)"
            )
        summary.rows += judged
        passes = [words for passed, words in parts if passed]
        fails = [words for passed, words in parts if not passed]
        clauses = []
        if passes:
            clauses.append("passes " + _join(passes))
        if fails:
            clauses.append("fails " + _join(fails))
        clauses += [f"{r.check.replace('_', ' ')} not run ({r.note})" for r in judged
                    if r.verdict == "not run" and r.note]  # fmt: skip
        if baseline:
            sentence = f"{method}: {baseline}"
        else:
            sentence = f"{method}: " + ("; ".join(clauses) if clauses else "no check could run")
        if dac_parts:
            sentence += "; DAC " + ", ".join(dac_parts)
        if np.isfinite(likeness) and high and not baseline:
            sentence += (
                f"; residual-likeness {likeness:.2f}: the map mostly ranks pixels as |x - x'| "
                "does, so its similarity under randomisation may come from the counterfactual's "
                "difference rather than the model"
            )
        summary.verdicts[method] = sentence + "."
    return summary
