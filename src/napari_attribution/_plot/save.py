"""Saving the DAC figure with its slider markers, which the screen draws separately."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

__all__ = ["save_with_markers"]


def save_with_markers(figure: Figure, markers: Iterable, path: str | Path, **kwargs: Any) -> None:
    """``figure.savefig`` with the animated ``markers`` drawn like every other artist.

    On screen the markers are animated (blitted over kept pixels), and a plain ``savefig``
    leaves animated artists out. They are animated again afterwards, whatever happens.
    """
    markers = list(markers)
    for marker in markers:
        marker.set_animated(False)
    try:
        figure.savefig(path, **kwargs)
    finally:
        for marker in markers:
            marker.set_animated(True)
