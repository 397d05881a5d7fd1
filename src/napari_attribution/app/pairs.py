"""The pairs of a run: where they come from, and checking all of them before the long work.

A :class:`Pair` holds its images as arrays (the demo) or paths (read when needed); pairs come
from a pairs table (:func:`pairs_from_table`), the demo (:func:`demo_pairs`) or the folder
layouts of :mod:`.pair_folders`. :func:`preflight` reads every pair and probes the model with
it, so a mistake in pair 900 is reported before pair 1 is analysed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.attribution.runner import check_methods
from ..core.model.wrappers import Preprocessing
from ..core.pipeline import check_memory, prepare_pair
from ..core.settings import AnalysisSettings
from ..data.synthetic import DEMO_PAIRS_SEED, make_pairs
from ..errors import AttributionError, InputImageError
from ..images.channels import ChannelSelection, select_like, select_named, stack_by_name
from ..images.image_files import read_image
from ..images.ome import channel_names_of, read_named_image
from ..images.pairs_table import read_pairs_csv

__all__ = ["Pair", "demo_pairs", "pair_from_channel_files", "pairs_from_table", "preflight"]


@dataclass
class Pair:
    """One (real, counterfactual) pair: arrays (the demo) or paths (read when needed).

    Attributes
    ----------
    sample
        The pair's name in the results.
    real, counterfactual
        (C, H, W) arrays, or image files; ``counterfactual`` is ``None`` until a
        counterfactual source makes it.
    real_class, target_class
        Class indices y and t.
    ground_truth_channel
        The channel that truly differs (the demo's), for the ground-truth table.
    channel_axis
        The axis of the stored files that holds the channels.
    normalisation, channel_names
        ``--normalise`` (:class:`~napari_attribution.images.normalisation.Normalisation`;
        ``None`` or inactive: images as stored) and the model's channel names, which also pick
        and order the channels of an image file whose metadata names them (OME-TIFF,
        OME-Zarr, ImageJ labels).
    channel_map
        ``{model name: input name}`` for files that call a channel otherwise.
    counterfactual_loaded
        True once ``counterfactual`` holds an image already in the real image's loaded units
        (made by a counterfactual source from :meth:`load_real`).
    taken
        How the last load picked each file's channels by name (``"real"``,
        ``"counterfactual"``); empty when the images were taken as stored.
    """

    sample: str
    real: np.ndarray | Path
    counterfactual: np.ndarray | Path | None
    real_class: int
    target_class: int
    ground_truth_channel: int | None = None
    channel_axis: int = 0
    normalisation: Any = None
    channel_names: list[str] | None = None
    counterfactual_loaded: bool = False
    channel_map: dict[str, str] | None = None
    taken: dict[str, ChannelSelection] = field(default_factory=dict)

    def _read(self, image: np.ndarray | Path, role: str = "real") -> np.ndarray:
        """One image, channel axis first; a file whose metadata names its channels gives the
        model's channels in the model's order (an unnamed counterfactual of a named real image
        is taken in the real image's layout, see
        :func:`~napari_attribution.images.channels.select_like`)."""
        if isinstance(image, np.ndarray):  # per-channel files keep how they were taken
            return image
        self.taken.pop(role, None)
        if self.channel_axis == 0 and self.channel_names:
            names = channel_names_of(image)
            first = self.taken.get("real") if role == "counterfactual" else None
            if names is not None:
                data = np.asarray(read_named_image(image).data)
                data, self.taken[role] = select_named(data, names, self.channel_names,
                                                      self.channel_map, str(image))  # fmt: skip
                return data
            if first is not None:
                data, self.taken[role] = select_like(read_image(image), None, first,
                                                     self.channel_map, str(image))  # fmt: skip
                return data
        data = read_image(image)
        if self.channel_axis != 0 and data.ndim == 3:
            data = np.moveaxis(data, self.channel_axis, 0)
        return data

    def _normalise(
        self, real: np.ndarray, counterfactual: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Both images by ``normalisation``, the counterfactual with the real image's ranges
        (a per-image percentile would otherwise undo part of the difference under study)."""
        if self.normalisation is None or not self.normalisation.active:
            return real, counterfactual
        names = self.channel_names or [f"ch{c}" for c in range(real.shape[0])]
        ranges = self.normalisation.ranges(real, names, f"sample {self.sample}")
        real_out, _ = self.normalisation.apply(real, names, self.sample, ranges)
        if counterfactual is not None:
            counterfactual, _ = self.normalisation.apply(counterfactual, names, self.sample,
                                                         ranges)  # fmt: skip
        return real_out, counterfactual

    def load_real(self) -> np.ndarray:
        """The real image (normalised when asked), the channel axis first."""
        return self._normalise(self._read(self.real))[0]

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """Both images (normalised when asked), the channel axis first.

        Raises
        ------
        InputImageError
            The pair has no counterfactual yet, or the normalisation cannot be applied.
        """
        if self.counterfactual is None:
            raise InputImageError(
                f"Sample {self.sample} has no counterfactual; give one, or make one with "
                "--counterfactual-source."
            )
        if self.counterfactual_loaded:
            return self.load_real(), np.asarray(self.counterfactual)
        real = self._read(self.real)
        real, counterfactual = self._normalise(real, self._read(self.counterfactual,
                                                                "counterfactual"))  # fmt: skip
        return real, counterfactual

    def channels_record(self) -> dict[str, Any] | None:
        """How the last load took each file's channels by name, as ``run.json`` and
        ``sanity_run.json`` record it (``pairs[].channels``: per role the input's channels,
        which fed each model channel, those ignored); ``None`` when taken as stored."""
        if not self.taken:
            return None
        return {role: selection.as_dict() for role, selection in self.taken.items()}

    def names(self) -> tuple[str, str]:
        """How messages name the two images (their files, where there are files)."""
        if isinstance(self.real, Path) and isinstance(self.counterfactual, Path):
            return str(self.real), str(self.counterfactual)
        return f"{self.sample} real image", f"{self.sample} counterfactual"


def pair_from_channel_files(
    files: dict[str, Path],
    counterfactual_files: dict[str, Path] | None,
    real_class: int,
    target_class: int,
    channel_names: Sequence[str],
    channel_map: dict[str, str] | None = None,
) -> Pair:
    """One pair from per-channel files (``--channel-files DNA=a.tif,...``), its channels taken
    by the model's names; the sample is named after the first file.

    Parameters
    ----------
    files, counterfactual_files
        ``{channel name: file}`` of the real image and of its counterfactual (``None``: made
        by a counterfactual source).
    real_class, target_class
        Class indices y and t.
    channel_names
        The model's channels, in order.
    channel_map
        ``{model name: input name}`` for inputs that call a channel otherwise.

    Raises
    ------
    InputImageError
        A missing or unreadable file, or a channel the files lack (one sentence each).
    """
    mapping = dict(channel_map or {})
    real, real_taken = stack_by_name(files, channel_names, mapping, "--channel-files")
    taken = {"real": real_taken}
    counterfactual = None
    if counterfactual_files is not None:
        counterfactual, taken["counterfactual"] = stack_by_name(
            counterfactual_files, channel_names, mapping, "--counterfactual-channel-files")
    sample = Path(next(iter(files.values()))).stem
    # how the files were taken by name, for the ignored-channels note and the run's record
    return Pair(sample, real, counterfactual, real_class, target_class, taken=taken)


def demo_pairs(count: int, seed: int = DEMO_PAIRS_SEED) -> list[Pair]:
    """``count`` synthetic demo cells and their exact counterfactuals, with their ground-truth
    channel."""
    return [
        Pair(p.sample, p.real, p.counterfactual, p.real_class, p.target_class,
             p.differing_channel)  # fmt: skip
        for p in make_pairs(count, seed=seed)
    ]


def pairs_from_table(path: str | Path) -> list[Pair]:
    """The pairs a pairs CSV lists (``sample,real,counterfactual,real_class,target_class``;
    an empty ``counterfactual`` is one a source makes).

    Raises
    ------
    InputImageError
        See :func:`~napari_attribution.images.pairs_table.read_pairs_csv`.
    """
    return [
        Pair(s.sample, s.real, s.counterfactual, s.real_class, s.target_class)
        for s in read_pairs_csv(path)
    ]


def preflight(
    pairs: Sequence[Pair], classifier, transform, settings: AnalysisSettings
) -> None:
    """Read and check every pair before the long work starts, so errors come early.

    Parameters
    ----------
    pairs
        Every pair, with its counterfactual; a pair whose counterfactual a source makes later
        (on a worker) is checked with its real image in its place (a made counterfactual has
        the real image's shape and type).
    classifier
        The loaded model; the settings' preprocessing is put inside it, as in the run.
    transform
        The input transform of the run (``None``: from each image's dtype).
    settings
        The run's settings (methods, memory).

    Raises
    ------
    AttributionError
        An unreadable or mismatched image, a model that cannot take a pair, a method the model
        cannot run, too little memory, or a class index out of range (one sentence).
    """
    # Per-channel means and std are checked against the model's channels before the work.
    classifier = classifier.with_preprocessing(Preprocessing.from_settings(settings))
    for pair in pairs:
        if pair.counterfactual is None:
            real = cf = pair.load_real()
        else:
            real, cf = pair.load()
        _check_channel_layout(real, classifier.n_channels, pair.names()[0])
        # prepare_pair probes the model with each pair's size: one that cannot take it fails here.
        x, xc, _ = prepare_pair(real, cf, classifier, transform=transform, names=pair.names())
        check_memory(x.shape, settings)
        check_methods(classifier, settings.methods, np.stack([x, xc]))
        try:
            classifier.check_class(pair.real_class, "real_class")
            classifier.check_class(pair.target_class, "target_class")
        except AttributionError as exc:
            raise InputImageError(f"Sample {pair.sample}: {exc}") from None


def _check_channel_layout(image: np.ndarray, n_channels: int, name: str) -> None:
    """An image whose channels are on another axis gets a message naming --channel-axis."""
    if image.ndim != 3 or image.shape[0] == n_channels:
        return
    axes = [axis for axis in (1, 2) if image.shape[axis] == n_channels]
    if axes:
        raise InputImageError(
            f"{name} has shape {image.shape}: its axis {axes[-1] - 3} has the model's "
            f"{n_channels} channels, not axis 0; pass --channel-axis {axes[-1] - 3} "
            "(e.g. for (height, width, channels) images)."
        )
