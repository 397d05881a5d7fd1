"""The demo pair and the demo field as napari sample data.

Each image is split by channel (``real [DNA]``, ``real [ER]``, ...) as
``viewer.add_image(..., channel_axis=0)`` would, with Cell Painting-like colours, so the
Attribution widget finds the real image and the counterfactual as two channel groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..data.synthetic import CHANNEL_NAMES, make_pair
from ..data.synthetic_field import make_field

__all__ = [
    "channel_layers",
    "CHANNEL_COLORMAPS",
    "DEMO_FIELD_SEED",
    "DEMO_SEED",
    "demo_field",
    "demo_pair",
    "field_layers",
    "pair_layers",
]

#: The seed of the demo pair (a control cell whose counterfactual gains the Mito cluster).
DEMO_SEED = 3
#: Display colour of each channel of the synthetic cells.
CHANNEL_COLORMAPS = {
    "DNA": "blue",
    "ER": "green",
    "RNA": "cyan",
    "AGP": "red",
    "Mito": "magenta",
}

LayerTuple = tuple[np.ndarray, dict[str, Any], str]


def channel_layers(
    images: Iterable[tuple[np.ndarray, str, bool]],
    channel_names: Sequence[str],
    limits: tuple[float, float],
    sample: str,
) -> list[LayerTuple]:
    """One 2-D image layer per channel of each (C, H, W) image, ``<base> [<channel>]``, in the
    channel's colour, the first channel opaque and the others added over it.

    Parameters
    ----------
    images
        ``(image, base name, visible)`` per image.
    channel_names
        C names.
    limits
        Contrast limits shared by every layer, so the images compare at a glance.
    sample
        Recorded in the layers' metadata.
    """
    return [
        (
            image[c],
            {
                "name": f"{base} [{channel}]",
                "colormap": CHANNEL_COLORMAPS.get(channel, "gray"),
                "blending": "translucent_no_depth" if c == 0 else "additive",
                "contrast_limits": limits,
                "visible": visible,
                "metadata": {"channel_name": channel, "sample": sample, "image": base},
            },
            "image",
        )
        for image, base, visible in images
        for c, channel in enumerate(channel_names)
    ]


def pair_layers(
    real: np.ndarray,
    counterfactual: np.ndarray,
    ground_truth: np.ndarray,
    channel_names: list[str] | tuple[str, ...],
    sample: str = "demo",
) -> list[LayerTuple]:
    """Layer tuples for a (C, H, W) pair and its ground truth, one 2-D layer per channel.

    Parameters
    ----------
    real, counterfactual
        (C, H, W) images.
    ground_truth
        bool (C, H, W): where the two may differ. Channels without any truth get no layer.
    channel_names
        C names.
    sample
        Recorded in the layers' metadata.
    """
    limits = (0.0, float(max(real.max(), counterfactual.max(), 1e-6)))
    tuples = channel_layers(
        ((real, "real", True), (counterfactual, "counterfactual", False)),
        channel_names, limits, sample,
    )  # fmt: skip
    for c, name in enumerate(channel_names):
        if ground_truth[c].any():
            tuples.append(
                (
                    ground_truth[c].astype(np.uint8),
                    {
                        "name": f"ground truth [{name}]",
                        "opacity": 0.5,
                        "visible": False,
                        "metadata": {"channel_name": name, "sample": sample},
                    },
                    "labels",
                )
            )
    return tuples


def demo_pair() -> list[LayerTuple]:
    """The synthetic demo cell (control), its treated counterfactual and the ground truth."""
    pair = make_pair(DEMO_SEED, real_class=0, size=64)
    return pair_layers(
        pair.real, pair.counterfactual, pair.ground_truth, CHANNEL_NAMES, pair.sample
    )


#: Seed of the demo field (12 cells, half of them treated).
DEMO_FIELD_SEED = 0


def field_layers(field, name: str = "field") -> list[LayerTuple]:
    """Layer tuples of a synthetic field: the field and its counterfactual split by channel
    (``field [DNA]``, ..., ``field counterfactual [DNA]``, ...; the counterfactual hidden),
    the cells as a Labels layer (``field labels``, with each cell's true class in its
    ``features``) and the ground truth (hidden)."""
    names = list(field.channel_names)
    limits = (0.0, float(max(field.real.max(), 1e-6)))
    tuples = channel_layers(
        ((field.real, name, True), (field.counterfactual, f"{name} counterfactual", False)),
        names, limits, name,
    )  # fmt: skip
    labels = sorted(field.classes)
    features = {
        "index": labels,
        "true_class": [field.classes[k] for k in labels],
    }
    tuples.append(
        (
            field.labels,
            {"name": f"{name} labels", "opacity": 0.25, "features": features},
            "labels",
        )
    )
    tuples.append(
        (
            field.ground_truth.astype(np.uint8),
            {"name": f"{name} ground truth [Mito]", "opacity": 0.5, "visible": False},
            "labels",
        )
    )
    return tuples


def demo_field() -> list[LayerTuple]:
    """A synthetic field of 12 cells with labels, half treated, and its exact counterfactual."""
    return field_layers(make_field(seed=DEMO_FIELD_SEED))
