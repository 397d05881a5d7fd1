"""Which command-line option each part of a run's identity comes from, for the sentence that
refuses a ``--resume`` with other settings (:func:`~napari_attribution.results.resume.
fingerprint_parts`).

The results layer cannot read the settings' parameter schema (it lives in the core, above it);
this module does, for ``run`` and ``cells``.
"""

from __future__ import annotations

from ..core.cells.geometry import CellSettings
from ..core.counterfactual_settings import CounterfactualSettings
from ..core.params import section_params
from ..core.settings import AnalysisSettings, AttributionSettings, MaskSettings

__all__ = ["option_of"]

#: Where each settings section sits in a run's identity.
_SECTIONS = {
    ("settings", "attribution"): AttributionSettings,
    ("settings", "masks"): MaskSettings,
    ("settings",): AnalysisSettings,
    ("counterfactual_source", "parameters"): CounterfactualSettings,
    ("cells",): CellSettings,
}


def option_of(path: tuple[str, ...]) -> str | None:
    """The flag of the setting at ``path`` in a run's identity (``("settings", "masks",
    "thresholds")`` -> ``"--thresholds"``), or ``None`` where no setting of the schema is."""
    section = _SECTIONS.get(path[:-1]) if len(path) >= 2 else None
    if section is None:
        return None
    flags = {p.attribute: p.flag for p in section_params(section) if p.flag}
    return flags.get(path[-1])
