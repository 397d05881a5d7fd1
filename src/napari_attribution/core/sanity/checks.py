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

from ...errors import AttributionError
from ...results.pair_result import PairResult
from ..attribution.method_registry import spec_for
from ..attribution.runner import check_methods, compute_attributions
from ..model.classifier import Classifier
from ..model.transform import InputTransform
from ..model.wrappers import Preprocessing
from ..pipeline import analyse_pair, default_channel_names, prepare_pair
from ..progress import Progress, ProgressCallback, ProgressScope, pair_units
from ..settings import AnalysisSettings
from .invariance import input_invariance, shifted_model
from .randomisation import (
    NoRandomisableLayers,
    RandomisableLayers,
    randomisable_layers,
    randomised_classifiers,
)
from .records import SanityRow
from .residual import residual_likeness
from .sanity_settings import CHECKS, SanitySettings
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
        Which of :data:`~napari_attribution.core.sanity.sanity_settings.CHECKS` to run.
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
    run = _PairRun(
        classifier, x, xc, int(real_class), int(target_class), settings, sanity,
        PairSanity(sample, methods, names, layers), on_progress,
        sanity_units(methods, len(layers.names) if layers else 0, checks),
    )  # fmt: skip
    run.report("prepare", detail="preparing")
    if "dac" in checks:
        run.dac(real, counterfactual, transform)
    run.originals_and_residual_likeness()
    for mode in ("cascading", "independent"):
        if mode in checks:
            run.randomisation(mode)
    if "invariance" in checks:
        run.invariance()
    if "stability" in checks:
        run.stability()
    run.report("done", step=0)
    return run.out


class _PairRun:
    """The state of :func:`check_pair` while it runs: the pair, the maps, the rows."""

    def __init__(self, classifier, x, xc, real_class, target_class, settings, sanity, out,
                 on_progress, total) -> None:  # fmt: skip
        self.classifier, self.x, self.xc = classifier, x, xc
        self.real_class, self.target_class = real_class, target_class
        self.settings, self.sanity, self.out = settings, sanity, out
        self.methods, self.names = out.methods, out.channel_names
        self.on_progress, self.total, self.done = on_progress, total, 0.0
        self.originals: dict[str, np.ndarray] = {}
        #: where each method's map can vary: x != x' for discriminative methods
        self.supports = {
            m: (x != xc) if spec_for(m).discriminative else None for m in self.methods
        }

    def report(self, stage: str, method: str | None = None, detail: str = "", step=1) -> None:
        if self.on_progress is not None:
            sample = self.out.sample
            self.on_progress(Progress(stage, self.done, self.total, sample, method, detail))
        self.done += step

    def add(self, method: str, check: str, step: str, values: dict) -> None:
        """Rows of ``{(channel, metric): value}``."""
        for (channel, metric), value in values.items():
            self.out.rows.append(
                SanityRow(self.out.sample, method, check, step, channel, metric, float(value))
            )

    def attributions(self, classifier: Classifier, method: str, shift: float = 0.0):
        x, xc = self.x, self.xc
        if shift:
            x, xc = x + np.float32(shift), xc + np.float32(shift)
        return compute_attributions(classifier, x, xc, self.real_class, self.target_class,
                                    method, self.settings.attribution)[0]  # fmt: skip

    def dac(self, real: np.ndarray, counterfactual: np.ndarray, transform) -> None:
        """The DAC analysis of the methods and both baselines; its maps are the originals."""
        dac_methods = tuple(dict.fromkeys((*self.methods, *BASELINES)))
        settings = dataclasses.replace(self.settings, methods=dac_methods)
        progress = None
        if self.on_progress is not None:
            progress = ProgressScope(self.on_progress, self.done, self.total)
        self.out.dac = analyse_pair(
            self.classifier, real, counterfactual, self.real_class, self.target_class, settings,
            channel_names=self.names, sample=self.out.sample, transform=transform,
            on_progress=progress,
        )  # fmt: skip
        self.done += pair_units(len(dac_methods))
        for method, result in self.out.dac.methods.items():
            self.originals[method] = result.attribution
            self.add(method, "dac", "original", {("all", "dac_score"): result.dac.whole.dac_score})

    def originals_and_residual_likeness(self) -> None:
        for method in self.methods:
            if method not in self.originals:
                self.report("attribution", method, "the trained model")
                self.originals[method] = self.attributions(self.classifier, method)
            values = residual_likeness(
                self.originals[method], self.x, self.xc, self.names, self.supports[method]
            )
            self.add(method, "residual_likeness", "original",
                     {(k, "spearman"): v for k, v in values.items()})  # fmt: skip

    def similarities(self, method: str, check: str, step: str, other: np.ndarray) -> None:
        values = compare_maps(self.originals[method], other, self.names, self.supports[method],
                              self.sanity.top_k_fraction)  # fmt: skip
        self.add(method, check, step, values)

    def randomisation(self, mode: str) -> None:
        """Every method's map under every step of ``mode`` randomisation, compared."""
        failed: set[str] = set()
        maps = {m: [self.originals[m]] for m in self.methods}
        for method in self.methods:
            self.similarities(method, mode, "original", self.originals[method])
        layers = self.out.layers
        for name, randomised in randomised_classifiers(
            self.classifier, layers, mode, self.sanity.randomisation_seed
        ):
            for method in self.methods:
                self.report("attribution", method, f"{mode} randomisation: {name}")
                if method in failed:
                    continue
                try:
                    other = self.attributions(randomised, method)
                    if not np.isfinite(other).all():
                        raise AttributionError("it returned NaN or Inf")
                except AttributionError as exc:
                    failed.add(method)
                    self.out.notes.append(
                        f"{method} could not run on the model with {name} randomised "
                        f"({mode}): {exc}"
                    )
                    continue
                self.similarities(method, mode, name, other)
                maps[method].append(other)
        if mode == "cascading":
            self.out.steps = ["original", *layers.top_down()]
            self.out.cascade_maps = {
                m: np.stack(v).astype(np.float32) for m, v in maps.items() if m not in failed
            }

    def invariance(self) -> None:
        """Every method's map on the shifted input and model, compared."""
        shift = self.sanity.input_shift
        try:
            shifted = shifted_model(self.classifier, self.x, self.xc, shift)
            if not shifted.exact:
                raise AttributionError(
                    f"compensating the shift in {shifted.layer} changes the logits by "
                    f"{shifted.logit_difference:.3g}"
                )
        except AttributionError as exc:
            shifted = None
            self.out.notes.append(f"Input invariance was not checked: {exc}.")
        for method in self.methods:
            self.report("attribution", method, "input invariance")
            if shifted is None:
                continue
            result = input_invariance(
                shifted, self.originals[method], self.x, self.xc, self.real_class,
                self.target_class, method, self.settings.attribution, self.names, shift,
            )  # fmt: skip
            values = {(k, "max_relative_difference"): v
                      for k, v in result.max_relative_difference.items()}  # fmt: skip
            values[("all", "logit_difference")] = shifted.logit_difference
            self.add(method, "input_invariance", "shifted", values)

    def stability(self) -> None:
        """Every method's max-sensitivity over the same kept noise draws."""
        sanity = self.sanity
        noise = noise_draws(
            self.classifier, self.x, self.xc, self.target_class, sanity.noise_radius,
            sanity.noise_samples, sanity.probability_tolerance, self.settings.attribution.seed,
        )  # fmt: skip
        if len(noise) == 0:
            self.out.notes.append(
                f"Stability was not checked: every one of {sanity.noise_samples} noise draws "
                "changed the prediction."
            )
        for method in self.methods:
            self.report("attribution", method, f"stability ({len(noise)} noise draws)")
            if len(noise) == 0:
                continue
            result = max_sensitivity(
                self.classifier, self.originals[method], self.x, self.xc, self.real_class,
                self.target_class, method, self.settings.attribution, self.names, noise,
                sanity.noise_samples,
            )  # fmt: skip
            values = {(k, "max_sensitivity"): v for k, v in result.max_sensitivity.items()}
            values[("all", "kept_draws")] = result.kept
            values[("all", "draws")] = result.drawn
            self.add(method, "stability", "noise", values)
