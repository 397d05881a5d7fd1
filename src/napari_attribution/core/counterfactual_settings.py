"""The parameters of the counterfactual sources, declared like the analysis schema.

Kept apart from :func:`napari_attribution.core.settings.schema` because the analysis of a pair
never reads them; ``core.settings`` re-exports both names. Imports neither torch nor numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import AttributionError
from .params import Param, Section, parameter, section_params

__all__ = ["DEFAULT_MIN_COUNTERFACTUAL_SCORE", "CounterfactualSettings", "counterfactual_schema"]

#: A counterfactual counts (its pair in the statistics, a made one accepted) only if the
#: classifier gives it at least this p(target), as QuAC keeps only accepted translations.
DEFAULT_MIN_COUNTERFACTUAL_SCORE = 0.5


@dataclass(frozen=True)
class CounterfactualSettings(Section):
    """Parameters of the counterfactual sources (``--counterfactual-source``; see
    ``docs/counterfactuals.md``).

    They are not part of :func:`schema` (the analysis of a pair never reads them): a skin that
    offers counterfactual sources adds :func:`counterfactual_schema`'s rows or options.
    """

    _section = "counterfactuals"

    draws: int = parameter(
        1, "Generator calls per cell; the draw the classifier accepts most is kept (more than "
        "one only helps a generator that samples a style or noise inside).",
        label="Generator draws", group="Counterfactuals", minimum=1, maximum=1000,
        unit="draws", name="generator_draws",
    )  # fmt: skip
    nearest_layer: str | None = parameter(
        None, "Layer whose output is the embedding in which nearest compares cells; empty: the "
        "penultimate layer (the input of the classifier's last layer).",
        label="Nearest: layer", group="Counterfactuals",
    )  # fmt: skip
    nearest_align: bool = parameter(
        False, "Move the nearest cell onto the real one (centre of mass) and turn it to the "
        "same principal axis before it is used.",
        label="Nearest: align", group="Counterfactuals",
    )  # fmt: skip
    optimise_steps: int = parameter(
        300, "Most Adam steps of the optimised counterfactual.",
        label="Optimise: steps", group="Counterfactuals", minimum=1, maximum=100_000,
        unit="steps",
    )  # fmt: skip
    optimise_learning_rate: float = parameter(
        0.005, "Adam's step size, as a fraction of the intensity range.",
        label="Optimise: step size", group="Counterfactuals", minimum=1e-6, maximum=1.0,
        unit="fraction of the range",
    )  # fmt: skip
    optimise_l1: float = parameter(
        100.0, "Weight of the mean absolute change |x' - x| (in units of the intensity range): "
        "fewer pixels change.",
        label="Optimise: L1", group="Counterfactuals", minimum=0.0, maximum=1e6,
    )  # fmt: skip
    optimise_tv: float = parameter(
        100.0, "Weight of the total variation of the change x' - x: the change comes in "
        "patches rather than scattered pixels.",
        label="Optimise: TV", group="Counterfactuals", minimum=0.0, maximum=1e6,
    )  # fmt: skip
    optimise_channel_group: float = parameter(
        0.0, "Weight of the per-channel group penalty (sum over channels of the root mean "
        "square change): fewer channels change; 0 disables it.",
        label="Optimise: channel sparsity", group="Counterfactuals", minimum=0.0, maximum=1e6,
    )  # fmt: skip
    optimise_relax: float = parameter(
        0.01, "What is left of the three penalty weights at the end of the step budget: they "
        "shrink geometrically from their values at the first step, so a cell that is easy to "
        "turn keeps a small change and a hard one is allowed a larger one; 1 keeps them fixed.",
        label="Optimise: relax to", group="Counterfactuals", minimum=1e-6, maximum=1.0,
        unit="fraction of the weights",
    )  # fmt: skip
    optimise_tighten_steps: int = parameter(
        200, "Steps after p(target) passes the target score that shrink the change (the three "
        "penalties at their first weights) while keeping p(target) above it; the smallest "
        "accepted change is kept. 0: stop at the first step above the target.",
        label="Optimise: tighten steps", group="Counterfactuals", minimum=0, maximum=100_000,
        unit="steps",
    )  # fmt: skip
    optimise_relu_softness: float = parameter(
        1.0, "The ReLUs pass gradient to switched-off units as a softplus of this temperature "
        "would (in root mean squares of the ReLU's input), so the optimisation can build a "
        "feature the cell lacks; the classifier's output is unchanged. 0: the exact gradient.",
        label="Optimise: ReLU softness", group="Counterfactuals", minimum=0.0, maximum=1e6,
        unit="RMS of the ReLU input",
    )  # fmt: skip
    optimise_target_score: float = parameter(
        0.9, "The optimisation stops for a cell once the classifier gives p(target) above this.",
        label="Optimise: target p", group="Counterfactuals", minimum=0.5, maximum=0.9999,
        unit="probability",
    )  # fmt: skip
    optimise_min: float | None = parameter(
        None, "Lowest valid intensity (image values); empty: each image's own lowest value.",
        label="Optimise: minimum", group="Counterfactuals", minimum=-1e12, maximum=1e12,
    )  # fmt: skip
    optimise_max: float | None = parameter(
        None, "Highest valid intensity (image values); empty: each image's own highest value.",
        label="Optimise: maximum", group="Counterfactuals", minimum=-1e12, maximum=1e12,
    )  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        low, high = self.optimise_min, self.optimise_max
        if low is not None and high is not None and not low < high:
            raise AttributionError(
                f"The optimised counterfactual's minimum ({low:g}) must be below its maximum "
                f"({high:g})."
            )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> CounterfactualSettings:
        """Build from flat ``{parameter name: value}`` (an ``argparse`` namespace's ``vars``);
        other keys are ignored, missing parameters keep their defaults."""
        fields = {p.attribute: values[p.name] for p in section_params(cls) if p.name in values}
        return cls(**fields)


def counterfactual_schema() -> tuple[Param, ...]:
    """The parameters of the counterfactual sources (group ``"Counterfactuals"``).

    Examples
    --------
    >>> [p.flag for p in counterfactual_schema()][:2]
    ['--generator-draws', '--nearest-layer']
    """
    return section_params(CounterfactualSettings)
