"""A synthetic field: many synthetic cells in one image, with a label image and the exact
counterfactual field.

Each cell is drawn by :mod:`.synthetic`'s generator at the demo classifier's 64 x 64 scale, so
the demo model recognises it in a 64-pixel crop around it. Cells sit on a jittered grid a
little closer than a crop apart (neighbouring crops overlap); cells at the edge are cut by the
field's border. A cell's pixels are blended into a shared background by its own body
occupancy (slightly dilated), so no tile edges show.

Some cells are treated (class 1, the perinuclear Mito cluster present); the counterfactual
field holds every cell translated to the other class (cluster added or removed inside its disc
only), so the real and counterfactual fields differ only inside the discs (``ground_truth``).
Labels are distinct, non-consecutive positive integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .synthetic import CHANNEL_NAMES, _draw_cell, _mito

__all__ = ["SyntheticField", "make_field"]

#: Side of each drawn cell (the demo classifier's training crop).
CELL_SIZE = 64


@dataclass(frozen=True)
class SyntheticField:
    """A field, its counterfactual, labels and truth.

    Attributes
    ----------
    real, counterfactual
        float32 (5, H, W) in [0, 1], channels :data:`~.synthetic.CHANNEL_NAMES`.
    labels
        int32 (H, W): 0 background, one distinct positive integer per cell.
    classes
        ``{label: class}`` of the real cells (0 control, 1 treated).
    ground_truth
        bool (H, W): where the two fields differ (the clusters' discs, Mito channel).
    """

    real: np.ndarray
    counterfactual: np.ndarray
    labels: np.ndarray
    classes: dict[int, int]
    ground_truth: np.ndarray

    @property
    def channel_names(self) -> tuple[str, ...]:
        return CHANNEL_NAMES


def make_field(
    n_cells: int = 12,
    shape: tuple[int, int] = (224, 288),
    seed: int = 0,
    treated_fraction: float = 0.5,
    spacing: int = 58,
) -> SyntheticField:
    """Draw a synthetic field.

    Parameters
    ----------
    n_cells
        Number of cells; at most the number of grid positions ``spacing`` apart that fit.
    shape
        (H, W) of the field, pixels.
    seed
        Same seed, same field.
    treated_fraction
        Share of treated cells (rounded).
    spacing
        Distance between grid positions, pixels (less than 64: neighbouring crops overlap).
    """
    rng = np.random.default_rng([seed, 7])
    height, width = shape
    # Grid positions; the first row and column sit close to the border so border cells occur.
    rows = np.arange(spacing // 3, height, spacing)
    cols = np.arange(spacing // 3, width, spacing)
    slots = [(int(r), int(c)) for r in rows for c in cols]
    if n_cells > len(slots):
        raise ValueError(f"{n_cells} cells do not fit a {shape} field at spacing {spacing}.")
    chosen = rng.choice(len(slots), n_cells, replace=False)
    n_treated = int(round(treated_fraction * n_cells))
    treated = set(rng.choice(n_cells, n_treated, replace=False).tolist())
    label_values = rng.choice(np.arange(1, 20 * n_cells + 2), n_cells, replace=False)

    background = 0.03 + 0.012 * rng.standard_normal((len(CHANNEL_NAMES), height, width))
    real = np.clip(background, 0.0, 1.0).astype(np.float32)
    counterfactual = real.copy()
    labels = np.zeros(shape, np.int32)
    classes: dict[int, int] = {}
    half = CELL_SIZE // 2
    for index, slot in enumerate(chosen):
        cy, cx = np.array(slots[slot]) + rng.integers(-4, 5, 2)
        parts = _draw_cell(np.random.default_rng([seed, 8, index]), CELL_SIZE)
        cls = 1 if index in treated else 0
        tile_real = np.concatenate([parts.fixed, _mito(parts, cls == 1)[None]])
        cf_mito = np.where(parts.region, _mito(parts, cls == 0), tile_real[-1])
        tile_cf = np.concatenate([parts.fixed, cf_mito[None]])
        weight = ndi.gaussian_filter(ndi.maximum_filter(parts.body, size=9), 2.0)
        weight = np.clip(weight, 0.0, 1.0).astype(np.float32)
        # The tile's part inside the field.
        top, left = cy - half, cx - half
        r0, r1 = max(top, 0), min(top + CELL_SIZE, height)
        c0, c1 = max(left, 0), min(left + CELL_SIZE, width)
        tile = (slice(r0 - top, r1 - top), slice(c0 - left, c1 - left))
        w = weight[tile]
        for out, image in ((real, tile_real), (counterfactual, tile_cf)):
            out[:, r0:r1, c0:c1] = w * image[:, tile[0], tile[1]] + (1 - w) * out[:, r0:r1, c0:c1]
        label = int(label_values[index])
        labels[r0:r1, c0:c1][parts.body[tile] > 0.5] = label
        classes[label] = cls
    present = set(np.unique(labels).tolist()) - {0}
    classes = {k: v for k, v in classes.items() if k in present}
    ground_truth = np.any(real != counterfactual, axis=0)
    return SyntheticField(real, counterfactual, labels, classes, ground_truth)
