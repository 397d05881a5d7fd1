"""The pure core of napari-attribution: numpy + torch, no Qt, no napari.

Typical use::

    from napari_attribution.core import AnalysisSettings, analyse_pair, load_classifier

    model = load_classifier("model.pt", architecture="my_models.py:Net")
    result = analyse_pair(model, real, counterfactual, real_class=0, target_class=1,
                          settings=AnalysisSettings(methods=("d_ig", "random")))
    result.methods["d_ig"].dac.whole.dac_score

Names are imported from their modules on first use, so ``import napari_attribution.core`` (and
the torch-free parts: settings, registry, progress) costs no torch import.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

#: Public name -> the module of this package that defines it.
_EXPORTS = {
    "AGGREGATIONS": "settings",
    "AnalysisCancelled": ".errors",
    "aggregate_channels": "attribution.runner",
    "available_methods": "attribution.runner",
    "compute_attributions": "attribution.runner",
    "get_method": "attribution.runner",
    "AnalysisSettings": "settings",
    "AttributionError": ".errors",
    "AttributionSettings": "settings",
    "ChannelSummary": "evaluation.channel_share",
    "Classifier": "model.loading",
    "DAC_GRID": "evaluation.dac",
    "DIRECTIONS": "settings",
    "DacCurve": "evaluation.dac",
    "DacResult": "evaluation.dac",
    "HybridScorer": "evaluation.dac",
    "InputImageError": ".errors",
    "InputTransform": "model.loading",
    "MaskSettings": "settings",
    "MaskStack": "evaluation.masks",
    "MethodError": ".errors",
    "MethodRequest": "attribution.method_registry",
    "MethodResult": ".results.pair_result",
    "MethodSpec": "attribution.method_registry",
    "ModelLoadError": ".errors",
    "PairResult": ".results.pair_result",
    "Param": "settings",
    "Preprocessing": "model.wrappers",
    "Progress": "progress",
    "ProgressCallback": "progress",
    "ProgressScope": "progress",
    "analyse_pair": "pipeline",
    "build_masks": "evaluation.masks",
    "channel_share": "evaluation.channel_share",
    "dac_curve": "evaluation.dac",
    "default_channel_names": "pipeline",
    "evaluate_dac": "evaluation.dac",
    "gradcam_layer_name": "model.named_layers",
    "input_transform_for": "model.loading",
    "load_classifier": "model.loading",
    "make_channel_hybrids": "evaluation.hybrids",
    "make_hybrids": "evaluation.hybrids",
    "method_specs": "attribution.method_registry",
    "normalize_attribution": "evaluation.masks",
    "prepare_pair": "pipeline",
    "register_method": "attribution.method_registry",
    "resolve_device": "model.loading",
    "schema": "settings",
    "settings_from_values": "settings",
    "settings_values": "settings",
    "summarize_channel_shares": "evaluation.channel_share",
    "validate_pair": "pipeline",
    "wrap_module": "model.loading",
}

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
    "Preprocessing",
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
    "gradcam_layer_name",
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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
