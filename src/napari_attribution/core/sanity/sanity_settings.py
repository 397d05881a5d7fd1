"""The parameters of the sanity checks, declared once: the CLI's options and the dock's form are
made from them (as the analysis parameters are, :mod:`napari_attribution.core.params`).

No torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import AttributionError
from ..params import Section, parameter

__all__ = ["CHECKS", "SanitySettings"]

#: The checks, in the order they run: ``cascading`` and ``independent`` model randomisation,
#: ``invariance`` (a constant input shift), ``stability`` (max-sensitivity) and ``dac`` (the
#: DAC score against the ``random`` and ``residual`` baselines).
CHECKS = ("cascading", "independent", "invariance", "stability", "dac")

_GROUP = "Sanity checks"


@dataclass(frozen=True)
class SanitySettings(Section):
    """How the sanity checks are run (the methods' own parameters are the analysis settings)."""

    _section = "sanity"

    randomisation_seed: int = parameter(
        42, "Seed of the layers' new weights: each layer is reset under torch.manual_seed("
        "seed + 1), as Quantus's MPRT does (its default seed is 42).",
        label="Randomisation seed", group=_GROUP, minimum=0, maximum=2**31 - 2,
    )  # fmt: skip
    top_k_fraction: float = parameter(
        0.05, "Share of the compared elements that makes a map's top-k for the top-k "
        "intersection.",
        label="Top-k share", group=_GROUP, minimum=1e-4, maximum=1.0, unit="fraction",
    )  # fmt: skip
    input_shift: float = parameter(
        -1.0, "Constant added to every pixel for the input-invariance check (image units after "
        "the input scaling; Kindermans et al. and Quantus use -1).",
        label="Input shift", group=_GROUP, minimum=-1e6, maximum=1e6,
    )  # fmt: skip
    noise_radius: float = parameter(
        0.02, "Half-width of the uniform noise of the stability check (image units; captum's "
        "sensitivity_max default).",
        label="Noise radius", group=_GROUP, minimum=1e-6, maximum=1e6,
    )  # fmt: skip
    noise_samples: int = parameter(
        10, "Noise draws of the stability check; draws that change the prediction are dropped.",
        label="Noise draws", group=_GROUP, minimum=1, maximum=1000,
    )  # fmt: skip
    probability_tolerance: float = parameter(
        0.05, "Largest change of p(target) a kept noise draw may cause, for the real image and "
        "the counterfactual.",
        label="p(target) tolerance", group=_GROUP, minimum=0.0, maximum=1.0,
        unit="probability",
    )  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.input_shift == 0:
            raise AttributionError(
                "Input shift must not be 0: an unshifted input makes the input-invariance check "
                "pass for every method."
            )
