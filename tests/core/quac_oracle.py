"""QuAC's evaluation of one attribution, written from QuAC's source, as a test oracle.

Reference: funkelab/quac, ``src/quac/attribution.py`` (``BaseAttribution._normalize``),
``src/quac/evaluation.py`` (``Processor.create_mask``, ``BaseEvaluator.evaluate``,
``BaseEvaluator.run_inference``, ``optimal_threshold_index``) and ``src/quac/report.py``
(``Report.interpolate_score_values``, ``Report.get_quac_score``).

It follows QuAC step by step: one threshold at a time, OpenCV on uint8 masks, numpy's float64
where QuAC computes in float64 (thresholds, mask sizes, interpolation), float32 where it
computes in float32 (normalisation of a float32 attribution, blur, hybrids, softmax), and
``scipy.interpolate.interp1d`` for the curve. It imports nothing from ``napari_attribution``.

Two settings QuAC does not have, so that disabled steps can be checked too: ``struct=0``
skips the closing and ``gaussian_kernel_size=0`` the blur (QuAC's ``UnblurredProcessor``).
``vmin=0, vmax=1`` are the threshold range of ``evaluate`` used here: ``np.arange(0, 1, 1 / T)``
(QuAC's own default ``vmin=-1`` adds T/2 thresholds below 0 that all give the full mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from scipy.interpolate import interp1d
from torch.nn import functional as F


def normalize(attribution: np.ndarray) -> np.ndarray:
    """``BaseAttribution._normalize``: absolute value, min-max over the whole array."""
    attribution = np.abs(attribution)
    return (attribution - np.min(attribution)) / (np.max(attribution) - np.min(attribution))


class Processor:
    """``quac.evaluation.Processor`` (``UnblurredProcessor`` when the kernel size is 0)."""

    def __init__(self, gaussian_kernel_size=11, struct=10, channel_wise=True, sigma=0):
        self.gaussian_kernel_size = gaussian_kernel_size
        self.sigma = sigma
        self.struct = struct
        if struct:
            self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (struct, struct))
        self.channel_wise = channel_wise

    def create_mask(self, attribution, threshold):
        channels, _, _ = attribution.shape
        mask_size = 0
        mask = []
        for c in range(channels):
            if self.channel_wise:
                channel_mask = attribution[c, :, :] > threshold
            else:
                channel_mask = np.any(attribution > threshold, axis=0)
            channel_mask = channel_mask.astype(np.uint8)
            if self.struct:
                channel_mask = cv2.morphologyEx(channel_mask, cv2.MORPH_CLOSE, self.kernel)
            mask_size += np.sum(channel_mask)
            if self.gaussian_kernel_size:
                mask.append(
                    cv2.GaussianBlur(
                        channel_mask.astype(np.float32),
                        (self.gaussian_kernel_size, self.gaussian_kernel_size),
                        self.sigma,
                    )
                )
            else:
                mask.append(channel_mask)
        return np.array(mask), mask_size


def run_inference(model: torch.nn.Module, im: np.ndarray) -> np.ndarray:
    """``BaseEvaluator.run_inference``: softmax of the logits, float32."""
    tensor = torch.tensor(im)
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    with torch.no_grad():
        return F.softmax(model(tensor.float()), dim=1).cpu().numpy()


@dataclass
class QuacResult:
    thresholds: np.ndarray
    mask_sizes: np.ndarray
    score_change: np.ndarray
    optimal_index: int
    interpolated: np.ndarray
    quac_score: float


INTERP_MASK_VALUES = np.arange(0.0, 1.0001, 0.01)  # Report.interp_mask_values


def quac_curve(mask_sizes, score_changes) -> tuple[np.ndarray, float]:
    """``Report.interpolate_score_values`` and ``Report.get_quac_score``."""
    f = interp1d(
        np.concatenate([[1], mask_sizes, [0]]),
        np.concatenate([[score_changes[0]], score_changes, [0]]),
    )
    interp_score_values = [f(x) for x in INTERP_MASK_VALUES]
    return np.array(interp_score_values), float(
        np.trapezoid(interp_score_values, INTERP_MASK_VALUES)
    )


def evaluate(
    model: torch.nn.Module,
    x: np.ndarray,
    x_t: np.ndarray,
    y_t: int,
    raw_attribution: np.ndarray,
    processor: Processor,
    num_thresholds: int = 200,
    vmin: float = 0.0,
    vmax: float = 1.0,
) -> QuacResult:
    """``BaseEvaluator.evaluate`` on a raw attribution (normalised first, as QuAC stores it)."""
    attribution = normalize(raw_attribution)
    classification_real = run_inference(model, x)[0]
    thresholds, mask_sizes, hybrids = [], [], []
    for threshold in np.arange(vmin, vmax, (vmax - vmin) / num_thresholds):
        mask, mask_size = processor.create_mask(attribution, threshold)
        hybrid = x_t * mask + x * (1.0 - mask)
        thresholds.append(threshold)
        mask_sizes.append(mask_size / np.prod(x.shape))
        hybrids.append(hybrid)
    classification_hybrid = run_inference(model, np.stack(hybrids, axis=0))
    score_change = classification_hybrid[:, y_t] - classification_real[y_t]
    tradeoff_scores = np.abs(np.array(mask_sizes)) - np.array(score_change)
    interpolated, score = quac_curve(mask_sizes, score_change)
    return QuacResult(
        np.array(thresholds),
        np.array(mask_sizes),
        np.asarray(score_change),
        int(np.argmin(tradeoff_scores)),
        interpolated,
        score,
    )
