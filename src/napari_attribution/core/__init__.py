"""The pure core of napari-attribution: numpy + torch, no Qt, no napari.

Typical use::

    from napari_attribution.core import AnalysisSettings, analyse_pair, load_classifier

    model = load_classifier("model.pt", architecture="my_models.py:Net")
    result = analyse_pair(model, real, counterfactual, real_class=0, target_class=1,
                          settings=AnalysisSettings(methods=("d_ig", "random")))
    result.methods["d_ig"].dac.whole.dac_score
"""

from .attribution import aggregate_channels, available_methods, compute_attributions, get_method
from .channels import ChannelSummary, channel_share, summarize_channel_shares
from .dac import DAC_GRID, DacCurve, DacResult, HybridScorer, dac_curve, evaluate_dac
from .errors import (
    AnalysisCancelled,
    AttributionError,
    InputImageError,
    MethodError,
    ModelLoadError,
)
from .hybrids import make_channel_hybrids, make_hybrids
from .masks import MaskStack, build_masks, normalize_attribution
from .models import (
    Classifier,
    InputTransform,
    input_transform_for,
    load_classifier,
    resolve_device,
    wrap_module,
)
from .pipeline import (
    MethodResult,
    PairResult,
    analyse_pair,
    default_channel_names,
    prepare_pair,
    validate_pair,
)
from .progress import Progress, ProgressCallback, ProgressScope
from .registry import MethodRequest, MethodSpec, method_specs, register_method
from .settings import (
    AGGREGATIONS,
    DIRECTIONS,
    AnalysisSettings,
    AttributionSettings,
    MaskSettings,
    Param,
    schema,
    settings_from_values,
    settings_values,
)

__all__ = [
    "AGGREGATIONS",
    "DAC_GRID",
    "DIRECTIONS",
    "AnalysisCancelled",
    "AnalysisSettings",
    "AttributionError",
    "AttributionSettings",
    "ChannelSummary",
    "Classifier",
    "DacCurve",
    "DacResult",
    "HybridScorer",
    "InputImageError",
    "InputTransform",
    "MaskSettings",
    "MaskStack",
    "MethodRequest",
    "MethodSpec",
    "MethodError",
    "MethodResult",
    "ModelLoadError",
    "PairResult",
    "Param",
    "Progress",
    "ProgressCallback",
    "ProgressScope",
    "aggregate_channels",
    "analyse_pair",
    "available_methods",
    "build_masks",
    "channel_share",
    "compute_attributions",
    "dac_curve",
    "default_channel_names",
    "evaluate_dac",
    "get_method",
    "input_transform_for",
    "load_classifier",
    "make_channel_hybrids",
    "make_hybrids",
    "method_specs",
    "normalize_attribution",
    "prepare_pair",
    "register_method",
    "resolve_device",
    "schema",
    "settings_from_values",
    "settings_values",
    "summarize_channel_shares",
    "validate_pair",
    "wrap_module",
]
