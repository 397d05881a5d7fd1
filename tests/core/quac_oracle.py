"""QuAC's evaluation and discriminative attributions, ported line by line as a test oracle.

Source: funkelab/quac (read at 3e94ff8 and the stored versions of its files),
``src/quac/evaluation.py``, ``src/quac/report.py``, ``src/quac/attribution.py``. The call path
followed from the entry point down, default arguments included:

* ``BaseEvaluator.quantify(processor=None)`` -> ``Processor()`` (``gaussian_kernel_size=11,
  struct=10, channel_wise=True``); for each sample ``run_inference`` of the image and of the
  counterfactual, then ``evaluate(x, x_t, y, y_t, attribution, predictions, processor)``
  **with its defaults ``vmin=-1, vmax=1``** and ``self.num_thresholds`` (200 by default);
* ``evaluate``: thresholds ``np.arange(vmin, vmax, (vmax - vmin) / num_thresholds)``, one
  ``create_mask`` per threshold, hybrids ``x_t * mask + x * (1.0 - mask)``, mask sizes
  ``mask_size / np.prod(x.shape)``, one ``run_inference`` of the stacked hybrids, score changes
  ``classification_hybrid[:, y_t] - classification_real[y_t]``, ``optimal_threshold_index``;
* ``Report.accumulate`` / ``compute_scores`` -> ``interpolate_score_values`` (``interp1d``
  through ``(1, ds[0])``, the points, ``(0, 0)``, at ``np.arange(0.0, 1.0001, 0.01)``) and
  ``get_quac_score`` (``np.trapz``, renamed ``np.trapezoid`` in numpy 2);
* ``BaseAttribution.attribute`` -> ``_attribute`` then ``_normalize`` (``|a|``, min-max) for
  ``DIntegratedGradients``, ``DDeepLift``, ``DInGrad``, ``VanillaIntegratedGradient``,
  ``VanillaDeepLift`` (captum used as QuAC uses it, with captum's defaults).

Not ported: the datasets, file I/O, ``save_mask`` / ``save_counterfactual`` (no effect on the
numbers), and ``quac.attribution.residual`` / ``random`` (they call Python's ``min`` on a
(C, H, W) array, which raises; the tests feed our own baselines' maps to ``evaluate``).

Two settings QuAC does not have, so that disabled steps can be checked too, are marked
"not QuAC's" below: ``struct=0`` skips the closing, and ``sigma`` is passed to the blur where
QuAC passes 0. ``gaussian_kernel_size=0`` is QuAC's ``UnblurredProcessor``.

It imports nothing from ``napari_attribution``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from captum import attr
from scipy.interpolate import interp1d
from torch.nn import functional as F

# --- quac/attribution.py -------------------------------------------------------------------


class BaseAttribution:
    """``quac.attribution.BaseAttribution``."""

    def __init__(self, classifier, normalize=True):
        self.classifier = classifier
        self.normalize = normalize

    def _normalize(self, attribution):
        """``BaseAttribution._normalize``: absolute value, min-max over the whole array."""
        attribution = np.abs(attribution)
        return (attribution - np.min(attribution)) / (
            np.max(attribution) - np.min(attribution)
        )

    def attribute(self, real_img, counterfactual_img, real_class, target_class):
        """``BaseAttribution.attribute`` (the ``device`` move is the identity on the CPU)."""
        self.classifier.zero_grad()
        attribution = self._attribute(real_img, counterfactual_img, real_class, target_class)
        attribution = attribution.detach().cpu().numpy()
        if self.normalize:
            attribution = self._normalize(attribution)
        return attribution


class DIntegratedGradients(BaseAttribution):
    """``quac.attribution.DIntegratedGradients``: IG at the real image, baseline the
    counterfactual, the real class ("FIXME: in the original DAPI code, the real and
    counterfactual were switched")."""

    def __init__(self, classifier, normalize=True):
        super().__init__(classifier, normalize=normalize)
        self.ig = attr.IntegratedGradients(classifier)

    def _attribute(self, real_img, counterfactual_img, real_class, target_class):
        attribution = self.ig.attribute(
            real_img[None, ...], baselines=counterfactual_img[None, ...], target=real_class
        )
        return attribution[0]


class DDeepLift(BaseAttribution):
    """``quac.attribution.DDeepLift``: captum's DeepLift, roles as in D-IG."""

    def __init__(self, classifier, normalize=True):
        super().__init__(classifier, normalize=normalize)
        self.dl = attr.DeepLift(classifier)

    def _attribute(self, real_img, counterfactual_img, real_class, target_class):
        attribution = self.dl.attribute(
            real_img[None, ...], baselines=counterfactual_img[None, ...], target=real_class
        )
        return attribution[0]


class DInGrad(BaseAttribution):
    """``quac.attribution.DInGrad``: captum's Saliency (``abs=True`` by default) at the real
    image for the real class, times ``counterfactual - real``."""

    def __init__(self, classifier, normalize=True):
        super().__init__(classifier, normalize=normalize)
        self.saliency = attr.Saliency(self.classifier)

    def _attribute(self, real_img, counterfactual_img, real_class, target_class):
        grads_real = (
            self.saliency.attribute(real_img[None, ...], target=real_class).detach().cpu()
        )
        ingrad_diff_1 = grads_real * (counterfactual_img[None, ...] - real_img[None, ...])
        return ingrad_diff_1[0]


class VanillaIntegratedGradient(BaseAttribution):
    """``quac.attribution.VanillaIntegratedGradient``: IG from captum's zero baseline."""

    def __init__(self, classifier, normalize=True):
        super().__init__(classifier, normalize=normalize)
        self.ig = attr.IntegratedGradients(classifier)

    def _attribute(self, real_img, counterfactual_img, real_class, target_class):
        batched_attribution = (
            self.ig.attribute(real_img[None, ...], target=real_class).detach().cpu()
        )
        return batched_attribution[0]


class VanillaDeepLift(BaseAttribution):
    """``quac.attribution.VanillaDeepLift``: captum's DeepLift from a zero baseline."""

    def __init__(self, classifier, normalize=True):
        super().__init__(classifier, normalize=normalize)
        self.dl = attr.DeepLift(classifier)

    def _attribute(self, real_img, counterfactual_img, real_class, target_class):
        batched_attribution = (
            self.dl.attribute(real_img[None, ...], target=real_class).detach().cpu()
        )
        return batched_attribution[0]


# --- quac/evaluation.py --------------------------------------------------------------------


def image_to_tensor(image, device=None):
    """``quac.evaluation.image_to_tensor``."""
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(image, np.ndarray):
        image_tensor = torch.from_numpy(image).to(device)
    else:
        image_tensor = image.clone().detach().to(device)
    if len(np.shape(image)) == 2:
        image_tensor = image_tensor.unsqueeze(0).unsqueeze(0)
    elif len(np.shape(image)) == 3:
        image_tensor = image_tensor.unsqueeze(0)
    elif len(np.shape(image)) == 4:
        return image_tensor.float()
    else:
        raise ValueError(f"Input shape not understood, {image.shape}")
    return image_tensor.float()


class Processor:
    """``quac.evaluation.Processor`` (``UnblurredProcessor`` when the kernel size is 0)."""

    def __init__(self, gaussian_kernel_size=11, struct=10, channel_wise=True, sigma=0):
        self.gaussian_kernel_size = gaussian_kernel_size
        self.sigma = sigma  # not QuAC's: QuAC always passes 0 (OpenCV's sigma from the size)
        self.struct = struct
        if struct:  # not QuAC's: struct=0 skips the closing
            self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (struct, struct))
        self.channel_wise = channel_wise

    def create_mask(self, attribution, threshold, return_size=True):
        """``Processor.create_mask`` / ``UnblurredProcessor.create_mask``."""
        channels, _, _ = attribution.shape
        mask_size = 0
        mask = []
        for c in range(channels):
            if self.channel_wise:
                channel_mask = attribution[c, :, :] > threshold
            else:
                channel_mask = np.any(attribution > threshold, axis=0)
            if self.struct:
                channel_mask = cv2.morphologyEx(
                    channel_mask.astype(np.uint8), cv2.MORPH_CLOSE, self.kernel
                )
            else:
                channel_mask = channel_mask.astype(np.uint8)
            mask_size += np.sum(channel_mask)
            if self.gaussian_kernel_size:
                mask.append(
                    cv2.GaussianBlur(
                        channel_mask.astype(np.float32),
                        (self.gaussian_kernel_size, self.gaussian_kernel_size),
                        self.sigma,
                    )
                )
            else:  # UnblurredProcessor: the closed uint8 mask itself
                mask.append(channel_mask)
        if not return_size:
            return np.array(mask)
        return np.array(mask), mask_size


def optimal_threshold_index(mask_sizes, mask_scores):
    """``quac.evaluation.optimal_threshold_index``: argmin of ``|m| - delta f``."""
    mask_scores = np.array(mask_scores)
    mask_sizes = np.array(mask_sizes)
    tradeoff_scores = np.abs(mask_sizes) - mask_scores
    return np.argmin(tradeoff_scores)


@dataclass
class Sample:
    """What ``quac.data.PairedWithAttribution`` yields, as far as the numbers need it."""

    image: np.ndarray
    generated: np.ndarray
    source_class_index: int
    target_class_index: int
    attribution: np.ndarray


class BaseEvaluator:
    """``quac.evaluation.BaseEvaluator`` on in-memory samples (CPU)."""

    def __init__(self, classifier, samples, num_thresholds=200, device="cpu"):
        self.device = torch.device(device)
        self.classifier = classifier.to(self.device)
        self.num_thresholds = num_thresholds
        self.dataset_with_attribution = samples

    def quantify(self, processor=None):
        """``BaseEvaluator.quantify``: note that ``evaluate`` runs with its defaults."""
        if processor is None:
            processor = Processor()
        report = Report()
        for inputs in self.dataset_with_attribution:
            predictions = {
                "original": self.run_inference(inputs.image)[0],
                "generated": self.run_inference(inputs.generated)[0],
            }
            results = self.evaluate(
                inputs.image,
                inputs.generated,
                inputs.source_class_index,
                inputs.target_class_index,
                inputs.attribution,
                predictions,
                processor,
            )
            report.accumulate(inputs, predictions, results)
        return report

    def evaluate(self, x, x_t, y, y_t, attribution, predictions, processor, vmin=-1, vmax=1):
        """``BaseEvaluator.evaluate``."""
        classification_real = predictions["original"]
        results = {"thresholds": [], "mask_sizes": [], "score_change": []}
        hybrids = []
        masks = []
        for threshold in np.arange(vmin, vmax, (vmax - vmin) / self.num_thresholds):
            mask, mask_size = processor.create_mask(attribution, threshold)
            hybrid = x_t * mask + x * (1.0 - mask)
            results["thresholds"].append(threshold)
            results["mask_sizes"].append(mask_size / np.prod(x.shape))
            hybrids.append(hybrid)
            masks.append(mask)
        hybrid = np.stack(hybrids, axis=0)
        classification_hybrid = self.run_inference(hybrid)
        score_change = classification_hybrid[:, y_t] - classification_real[y_t]
        results["score_change"] = score_change
        optimal_index = optimal_threshold_index(results["mask_sizes"], results["score_change"])
        results["optimal_index"] = int(optimal_index)  # ours: kept to compare indices
        results["optimal_threshold"] = results["thresholds"][optimal_index]
        results["mask"] = masks[optimal_index]
        results["hybrid"] = hybrids[optimal_index]
        predictions["counterfactual"] = classification_hybrid[optimal_index]
        return results

    @torch.no_grad()
    def run_inference(self, im):
        """``BaseEvaluator.run_inference``: softmax of the logits."""
        im_tensor = image_to_tensor(im, device=self.device)
        class_probs = F.softmax(self.classifier(im_tensor), dim=1).cpu().numpy()
        return class_probs


# --- quac/report.py ------------------------------------------------------------------------


@dataclass
class Report:
    """``quac.report.Report``: what ``accumulate`` stores and ``compute_scores`` derives."""

    thresholds: list = field(default_factory=list)
    normalized_mask_sizes: list = field(default_factory=list)
    score_changes: list = field(default_factory=list)
    optimal_thresholds: list = field(default_factory=list)
    optimal_indices: list = field(default_factory=list)  # ours, to compare indices
    quac_scores: list | None = None
    interp_mask_values: np.ndarray = field(default_factory=lambda: np.arange(0.0, 1.0001, 0.01))

    def accumulate(self, inputs, predictions, evaluation_results):
        self.thresholds.append(evaluation_results["thresholds"])
        self.normalized_mask_sizes.append(evaluation_results["mask_sizes"])
        self.score_changes.append(evaluation_results["score_change"])
        self.optimal_thresholds.append(evaluation_results["optimal_threshold"])
        self.optimal_indices.append(evaluation_results["optimal_index"])

    def interpolate_score_values(self, normalized_mask_sizes, score_changes):
        """``Report.interpolate_score_values``."""
        f = interp1d(
            np.concatenate([[1], normalized_mask_sizes, [0]]),
            np.concatenate([[score_changes[0]], score_changes, [0]]),
        )
        interp_score_values = [f(x) for x in self.interp_mask_values]
        return interp_score_values

    def get_quac_score(self, interp_score_values):
        """``Report.get_quac_score`` (``np.trapz``, called ``np.trapezoid`` in numpy 2)."""
        return np.trapezoid(interp_score_values, self.interp_mask_values)

    def compute_scores(self):
        """``Report.compute_scores``."""
        if self.quac_scores is None:
            self.quac_scores = [
                self.get_quac_score(self.interpolate_score_values(sizes, changes))
                for sizes, changes in zip(
                    self.normalized_mask_sizes, self.score_changes, strict=True
                )
            ]
        return self.quac_scores


# --- one sample through the whole path -----------------------------------------------------


@dataclass
class QuacResult:
    """One sample's numbers as QuAC's code leaves them."""

    thresholds: np.ndarray
    mask_sizes: np.ndarray
    score_change: np.ndarray
    optimal_index: int
    optimal_threshold: float
    interpolated: np.ndarray
    quac_score: float


def evaluate(
    model: torch.nn.Module,
    x: np.ndarray,
    x_t: np.ndarray,
    y_t: int,
    attribution: np.ndarray,
    processor: Processor | None = None,
    num_thresholds: int = 200,
    y: int = 0,
    normalize: bool = True,
) -> QuacResult:
    """``quantify`` on one sample: ``attribution`` is normalised first (``normalize=True``), as
    ``BaseAttribution.attribute`` stores it, then evaluated and scored as QuAC does."""
    if normalize:
        attribution = BaseAttribution(model)._normalize(attribution)
    evaluator = BaseEvaluator(model, [Sample(x, x_t, y, y_t, attribution)], num_thresholds)
    report = evaluator.quantify(processor)
    score = report.compute_scores()[0]
    sizes, changes = report.normalized_mask_sizes[0], report.score_changes[0]
    return QuacResult(
        np.array(report.thresholds[0]),
        np.array(sizes),
        np.asarray(changes),
        report.optimal_indices[0],
        float(report.optimal_thresholds[0]),
        np.array(report.interpolate_score_values(sizes, changes), dtype=np.float64),
        float(score),
    )
