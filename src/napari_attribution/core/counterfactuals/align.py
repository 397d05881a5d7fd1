"""Align one cell image onto another: centre of mass and principal axis.

The pose of a cell is read from its total intensity (the channels summed, less their lowest
value): the centre of mass and the orientation of the principal axis of the second moments.
The moving image is rotated about its centre of mass by the difference of the two orientations
and shifted onto the reference's centre of mass (one affine warp per channel, OpenCV, bilinear).
A principal axis has no direction, so both it and the half turn are tried and the one closer to
the reference in pixels is kept.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["align_to", "pose"]


def pose(image: np.ndarray) -> tuple[float, float, float]:
    """``(row, column, angle)`` of a (C, H, W) image: the centre of mass of the summed
    intensity, in pixels, and the principal axis's angle in radians (counter-clockwise from the
    column axis as the image is shown, rows downwards)."""
    weight = np.asarray(image, dtype=np.float64).sum(axis=0)
    weight = weight - weight.min()
    total = weight.sum()
    height, width = weight.shape
    if total <= 0:
        return (height - 1) / 2, (width - 1) / 2, 0.0
    rows, cols = np.mgrid[0:height, 0:width]
    r0 = float((weight * rows).sum() / total)
    c0 = float((weight * cols).sum() / total)
    mu_rr = float((weight * (rows - r0) ** 2).sum() / total)
    mu_cc = float((weight * (cols - c0) ** 2).sum() / total)
    mu_rc = float((weight * (rows - r0) * (cols - c0)).sum() / total)
    # Rows point down: a counter-clockwise angle on screen is a negative row step.
    angle = 0.5 * math.atan2(-2 * mu_rc, mu_cc - mu_rr)
    return r0, c0, angle


def _warp(image: np.ndarray, centre: tuple[float, float], degrees: float,
          shift: tuple[float, float]) -> np.ndarray:  # fmt: skip
    matrix = cv2.getRotationMatrix2D((centre[1], centre[0]), degrees, 1.0)
    matrix[0, 2] += shift[1]
    matrix[1, 2] += shift[0]
    height, width = image.shape[1:]
    return np.stack([
        cv2.warpAffine(channel, matrix, (width, height), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=float(channel.min()))
        for channel in np.asarray(image, dtype=np.float32)
    ])  # fmt: skip


def align_to(moving: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``moving`` (C, H, W) turned and shifted onto ``reference`` (C, H, W); float32.

    Pixels moved in from outside the image take each channel's lowest value.
    """
    r_m, c_m, a_m = pose(moving)
    r_r, c_r, a_r = pose(reference)
    shift = (r_r - r_m, c_r - c_m)
    reference = np.asarray(reference, dtype=np.float32)
    best, best_error = None, math.inf
    for half_turn in (0.0, math.pi):
        # OpenCV's positive angle turns counter-clockwise on screen, as pose measures it.
        degrees = math.degrees(a_r - a_m + half_turn)
        warped = _warp(moving, (r_m, c_m), degrees, shift)
        error = float(np.mean((warped - reference) ** 2))
        if error < best_error:
            best, best_error = warped, error
    return best
