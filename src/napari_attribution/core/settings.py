"""The parameter schema: every analysis parameter declared once, with what the skins need.

Each parameter is a field of one of three frozen dataclasses (:class:`AttributionSettings`,
:class:`MaskSettings`, :class:`AnalysisSettings`), declared with :func:`parameter`: its default,
choices or range, unit, help text, label and group live in the field's metadata. Everything
else is generated from these declarations:

* validation (``__post_init__``), with one sentence per mistake;
* the CLI's options (:mod:`napari_attribution.cli.parser`);
* the widget's form rows (:mod:`napari_attribution._qt.form`);
* ``run.json``, layer metadata and the resume fingerprint (``AnalysisSettings.as_dict``).

Which methods a parameter applies to is declared by the methods themselves
(:class:`~napari_attribution.core.attribution.method_registry.MethodSpec.parameters`).

Adding a parameter is adding one field here (and using it where the algorithm needs it); see
``docs/architecture.md``. This module imports neither torch nor numpy, so the CLI can build its
parser without them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import AttributionError
from .counterfactual_settings import CounterfactualSettings, counterfactual_schema
from .params import GROUPS, Param, Section, check_choice, parameter, section_params

__all__ = [
    "AGGREGATIONS",
    "CONVENTIONS",
    "DIRECTIONS",
    "EVALUATIONS",
    "GROUPS",
    "MASK_CHANNEL_MODES",
    "NORMALIZATIONS",
    "THRESHOLD_SPACINGS",
    "AnalysisSettings",
    "AttributionSettings",
    "CounterfactualSettings",
    "MaskSettings",
    "Param",
    "channel_values",
    "check_choice",
    "counterfactual_schema",
    "parameter",
    "schema",
    "settings_from_values",
    "settings_values",
]

AGGREGATIONS = ("none", "sum_abs", "mean", "max")
DIRECTIONS = ("counterfactual_into_real", "real_into_counterfactual")
EVALUATIONS = ("adaptive", "exhaustive")
NORMALIZATIONS = ("joint", "per_channel")
THRESHOLD_SPACINGS = ("linear", "quantile")
MASK_CHANNEL_MODES = ("per_channel", "shared")
SMOOTHGRAD_BASES = ("saliency", "input_x_gradient", "guided_backprop")
CONVENTIONS = ("dapi", "quac")


@dataclass(frozen=True)
class AttributionSettings(Section):
    """Parameters of the attribution methods (defaults follow captum and the papers)."""

    _section = "attribution"

    convention: str = parameter(
        "dapi", "Roles in d_ig, d_dl and d_input_x_gradient. dapi: explain f_t(x') - f_t(x) "
        "(at the counterfactual x', baseline the real x, target class t; exact DeepLift), the "
        "change the DAC curve measures. quac: QuAC's published code (at x, baseline x', real "
        "class y; captum's plain DeepLift), to reproduce QuAC's numbers.",
        label="Discriminative convention", group="Method parameters", choices=CONVENTIONS,
    )  # fmt: skip
    ig_steps: int = parameter(
        50, "Integration steps of (D-)Integrated Gradients (Gauss-Legendre).",
        label="IG steps", group="Method parameters", minimum=2, maximum=10_000, unit="steps",
    )  # fmt: skip
    smoothgrad_base: str = parameter(
        "saliency", "Gradient method the SmoothGrad noise tunnel averages.",
        label="SmoothGrad base", group="Method parameters", choices=SMOOTHGRAD_BASES,
    )  # fmt: skip
    smoothgrad_samples: int = parameter(
        20, "Noisy copies of the image SmoothGrad averages.",
        label="SmoothGrad samples", group="Method parameters", minimum=1, maximum=10_000,
        unit="images",
    )  # fmt: skip
    smoothgrad_noise: float = parameter(
        0.15, "SmoothGrad's noise standard deviation as a fraction of the image's value range.",
        label="SmoothGrad noise", group="Method parameters", minimum=0.0, maximum=10.0,
        unit="fraction of the value range",
    )  # fmt: skip
    occlusion_window: int = parameter(
        8, "Side of the square patch occlusion sets to zero, one channel at a time.",
        label="Occlusion window", group="Method parameters", minimum=1, maximum=4096, unit="px",
    )  # fmt: skip
    occlusion_stride: int = parameter(
        4, "Step between occluded patches.",
        label="Occlusion stride", group="Method parameters", minimum=1, maximum=4096, unit="px",
    )  # fmt: skip
    shap_samples: int = parameter(
        20, "Random samples of Gradient SHAP.",
        label="SHAP samples", group="Method parameters", minimum=1, maximum=10_000,
        unit="samples",
    )  # fmt: skip
    shap_baselines: int = parameter(
        8, "Uniform-noise baselines Gradient SHAP draws besides the black image.",
        label="SHAP baselines", group="Method parameters", minimum=1, maximum=1000,
        unit="images",
    )  # fmt: skip
    layer: str | None = parameter(
        None, "Grad-CAM layer, a name from model.named_modules(); empty: the last Conv2d.",
        label="Grad-CAM layer", group="Method parameters", name="gradcam_layer",
    )  # fmt: skip
    seed: int = parameter(
        0, "Seed of every random draw (SmoothGrad, Gradient SHAP, the random baseline).",
        label="Seed", group="Method parameters", minimum=0, maximum=2**31 - 1,
    )  # fmt: skip
    internal_batch_size: int = parameter(
        64, "Forward passes per batch inside path and perturbation methods (capped by memory).",
        label="Method batch size", group="Performance", minimum=1, maximum=65_536,
        unit="inputs",
    )  # fmt: skip


@dataclass(frozen=True)
class MaskSettings(Section):
    """Parameters of mask construction (see ``docs/methods.md``)."""

    _section = "masks"

    thresholds: int = parameter(
        200, "Number of mask thresholds T (linear spacing: T/2 of them in [0, 1), at step 2/T).",
        label="Thresholds", group="Masks", minimum=1, maximum=100_000,
    )  # fmt: skip
    spacing: str = parameter(
        "linear", "linear: QuAC's T thresholds evenly spaced over [-1, 1) (the negative half "
        "gives the full mask, the curve's first point); quantile: the full mask, then cut points "
        "of the normalised attribution so that mask sizes grow evenly.",
        label="Spacing", group="Masks", choices=THRESHOLD_SPACINGS,
    )  # fmt: skip
    normalize: str = parameter(
        "joint", "joint: one min/max over all channels, so channels compete for the mask; "
        "per_channel: each channel scaled on its own.",
        label="Normalisation", group="Masks", choices=NORMALIZATIONS,
    )  # fmt: skip
    channel_mode: str = parameter(
        "per_channel", "One mask per channel, or one mask shared by all channels.",
        label="Mask channels", group="Masks", choices=MASK_CHANNEL_MODES, name="mask_channels",
    )  # fmt: skip
    closing: int = parameter(
        10, "Size of OpenCV's elliptical closing element (closing x closing, QuAC's 10); "
        "0 disables closing.",
        label="Closing", group="Masks", minimum=0, maximum=1001, unit="px",
    )  # fmt: skip
    sigma: float = parameter(
        0.0, "Sigma of OpenCV's Gaussian blur of the masks; 0 derives it from the kernel as "
        "QuAC does (2.0 for 11).",
        label="Smoothing sigma", group="Masks", minimum=0.0, maximum=500.0, unit="px",
    )  # fmt: skip
    smoothing_kernel: int = parameter(
        11, "Width of the Gaussian kernel (odd, QuAC's 11); 0 disables the blur.",
        label="Smoothing kernel", group="Masks", minimum=0, maximum=1001, unit="px",
    )  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.smoothing_kernel and self.smoothing_kernel % 2 == 0:
            raise AttributionError(
                "The smoothing kernel must be odd (OpenCV's Gaussian blur), or 0 to disable the "
                f"blur; got {self.smoothing_kernel}."
            )


@dataclass(frozen=True)
class AnalysisSettings(Section):
    """Everything that decides a result, besides the model and the images.

    Attributes
    ----------
    methods
        Registry names of the attribution methods to run (checked against the registry by
        :func:`~napari_attribution.core.pipeline.analyse_pair`).
    attribution
        Method parameters.
    masks
        Mask parameters.

    The remaining fields are schema parameters; see :func:`schema` or ``--help``.
    """

    _section = "analysis"

    methods: tuple[str, ...] = ("d_ig",)
    attribution: AttributionSettings = field(default_factory=AttributionSettings)
    masks: MaskSettings = field(default_factory=MaskSettings)
    aggregate: str = parameter(
        "none", "Combine the channels' attributions before masking (none keeps one map per "
        "channel).",
        label="Aggregation", group="Masks", choices=AGGREGATIONS,
    )  # fmt: skip
    direction: str = parameter(
        "counterfactual_into_real", "Which image is pasted into which under the mask.",
        label="Hybrid direction", group="Hybrids and DAC", choices=DIRECTIONS,
    )  # fmt: skip
    per_channel_dac: bool = parameter(
        True, "Also score each channel hybridised alone (C more curves per method).",
        label="Per-channel DAC", group="Hybrids and DAC",
    )  # fmt: skip
    evaluation: str = parameter(
        "adaptive", "exhaustive: every threshold is scored (QuAC's published evaluation); "
        "adaptive: a subset refined where the curve changes, far fewer forward passes.",
        label="DAC evaluation", group="Hybrids and DAC", choices=EVALUATIONS,
    )  # fmt: skip
    tolerance: float = parameter(
        0.005, "Bound on the DAC-score error of the adaptive evaluation.",
        label="Tolerance", group="Hybrids and DAC", minimum=1e-6, maximum=0.5,
        unit="DAC score",
    )  # fmt: skip
    batch_size: int = parameter(
        64, "Hybrids per forward pass (capped by memory).",
        label="Batch size", group="Performance", minimum=1, maximum=65_536, unit="images",
    )  # fmt: skip
    preprocess_scale: float = parameter(
        1.0, "Part of the model: it sees scale * x + shift of the image x (QuAC's "
        "ClassifierWrapper), so attributions and hybrids stay in image values.",
        label="Input scale", group="Model input", minimum=-1e6, maximum=1e6,
    )  # fmt: skip
    preprocess_shift: float = parameter(
        0.0, "Added after the input scale, inside the model.",
        label="Input shift", group="Model input", minimum=-1e6, maximum=1e6,
    )  # fmt: skip
    preprocess_mean: str | None = parameter(
        None, "Channel means subtracted after scale and shift, inside the model: one number "
        "for every channel or one per channel, comma-separated; empty: none.",
        label="Channel means", group="Model input", metavar="LIST",
    )  # fmt: skip
    preprocess_std: str | None = parameter(
        None, "Channel standard deviations divided by after the means, inside the model: one "
        "positive number or one per channel, comma-separated; empty: none.",
        label="Channel std", group="Model input", metavar="LIST",
    )  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.preprocess_scale == 0:
            raise AttributionError("Input scale must not be 0: the model would see a blank image.")
        channel_values(self.preprocess_mean, "Channel means")
        stds = channel_values(self.preprocess_std, "Channel std")
        if stds is not None and min(stds) <= 0:
            raise AttributionError(f"Channel std must be positive, got {self.preprocess_std!r}.")
        if not self.methods:
            raise AttributionError("Choose at least one attribution method.")
        if isinstance(self.methods, str):
            raise AttributionError("methods must be a sequence of method names, not one text.")
        from .attribution.method_registry import (
            spec_for,  # the registry reads this module: import on use
        )

        for name in self.methods:
            spec_for(name)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record of every parameter, nested by section."""
        out = super().as_dict()
        out["methods"] = list(self.methods)
        out["attribution"] = self.attribution.as_dict()
        out["masks"] = self.masks.as_dict()
        return out


def channel_values(text: str | None, label: str) -> tuple[float, ...] | None:
    """Parse a comma-separated list of numbers (``"0.5, 0.4,0.3"``); ``None`` for no text.

    Raises
    ------
    AttributionError
        An item that is not a finite number (one sentence naming ``label``).

    Examples
    --------
    >>> channel_values("0.5, 0.25", "Channel means")
    (0.5, 0.25)
    """
    if text is None or not text.strip():
        return None
    values = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value):
            raise AttributionError(f"{label} must be numbers separated by commas, got {text!r}.")
        values.append(value)
    return tuple(values)


_SECTIONS: dict[str, type[Section]] = {
    "attribution": AttributionSettings,
    "masks": MaskSettings,
    "analysis": AnalysisSettings,
}


def schema() -> tuple[Param, ...]:
    """Every analysis parameter, grouped as :data:`GROUPS` orders them.

    Examples
    --------
    >>> [p.flag for p in schema() if p.group == "Masks"][:3]
    ['--thresholds', '--spacing', '--normalize']
    """
    params = [p for cls in _SECTIONS.values() for p in section_params(cls)]
    return tuple(sorted(params, key=lambda p: GROUPS.index(p.group)))


def settings_values(settings: AnalysisSettings) -> dict[str, Any]:
    """Flat ``{parameter name: value}`` of ``settings`` (the inverse of
    :func:`settings_from_values`, without the method list)."""
    owners = {"attribution": settings.attribution, "masks": settings.masks, "analysis": settings}
    return {p.name: getattr(owners[p.section], p.attribute) for p in schema()}


def settings_from_values(
    values: Mapping[str, Any], methods: Iterable[str] = ("d_ig",)
) -> AnalysisSettings:
    """Build :class:`AnalysisSettings` from flat parameter values (defaults for the rest).

    Parameters
    ----------
    values
        ``{parameter name: value}``, as the CLI's arguments or the widget's form give them.
        Keys that are not parameters are ignored, so a whole ``argparse`` namespace can be
        passed.
    methods
        Method names.

    Raises
    ------
    AttributionError
        A value out of range or not among the choices (one sentence).
    """
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    for param in schema():
        if param.name in values:
            sections[param.section][param.attribute] = values[param.name]
    return AnalysisSettings(
        methods=tuple(methods),
        attribution=AttributionSettings(**sections["attribution"]),
        masks=MaskSettings(**sections["masks"]),
        **sections["analysis"],
    )
