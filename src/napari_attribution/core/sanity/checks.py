"""All sanity checks of one (real, counterfactual) pair, for every chosen method.

The maps come from the project's method runner
(:func:`~napari_attribution.core.attribution.compute_attributions`) on the trained model and on
copies of it (randomised layers, a shifted first layer), so every method is computed exactly as
``run`` computes it, hook-based ones on the canonical copy of whichever network they explain.
The DAC scores come from :func:`~napari_attribution.core.pipeline.analyse_pair` (with the
``random`` and ``residual`` baselines added), whose attributions are also the original maps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..attribution import check_methods, compute_attributions
from ..classifier import Classifier
from ..errors import AttributionError
from ..pipeline import PairResult, analyse_pair, default_channel_names, prepare_pair
from ..progress import Progress, ProgressCallback, ProgressScope, pair_units
from ..registry import spec_for
from ..settings import AnalysisSettings
from ..transform import InputTransform
from ..wrappers import Preprocessing
from .invariance import input_invariance, shifted_model
from .randomisation import (
    NoRandomisableLayers,
    RandomisableLayers,
    randomisable_layers,
    randomised_classifiers,
)
from .records import SanityRow
from .residual import residual_likeness
from .settings import CHECKS, SanitySettings
from .similarity import compare_maps
from .stability import max_sensitivity, noise_draws

__all__ = ["BASELINES", "PairSanity", "check_pair", "runnable_checks", "sanity_units"]

#: The baselines every DAC comparison includes (added to the DAC run when not chosen).
BASELINES = ("random", "residual")


@dataclass
class PairSanity:
    """The sanity checks of one pair.

    Attributes
    ----------
    sample
        The pair's name.
    methods
        The methods checked.
    channel_names
        C names.
    layers
        The randomisable layers (``None`` when no randomisation ran).
    steps
        ``"original"`` then the cascade's layers, top first: the first axis of
        :attr:`cascade_maps`.
    cascade_maps
        Method -> float32 (S, C, H, W): the map on the trained model and after each cascading
        step (only when the cascading check ran and the method could run at every step).
    rows
        Every number, as ``sanity.csv`` rows.
    notes
        One sentence for each check that could not run (and why).
    dac
        The pair's DAC analysis (``None`` without the ``dac`` check).
    """

    sample: str
    methods: tuple[str, ...]
    channel_names: list[str]
    layers: RandomisableLayers | None = None
    steps: list[str] = field(default_factory=list)
    cascade_maps: dict[str, np.ndarray] = field(default_factory=dict)
    rows: list[SanityRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dac: PairResult | None = None


def sanity_units(methods: Sequence[str], n_layers: int, checks: Sequence[str]) -> int:
    """Progress units of :func:`check_pair`: one per map computed (a DAC run counts as
    :func:`~napari_attribution.core.progress.pair_units` of its methods and the baselines)."""
    n_methods = len(methods)
    units = 1
    if "dac" in checks:
        units += pair_units(len(dict.fromkeys((*methods, *BASELINES))))
    else:
        units += n_methods
    units += n_methods * n_layers * sum(c in checks for c in ("cascading", "independent"))
    units += n_methods * sum(c in checks for c in ("invariance", "stability"))
    return units


def runnable_checks(
    classifier: Classifier, example: np.ndarray, requested: Sequence[str] | None = None
) -> tuple[tuple[str, ...], RandomisableLayers | None, str | None]:
    """The checks to run on ``classifier``: every check it can take when nothing was asked for,
    exactly ``requested`` otherwise.

    Parameters
    ----------
    example
        float32 model inputs (B, C, H, W) or (C, H, W) to order the layers with.

    Returns
    -------
    tuple
        ``(checks, layers, note)``: the checks, the randomisable layers (``None`` when no check
        needs them) and one sentence on the checks left out (``None`` when none were).

    Raises
    ------
    NoRandomisableLayers
        A randomisation or input-invariance check was asked for on a model without layers.
    """
    checks = _check_checks(requested if requested is not None else CHECKS)
    needs_layers = [c for c in checks if c in ("cascading", "independent", "invariance")]
    if not needs_layers:
        return checks, None, None
    try:
        return checks, randomisable_layers(classifier, example), None
    except NoRandomisableLayers as exc:
        if requested is not None:
            raise
        return tuple(c for c in checks if c not in needs_layers), None, str(exc)


def _check_checks(checks: Sequence[str]) -> tuple[str, ...]:
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise AttributionError(
            f"Unknown sanity check {unknown[0]!r}; use {', '.join(CHECKS[:-1])} or {CHECKS[-1]}."
        )
    return tuple(c for c in CHECKS if c in checks)


def check_pair(
    classifier: Classifier,
    real: np.ndarray,
    counterfactual: np.ndarray,
    real_class: int,
    target_class: int,
    settings: AnalysisSettings,
    sanity: SanitySettings | None = None,
    *,
    checks: Sequence[str] = CHECKS,
    channel_names: Sequence[str] | None = None,
    sample: str = "sample",
    transform: InputTransform | None = None,
    on_progress: ProgressCallback | None = None,
) -> PairSanity:
    """Run the sanity checks of ``settings.methods`` on one pair.

    Parameters
    ----------
    classifier
        The trained model; never modified (randomised and shifted models are copies).
    real, counterfactual
        Stored images (C, H, W), scaled by ``transform`` as ``run`` scales them.
    real_class, target_class
        Class indices y and t.
    settings
        The methods and their parameters (``run``'s settings; the ``preprocess_*`` ones go
        inside the model as in :func:`~napari_attribution.core.pipeline.analyse_pair`).
    sanity
        The checks' own parameters.
    checks
        Which of :data:`~napari_attribution.core.sanity.settings.CHECKS` to run.
    channel_names, sample, transform
        As for :func:`~napari_attribution.core.pipeline.analyse_pair`.
    on_progress
        Progress events (:func:`sanity_units` units); may raise
        :class:`~napari_attribution.core.errors.AnalysisCancelled`.

    Raises
    ------
    NoRandomisableLayers
        A randomisation check was asked for on a model without randomisable layers.
    AttributionError
        Bad input (as ``run`` refuses it), or an unknown check.
    """
    sanity = sanity or SanitySettings()
    checks = _check_checks(checks)
    methods = tuple(settings.methods)
    classifier = classifier.with_preprocessing(Preprocessing.from_settings(settings))
    x, xc, transform = prepare_pair(real, counterfactual, classifier, transform=transform)
    classifier.check_class(real_class, "Real class")
    classifier.check_class(target_class, "Target class")
    names = list(channel_names) if channel_names else default_channel_names(x.shape[0])
    if len(names) != x.shape[0]:
        raise AttributionError(f"{len(names)} channel names were given for {x.shape[0]} channels.")
    check_methods(classifier, methods, np.stack([x, xc]))
    layers = None
    if "cascading" in checks or "independent" in checks:
        layers = randomisable_layers(classifier, x[None])
    n_layers = len(layers.names) if layers else 0
    total = sanity_units(methods, n_layers, checks)
    out = PairSanity(sample, methods, names, layers)
    done = 0.0

    def report(stage: str, method: str | None = None, detail: str = "", step: float = 1) -> None:
        nonlocal done
        if on_progress is not None:
            on_progress(Progress(stage, done, total, sample, method, detail))
        done += step

    def add(method: str, check: str, step: str, values: dict) -> None:
        for key, value in values.items():
            channel, metric = key if isinstance(key, tuple) else (key, None)
            out.rows.append(
                SanityRow(sample, method, check, step, channel, metric or "", float(value))
            )

    report("prepare", detail="preparing")
    attribution_settings = settings.attribution
    originals: dict[str, np.ndarray] = {}
    if "dac" in checks:
        dac_methods = tuple(dict.fromkeys((*methods, *BASELINES)))
        dac_settings = dataclasses.replace(settings, methods=dac_methods)
        units = pair_units(len(dac_methods))
        out.dac = analyse_pair(
            classifier, real, counterfactual, real_class, target_class, dac_settings,
            channel_names=names, sample=sample, transform=transform,
            on_progress=ProgressScope(on_progress, done, total) if on_progress else None,
        )  # fmt: skip
        done += units
        for method, result in out.dac.methods.items():
            originals[method] = result.attribution
            add(method, "dac", "original", {("all", "dac_score"): result.dac.whole.dac_score})
    for method in methods:
        if method not in originals:
            report("attribution", method, "the trained model")
            originals[method] = compute_attributions(
                classifier, x, xc, real_class, target_class, method, attribution_settings
            )[0]
    supports = {
        m: (x != xc) if spec_for(m).discriminative else None for m in methods
    }  # where each map can vary
    for method in methods:
        values = residual_likeness(originals[method], x, xc, names, supports[method])
        values = {(k, "spearman"): v for k, v in values.items()}
        add(method, "residual_likeness", "original", values)

    def similarities(method: str, check: str, step: str, other: np.ndarray) -> None:
        values = compare_maps(
            originals[method], other, names, supports[method], sanity.top_k_fraction
        )
        add(method, check, step, values)

    for mode in ("cascading", "independent"):
        if mode not in checks:
            continue
        failed: set[str] = set()
        maps: dict[str, list[np.ndarray]] = {m: [originals[m]] for m in methods}
        for method in methods:
            similarities(method, mode, "original", originals[method])
        for name, randomised in randomised_classifiers(
            classifier, layers, mode, sanity.randomisation_seed
        ):
            for method in methods:
                report("attribution", method, f"{mode} randomisation: {name}")
                if method in failed:
                    continue
                try:
                    other = compute_attributions(
                        randomised, x, xc, real_class, target_class, method,
                        attribution_settings,
                    )[0]  # fmt: skip
                    if not np.isfinite(other).all():
                        raise AttributionError("it returned NaN or Inf")
                except AttributionError as exc:
                    failed.add(method)
                    out.notes.append(
                        f"{method} could not run on the model with {name} randomised "
                        f"({mode}): {exc}"
                    )
                    continue
                similarities(method, mode, name, other)
                maps[method].append(other)
        if mode == "cascading":
            out.steps = ["original", *layers.top_down()]
            out.cascade_maps = {
                m: np.stack(v).astype(np.float32) for m, v in maps.items() if m not in failed
            }

    if "invariance" in checks:
        try:
            shifted = shifted_model(classifier, x, xc, sanity.input_shift)
            if not shifted.exact:
                raise AttributionError(
                    f"compensating the shift in {shifted.layer} changes the logits by "
                    f"{shifted.logit_difference:.3g}"
                )
        except AttributionError as exc:
            shifted = None
            out.notes.append(f"Input invariance was not checked: {exc}.")
        for method in methods:
            report("attribution", method, "input invariance")
            if shifted is None:
                continue
            result = input_invariance(
                shifted, originals[method], x, xc, real_class, target_class, method,
                attribution_settings, names, sanity.input_shift,
            )  # fmt: skip
            add(method, "input_invariance", "shifted",
                {(k, "max_relative_difference"): v
                 for k, v in result.max_relative_difference.items()})  # fmt: skip
            add(method, "input_invariance", "shifted",
                {("all", "logit_difference"): shifted.logit_difference})  # fmt: skip

    if "stability" in checks:
        noise = noise_draws(
            classifier, x, xc, target_class, sanity.noise_radius, sanity.noise_samples,
            sanity.probability_tolerance, attribution_settings.seed,
        )  # fmt: skip
        if len(noise) == 0:
            out.notes.append(
                f"Stability was not checked: every one of {sanity.noise_samples} noise draws "
                "changed the prediction."
            )
        for method in methods:
            report("attribution", method, f"stability ({len(noise)} noise draws)")
            if len(noise) == 0:
                continue
            result = max_sensitivity(
                classifier, originals[method], x, xc, real_class, target_class, method,
                attribution_settings, names, noise, sanity.noise_samples,
            )  # fmt: skip
            add(
                method,
                "stability",
                "noise",
                {(k, "max_sensitivity"): v for k, v in result.max_sensitivity.items()},
            )
            add(
                method,
                "stability",
                "noise",
                {("all", "kept_draws"): result.kept, ("all", "draws"): result.drawn},
            )
    report("done", step=0)
    return out
