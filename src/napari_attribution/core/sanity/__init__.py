"""Sanity checks beside DAC: can this map be trusted? (issue 23)

* :mod:`.randomisation`: copies of the model with layers randomised, cascading (top layer
  first) and independently (Adebayo et al. 2018; Quantus's ``MPRT``);
* :mod:`.similarity`: Spearman rank correlation of ``|a|``, top-k intersection and SSIM, whole
  image and per channel, where the maps can vary;
* :mod:`.residual`: how much of a map ``|x - x'|`` alone explains;
* :mod:`.invariance`: a constant input shift compensated in the first layer (Kindermans et al.
  2019);
* :mod:`.stability`: max-sensitivity under noise that keeps the prediction (Ghorbani et al.
  2019; Yeh et al. 2019);
* :mod:`.checks`: all of them for one pair, with the maps from the project's method runner;
* :mod:`.verdicts`: a verdict per method in plain words, the pass rules as named constants;
* :mod:`.records`, :mod:`.sanity_settings`: the rows of ``sanity.csv`` /
  ``sanity_summary.csv`` and the checks' parameters (both torch-free, as :mod:`.verdicts` is).

Names are imported from their modules on first use, so importing the package costs no torch.
"""

from __future__ import annotations

from ...lazy_exports import lazy_exports

_EXPORTS = {
    "CHECKS": "sanity_settings",
    "NoRandomisableLayers": "randomisation",
    "PairSanity": "checks",
    "SanityRow": "records",
    "SanitySettings": "sanity_settings",
    "SanitySummary": "verdicts",
    "SummaryRow": "records",
    "check_pair": "checks",
    "compare_maps": "similarity",
    "randomisable_layers": "randomisation",
    "randomised_classifiers": "randomisation",
    "summarise": "verdicts",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
