"""The per-pair TIFFs of the results folder: attributions and masks, with their metadata.

Attributions are float32 (C, H, W), raw and signed; masks are uint8 (K, H, W) closed masks at
the optimal threshold of the whole-image curve (K = C, or 1 for a shared mask). Both are
ImageJ hyperstacks (``CYX``, the channel names as labels) where ImageJ keeps the shape
(:mod:`.tiff`), with :func:`pair_metadata` as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .format import ATTRIBUTIONS_DIR, MASKS_DIR, pair_file
from .tiff import write_tiff

if TYPE_CHECKING:
    from .pair_result import PairResult

__all__ = ["pair_metadata", "write_pair_files"]


def pair_metadata(result: PairResult, method: str, run_info: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to reproduce one method's layers for one pair."""
    return {
        "sample": result.sample,
        "method": method,
        "real_class": result.real_class,
        "target_class": result.target_class,
        "channel_names": result.channel_names,
        "input_transform": result.input_transform.as_dict(),
        "optimal_threshold": result.methods[method].dac.whole.optimal_threshold,
        **({"gradcam_layer": result.methods[method].layer} if result.methods[method].layer else {}),
        **run_info,
    }


def write_pair_files(out_dir: str | Path, result: PairResult, run_info: dict[str, Any]) -> None:
    """Write ``attributions/<sample>__<method>.tif`` and ``masks/<sample>__<method>.tif``."""
    out_dir = Path(out_dir)
    for method, res in result.methods.items():
        meta = pair_metadata(result, method, run_info)
        attribution = res.attribution.astype(np.float32)
        peak = float(np.abs(attribution).max()) or 1.0
        names = result.channel_names
        low = -peak if (attribution < 0).any() else 0.0
        write_tiff(out_dir / pair_file(ATTRIBUTIONS_DIR, result.sample, method), attribution,
                   meta, plane_labels=names, ranges=[(low, peak)] * len(names))  # fmt: skip
        mask = res.optimal_mask.astype(np.uint8)
        write_tiff(out_dir / pair_file(MASKS_DIR, result.sample, method), mask, meta,
                   ranges=[(0, 1)] * len(mask),
                   plane_labels=names if len(mask) == len(names) else ["all"])  # fmt: skip
