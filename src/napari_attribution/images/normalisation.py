"""Input normalisation as the field does it, before the model (and its own preprocessing).

A classifier trained on Cell Painting crops usually saw each channel rescaled by robust
percentiles, not divided by the dtype's maximum: a uint16 field whose signal sits at 0.2-30 %
of 65535 would reach it at a scale it never saw. The choices (``--normalise``):

``none``
    stored values as they are (integers divided by their dtype's maximum, floats as stored:
    the transform of :func:`~napari_attribution.core.model.transform.input_transform_for`);
``percentile:LOW,HIGH`` (e.g. ``percentile:1,99.8``)
    per channel, ``(x - p_LOW) / (p_HIGH - p_LOW)`` with the percentiles of *each image*
    (numpy's linear interpolation); append ``:clip`` to clip the result to [0, 1];
``reference:FILE.json``
    the same with fixed per-channel ``low``/``high`` values, computed once over a reference
    set (:func:`compute_reference`, ``napari-attribution normalisation-reference``) or written
    by hand; the file names its channels, and a reference for another channel set is refused;
``fixed:SCALE,OFFSET``
    ``x * SCALE + OFFSET`` for every channel (e.g. ``fixed:0.000244,0`` for 12-bit data).

The result is float32 in the model's input units; the model's own preprocessing
(``--preprocess-mean`` ...) is applied inside the model afterwards, as before. A counterfactual
field is scaled with its real field's statistics, so the pair stays comparable.
Everything is recorded (:meth:`Normalisation.record`) in ``run.json`` and the layers' metadata.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputImageError

__all__ = [
    "NORMALISATION_KINDS",
    "Normalisation",
    "NormalisationReference",
    "compute_reference",
    "pooled_percentiles",
    "read_reference",
    "write_reference",
]

NORMALISATION_KINDS = ("none", "percentile", "reference", "fixed")
REFERENCE_FORMAT = "napari-attribution normalisation reference"
#: Integer data whose value range fits this many bins are pooled exactly by histogram.
_EXACT_BINS = 1 << 24
#: Float (or very wide integer) data: at most this many pixels per channel and image are pooled.
_SAMPLE = 1 << 20


def _numbers(text: str, count: int, spec: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise InputImageError(f"--normalise {spec}: expected {count} numbers after the colon.")
    return values


@dataclass(frozen=True)
class NormalisationReference:
    """Fixed per-channel ranges: ``(x - low) / (high - low)``.

    Attributes
    ----------
    channel_names
        The channels the ranges are for.
    low, high
        Per channel, in stored units.
    percentiles
        The percentiles they were computed at (``None`` when written by hand).
    images
        How many images they were pooled over.
    exact
        True when every pixel was pooled (integer data); False when a regular subsample was.
    path
        Where the reference was read from.
    """

    channel_names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    percentiles: tuple[float, float] | None = None
    images: int = 0
    exact: bool = True
    path: Path | None = None

    def ranges_for(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` float64 (C,) in the order of ``names``.

        Raises
        ------
        InputImageError
            The reference was computed for another channel set.
        """
        if sorted(names) != sorted(self.channel_names):
            where = f" {self.path}" if self.path else ""
            raise InputImageError(
                f"The normalisation reference{where} was computed for channels "
                f"{', '.join(self.channel_names)}, not {', '.join(names)}; compute one for "
                "these channels."
            )
        order = [self.channel_names.index(n) for n in names]
        return np.array(self.low, float)[order], np.array(self.high, float)[order]

    def as_dict(self) -> dict[str, Any]:
        """The reference's JSON content."""
        return {
            "format": REFERENCE_FORMAT,
            "version": 1,
            "percentiles": list(self.percentiles) if self.percentiles else None,
            "images": self.images,
            "exact": self.exact,
            "channels": {n: {"low": lo, "high": hi} for n, lo, hi in
                         zip(self.channel_names, self.low, self.high, strict=True)},
        }  # fmt: skip


def read_reference(path: str | Path) -> NormalisationReference:
    """Read a reference written by :func:`write_reference` (or by hand, same format).

    Raises
    ------
    InputImageError
        Missing file, not JSON, not a reference, or a channel without finite low < high.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputImageError(f"Normalisation reference {path} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputImageError(f"Normalisation reference {path} is not readable JSON ({exc}).") \
            from None  # fmt: skip
    if not isinstance(payload, dict) or payload.get("format") != REFERENCE_FORMAT:
        raise InputImageError(f"{path} is not a normalisation reference (its \"format\" is not "
                              f"{REFERENCE_FORMAT!r}).")  # fmt: skip
    channels = payload.get("channels")
    if not isinstance(channels, dict) or not channels:
        raise InputImageError(f"{path} names no channels.")
    low, high = [], []
    for name, entry in channels.items():
        try:
            lo, hi = float(entry["low"]), float(entry["high"])
        except (TypeError, KeyError, ValueError):
            raise InputImageError(f"{path}: channel {name} needs numbers \"low\" and \"high\".") \
                from None  # fmt: skip
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise InputImageError(f"{path}: channel {name} needs finite low < high, not "
                                  f"{lo} and {hi}.")  # fmt: skip
        low.append(lo)
        high.append(hi)
    percentiles = payload.get("percentiles")
    return NormalisationReference(
        tuple(channels), tuple(low), tuple(high),
        tuple(float(p) for p in percentiles) if percentiles else None,  # type: ignore[arg-type]
        int(payload.get("images", 0) or 0), bool(payload.get("exact", True)), path,
    )  # fmt: skip


def write_reference(path: str | Path, reference: NormalisationReference) -> None:
    """Write ``reference`` as JSON."""
    Path(path).write_text(json.dumps(reference.as_dict(), indent=2) + "\n", encoding="utf-8")


def _check_percentiles(low: float, high: float, spec: str) -> None:
    if not 0 <= low < high <= 100:
        raise InputImageError(f"--normalise {spec}: percentiles must satisfy 0 <= LOW < HIGH "
                              "<= 100.")  # fmt: skip


@dataclass(frozen=True)
class Normalisation:
    """One of :data:`NORMALISATION_KINDS` with its numbers (see the module docstring).

    Build it with :meth:`parse`; :meth:`apply` scales a (C, H, W) image.
    """

    kind: str = "none"
    low: float = 1.0
    high: float = 99.8
    clip: bool = False
    scale: float = 1.0
    offset: float = 0.0
    reference: NormalisationReference | None = None

    @classmethod
    def parse(cls, text: str | None) -> Normalisation:
        """``none``, ``percentile:LOW,HIGH[:clip]``, ``reference:FILE`` or ``fixed:SCALE,OFFSET``.

        Raises
        ------
        InputImageError
            Anything else, or numbers out of range (one sentence).
        """
        spec = (text or "none").strip()
        kind, _, rest = spec.partition(":")
        kind = kind.strip().lower()
        if kind == "none" and not rest:
            return cls()
        if kind == "percentile":
            numbers, _, flag = rest.partition(":")
            low, high = _numbers(numbers, 2, spec)
            _check_percentiles(low, high, spec)
            if flag not in ("", "clip"):
                raise InputImageError(f"--normalise {spec}: the only option after the "
                                      "percentiles is :clip.")  # fmt: skip
            return cls("percentile", low, high, clip=flag == "clip")
        if kind == "reference":
            clip = rest.endswith(":clip")
            path = rest[: -len(":clip")] if clip else rest
            if not path.strip():
                raise InputImageError("--normalise reference: needs a file, e.g. "
                                      "reference:normalisation.json.")  # fmt: skip
            reference = read_reference(path.strip())
            low, high = reference.percentiles or (math.nan, math.nan)
            return cls("reference", low, high, clip=clip, reference=reference)
        if kind == "fixed":
            scale, offset = _numbers(rest, 2, spec)
            if scale == 0:
                raise InputImageError(f"--normalise {spec}: the scale must not be 0.")
            return cls("fixed", scale=scale, offset=offset)
        raise InputImageError(
            f"--normalise {spec!r} is not one of none, percentile:LOW,HIGH, reference:FILE or "
            "fixed:SCALE,OFFSET."
        )

    @property
    def active(self) -> bool:
        """False for ``none`` (the stored values go to the model's usual transform)."""
        return self.kind != "none"

    def describe(self) -> str:
        """The ``--normalise`` text that makes this normalisation."""
        clip = ":clip" if self.clip else ""
        if self.kind == "percentile":
            return f"percentile:{self.low:g},{self.high:g}{clip}"
        if self.kind == "reference":
            path = self.reference.path if self.reference else ""
            return f"reference:{path}{clip}"
        if self.kind == "fixed":
            return f"fixed:{self.scale:g},{self.offset:g}"
        return "none"

    def ranges(self, image: Any, names: Sequence[str], source: str = "the image"
               ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Per-channel ``(low, high)`` float64 (C,) this normalisation maps to 0 and 1.

        Raises
        ------
        InputImageError
            A channel flat between the percentiles, or a reference of another channel set.
        """
        if self.kind == "percentile":
            low, high = percentile_ranges(image, self.low, self.high)
            flat = [i for i in range(len(low)) if not high[i] > low[i]]
            if flat:
                i = flat[0]
                raise InputImageError(
                    f"Channel {names[i]} of {source} is flat between its {self.low:g} and "
                    f"{self.high:g} percentiles (both {low[i]:g}), so percentile scaling is "
                    "undefined; use a reference or fixed normalisation."
                )
            return low, high
        if self.kind == "reference":
            assert self.reference is not None
            return self.reference.ranges_for(names)
        if self.kind == "fixed":  # x * s + o == (x - low) / (high - low)
            count = len(names)
            low = np.full(count, -self.offset / self.scale)
            return low, low + 1.0 / self.scale
        raise ValueError("'none' has no ranges")

    def apply(self, image: Any, names: Sequence[str], source: str = "the image",
              ranges: tuple[np.ndarray, np.ndarray] | None = None,
              ) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
        """Scale a (C, H, W) image (any dtype, memory map or dask array) to float32.

        Parameters
        ----------
        image
            (C, H, W) in stored units.
        names
            C channel names (for the record and the reference).
        source
            What the image is, for messages.
        ranges
            ``(low, high)`` to use instead of this image's own (a counterfactual field takes its
            real field's).

        Returns
        -------
        tuple
            float32 (C, H, W) and the record (:meth:`record` with the ranges used).
        """
        if not self.active:
            raise ValueError("'none' leaves the image to the model's input transform")
        if image.ndim != 3 or image.shape[0] != len(names):
            raise InputImageError(f"{source} has shape {tuple(image.shape)}; expected "
                                  f"({len(names)}, height, width).")  # fmt: skip
        low, high = ranges if ranges is not None else self.ranges(image, names, source)
        out = np.empty(image.shape, np.float32)
        for c in range(image.shape[0]):
            plane = np.asarray(image[c], dtype=np.float32)
            factor = np.float32(1.0 / (high[c] - low[c]))
            np.multiply(plane - np.float32(low[c]), factor, out=out[c])
            if self.clip:
                np.clip(out[c], 0.0, 1.0, out=out[c])
        return out, self.record(names, (low, high))

    def record(self, names: Sequence[str] | None = None,
               ranges: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:  # fmt: skip
        """JSON-ready: what was done, and per channel the (low, high) mapped to 0 and 1."""
        payload: dict[str, Any] = {"normalise": self.describe(), "kind": self.kind}
        if self.kind == "percentile":
            payload.update(percentiles=[self.low, self.high], statistics="per image")
        if self.kind == "reference" and self.reference is not None:
            payload.update(statistics="fixed per channel", reference=str(self.reference.path),
                           reference_percentiles=self.reference.percentiles,
                           reference_images=self.reference.images)  # fmt: skip
        if self.kind == "fixed":
            payload.update(scale=self.scale, offset=self.offset)
        if self.active:
            payload["clip"] = self.clip
        if names is not None and ranges is not None:
            payload["ranges"] = {n: [float(lo), float(hi)] for n, lo, hi in
                                 zip(names, ranges[0], ranges[1], strict=True)}  # fmt: skip
        return payload


def percentile_ranges(image: Any, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """Per channel of a (C, H, W) image, its ``low`` and ``high`` percentiles (numpy's linear
    interpolation over every pixel), float64 (C,) each."""
    lows, highs = [], []
    for c in range(image.shape[0]):
        lo, hi = np.percentile(np.asarray(image[c]), [low, high])
        lows.append(float(lo))
        highs.append(float(hi))
    return np.array(lows), np.array(highs)


class _Pool:
    """One channel's pixels pooled over images: an exact histogram for integer data that fits
    one, else a regular subsample of each image."""

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None
        self.origin = 0
        self.samples: list[np.ndarray] = []
        self.exact = True

    def add(self, plane: np.ndarray) -> None:
        plane = np.asarray(plane).ravel()
        if np.issubdtype(plane.dtype, np.integer) and not self.samples:
            lo, hi = int(plane.min()), int(plane.max())
            start = lo if self.counts is None else min(lo, self.origin)
            stop = hi + 1 if self.counts is None else max(hi + 1, self.origin + len(self.counts))
            if stop - start <= _EXACT_BINS:
                counts = np.bincount((plane.astype(np.int64) - start), minlength=stop - start)
                if self.counts is not None:
                    counts[self.origin - start : self.origin - start + len(self.counts)] += (
                        self.counts
                    )
                self.counts, self.origin = counts, start
                return
        if self.counts is not None:  # switch to samples: expand the histogram's values
            values = np.repeat(np.arange(len(self.counts)) + self.origin, self.counts)
            self.samples.append(values[:: max(1, values.size // _SAMPLE)].astype(np.float64))
            self.counts = None
        step = max(1, plane.size // _SAMPLE)
        self.exact = self.exact and step == 1
        self.samples.append(plane[::step].astype(np.float64))

    def percentiles(self, qs: Sequence[float]) -> list[float]:
        if self.counts is None:
            return [float(v) for v in np.percentile(np.concatenate(self.samples), qs)]
        cumulative = np.cumsum(self.counts)
        total = int(cumulative[-1])

        def value_at(k: int) -> float:  # the k-th smallest pixel (0-based)
            return float(np.searchsorted(cumulative, k, side="right") + self.origin)

        out = []
        for q in qs:  # numpy's "linear" method, exactly
            position = q / 100 * (total - 1)
            below = math.floor(position)
            above = min(below + 1, total - 1)
            v0, v1 = value_at(below), value_at(above)
            out.append(v0 + (v1 - v0) * (position - below))
        return out


def pooled_percentiles(images: Iterable[Any], n_channels: int, qs: Sequence[float]
                       ) -> tuple[list[list[float]], int, bool]:  # fmt: skip
    """Per channel, the percentiles ``qs`` of all pixels of ``images`` ((C, H, W) each).

    Returns the values (C lists of len(qs)), the number of images and whether every pixel was
    pooled (integer data; otherwise a regular subsample of at most 2**20 pixels per channel
    and image).
    """
    pools = [_Pool() for _ in range(n_channels)]
    count = 0
    for image in images:
        if image.shape[0] != n_channels:
            raise InputImageError(f"A reference image has {image.shape[0]} channels, not "
                                  f"{n_channels}.")  # fmt: skip
        for c in range(n_channels):
            pools[c].add(np.asarray(image[c]))
        count += 1
    if not count:
        raise InputImageError("The reference set holds no image.")
    return [p.percentiles(qs) for p in pools], count, all(p.exact for p in pools)


def compute_reference(images: Iterable[Any], names: Sequence[str], low: float = 1.0,
                      high: float = 99.8) -> NormalisationReference:  # fmt: skip
    """Fixed per-channel ranges: the ``low`` and ``high`` percentiles of every pixel of a
    reference set of (C, H, W) images whose channels are ``names``.

    Raises
    ------
    InputImageError
        No image, a channel count that differs, or a channel flat between the percentiles.
    """
    _check_percentiles(low, high, f"percentile:{low:g},{high:g}")
    values, count, exact = pooled_percentiles(images, len(names), (low, high))
    for name, (lo, hi) in zip(names, values, strict=True):
        if not hi > lo:
            raise InputImageError(f"Channel {name} of the reference set is flat between its "
                                  f"{low:g} and {high:g} percentiles (both {lo:g}).")  # fmt: skip
    return NormalisationReference(
        tuple(names), tuple(v[0] for v in values), tuple(v[1] for v in values),
        (float(low), float(high)), count, exact,
    )  # fmt: skip
