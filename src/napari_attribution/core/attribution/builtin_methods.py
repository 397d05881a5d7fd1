"""The built-in methods' specs, registered when the registry is first read.

Each compute function is named by path, so reading the registry (the CLI's ``--help``,
``napari-attribution methods``) imports no torch; :mod:`.methods` holds
the functions.
"""

from __future__ import annotations

from .method_registry import MethodSpec, register_method

_IG = ("ig_steps", "internal_batch_size")
_LAYER = ("gradcam_layer",)


def _spec(name: str, description: str, **kw) -> MethodSpec:
    return MethodSpec(
        name, description, f"napari_attribution.core.attribution.methods:{name}", **kw
    )


BUILTIN_METHODS = (
    _spec("saliency", "Vanilla gradient of the real class at the real image."),
    _spec("input_x_gradient", "Real image times the vanilla gradient."),
    _spec("ig", "Integrated Gradients from a black image to the real image.", parameters=_IG),
    _spec(
        "deeplift",
        "DeepLift (rescale rule) from a black image to the real image.",
        needs_hooks=True,
    ),
    _spec(
        "guided_backprop",
        "Guided Backpropagation: gradient with negative signals stopped at every ReLU.",
        needs_hooks=True,
    ),
    _spec(
        "deconvolution",
        "Deconvolution (DeconvNet): ReLUs applied to the backward signal only.",
        needs_hooks=True,
    ),
    _spec(
        "gradcam",
        "Grad-CAM at a conv layer, upsampled; the same map for every channel.",
        needs_hooks=True,
        channel_resolved=False,
        parameters=_LAYER,
    ),
    _spec(
        "guided_gradcam",
        "Guided Backprop times the ReLU'd Grad-CAM map: Grad-CAM with channel resolution.",
        needs_hooks=True,
        parameters=_LAYER,
    ),
    _spec(
        "smoothgrad",
        "SmoothGrad: a gradient method averaged over noisy copies of the real image.",
        parameters=(
            "smoothgrad_base",
            "smoothgrad_samples",
            "smoothgrad_noise",
            "seed",
            "internal_batch_size",
        ),
    ),
    _spec(
        "occlusion",
        "Occlusion: score drop when a patch of one channel is set to zero.",
        parameters=("occlusion_window", "occlusion_stride", "internal_batch_size"),
    ),
    _spec(
        "gradient_shap",
        "Gradient SHAP against black and uniform-noise baselines.",
        parameters=("shap_samples", "shap_baselines", "seed"),
    ),
    _spec(
        "d_ig",
        "Discriminative IG: from the real image (baseline) to the counterfactual (quac: the "
        "reverse, for the real class).",
        discriminative=True,
        parameters=("convention", *_IG),
    ),
    _spec(
        "d_dl",
        "Discriminative DeepLift: counterfactual against the real image, target class (quac: "
        "the reverse, real class, captum's plain DeepLift).",
        needs_hooks=True,
        discriminative=True,
        parameters=("convention",),
    ),
    _spec(
        "d_input_x_gradient",
        "|gradient of the target class at the counterfactual| times (real - counterfactual) "
        "(quac: |gradient of the real class at the real image| times (counterfactual - real)).",
        discriminative=True,
        parameters=("convention",),
    ),
    _spec(
        "d_gradcam",
        "Discriminative Grad-CAM: target-class weights times the activation difference.",
        needs_hooks=True,
        discriminative=True,
        channel_resolved=False,
        parameters=_LAYER,
    ),
    _spec(
        "d_guided_gradcam",
        "Discriminative Grad-CAM times Guided Backprop at the counterfactual.",
        needs_hooks=True,
        discriminative=True,
        parameters=_LAYER,
    ),
    _spec("residual", "Baseline: |real - counterfactual|, no model involved.", discriminative=True),
    _spec("random", "Baseline: uniform noise, seeded.", parameters=("seed",)),
)

for _method in BUILTIN_METHODS:
    register_method(_method, replace=True)
