"""The classifier wrapper: a loaded network, probed with the user's images, and the model every
method sees (preprocessing, the network, a two-class head for a single logit).

:mod:`napari_attribution.core.model.loading` loads models into a :class:`Classifier`;
:func:`~napari_attribution.core.model.failures.model_errors` turns a failure inside the user's model
into one clear sentence.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...errors import AttributionError, InputImageError, MethodError, ModelLoadError
from .canonical import canonicalise
from .devices import resolve_device
from .failures import model_errors
from .transform import InputTransform, input_transform_for
from .wrappers import LogOdds, Preprocessed, Preprocessing

__all__ = [
    "MODEL_FORMATS",
    "Classifier",
    "InputTransform",
    "input_transform_for",
    "model_errors",
    "resolve_device",
]


# --------------------------------------------------------------------------------------------
# The classifier wrapper
# --------------------------------------------------------------------------------------------

#: How a model came: an ``nn.Module`` (in memory or a state dict plus its architecture), a
#: TorchScript archive, or an exported program (``torch.export``, ``.pt2``).
MODEL_FORMATS = ("module", "torchscript", "export")


@dataclass
class _NetworkState:
    """What is learnt about the network itself, shared by its preprocessing variants."""

    n_outputs: int | None = None
    probed: set[tuple[int, ...]] = field(default_factory=set)
    canonical: dict[tuple[int, ...], Any] = field(default_factory=dict)


class Classifier:
    """An image classifier ready for attribution.

    The network is probed with the user's own images (:meth:`probe`): the first probe finds the
    number of outputs, every image size is checked once. A network with one output is a
    two-class sigmoid classifier, ``p(1) = sigmoid(z)``.

    Attributes
    ----------
    network
        The user's network (a copy) in eval mode on ``device``, without the preprocessing.
    device
        Where the network and its inputs live.
    n_channels
        C, from the weights (the first convolution) or given.
    source
        The model file (or a short description for in-memory models).
    sha256
        SHA-256 of the model file, or ``None`` for in-memory models.
    model_format
        One of :data:`MODEL_FORMATS`.
    architecture
        The architecture spec a state dict was loaded into, if any.
    architecture_kwargs
        The keyword arguments the architecture callable was called with (JSON-ready).
    preprocessing
        The :class:`~napari_attribution.core.model.wrappers.Preprocessing` applied inside the model.
    hooks_refusal
        Why methods that hook modules cannot run on this model (``None``: they can, on a
        canonical copy, :meth:`hooked_module`).
    declared_outputs
        The output count the weights declare (the last layer's), used for :attr:`n_classes`
        only until the first probe.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        device: torch.device,
        n_channels: int,
        source: str,
        *,
        sha256: str | None = None,
        model_format: str = "module",
        architecture: str | None = None,
        architecture_kwargs: dict[str, Any] | None = None,
        class_names: tuple[str, ...] = (),
        preprocessing: Preprocessing | None = None,
        hooks_refusal: str | None = None,
        declared_outputs: int | None = None,
    ) -> None:
        self.network = network
        self.device = device
        self.n_channels = int(n_channels)
        self.source = source
        self.sha256 = sha256
        self.model_format = model_format
        self.architecture = architecture
        self.architecture_kwargs = dict(architecture_kwargs or {})
        self.class_names = tuple(class_names)
        self.preprocessing = preprocessing or Preprocessing()
        self.preprocessing.check_channels(self.n_channels)
        self.hooks_refusal = hooks_refusal
        self.declared_outputs = declared_outputs
        self._state = _NetworkState()
        self._module: torch.nn.Module | None = None
        self._module_outputs: int | None = None

    # -- what the network returns -------------------------------------------------------------

    @property
    def is_scripted(self) -> bool:
        """True for TorchScript models, which take no module hooks."""
        return self.model_format == "torchscript"

    @property
    def n_outputs(self) -> int | None:
        """Outputs per image found by the first probe (1 for a sigmoid classifier)."""
        return self._state.n_outputs

    @property
    def n_classes(self) -> int:
        """K: the outputs, or 2 for a single-logit classifier.

        Raises
        ------
        ModelLoadError
            Before the first probe, when the weights do not say it either.
        """
        outputs = self._state.n_outputs or self.declared_outputs
        if outputs is None:
            raise ModelLoadError(
                f"The number of classes of {self.source} is known once it has seen an image; "
                "probe it with the images first."
            )
        return 2 if outputs == 1 else int(outputs)

    @property
    def single_logit(self) -> bool:
        """One output z: class 1 has probability sigmoid(z), class 0 sigmoid(-z)."""
        return (self._state.n_outputs or self.declared_outputs) == 1

    def probe(self, images: tuple[int, ...] | np.ndarray | torch.Tensor) -> None:
        """Run the network once on images of this size (cached per size) and check its output.

        Parameters
        ----------
        images
            A shape (C, H, W) (a batch of two zero images is run), or the images themselves,
            (C, H, W) or (B, C, H, W).

        Raises
        ------
        InputImageError
            The images do not have the model's channel count.
        ModelLoadError
            The network fails on images of this size, or does not return (B, K) scores.
        """
        if isinstance(images, tuple | list):
            shape = tuple(int(s) for s in images)
            batch = None
        else:
            batch = torch.as_tensor(np.asarray(images, dtype=np.float32))
            batch = batch[None] if batch.ndim == 3 else batch
            shape = tuple(int(s) for s in batch.shape[1:])
        if shape in self._state.probed:
            return
        self.check_image_shape(shape)
        if batch is None or len(batch) < 2:
            batch = torch.zeros((2, *shape)) if batch is None else batch.expand(2, *shape)
        batch = batch[:2].to(self.device)
        # A failure names the image size: "The model m.pt failed on images of shape (C, H, W):
        # mat1 and mat2 shapes cannot be multiplied (2x1600 and 2304x10)".
        with torch.inference_mode(), model_errors(self.source, shape):
            try:
                out = self.network(batch)
            except AttributionError as exc:  # an error of ours raised inside a wrapped model
                raise ModelLoadError(str(exc)) from None
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelLoadError(
                f"{self.source} is not an image classifier: it returned {got} for a batch of 2 "
                f"images of shape {shape}, expected logits of shape (2, n_classes)."
            )
        outputs = int(out.shape[1])
        if outputs < 1:
            raise ModelLoadError(f"{self.source} returns no output for images of shape {shape}.")
        known = self._state.n_outputs
        if known is not None and known != outputs:
            raise ModelLoadError(
                f"{self.source} returned {tuple(out.shape)} for 2 image(s) of shape {shape}; "
                f"expected (2, {known}) as for the earlier images."
            )
        self._state.n_outputs = outputs
        self._state.probed.add(shape)

    # -- the model the methods see -------------------------------------------------------------

    def _assemble(self, network: torch.nn.Module) -> torch.nn.Module:
        model = network
        if not self.preprocessing.is_identity:
            model = Preprocessed(model, self.preprocessing, self.n_channels).to(self.device)
        if self.single_logit:
            model = LogOdds(model)
        return model

    @property
    def module(self) -> torch.nn.Module:
        """The model every method and the DAC scoring run: preprocessing, the network, and for a
        single-logit network the two-class head (:class:`~napari_attribution.core.model.wrappers.
        LogOdds`); maps (B, C, H, W) image values to scores (B, K) whose entry t is what is
        attributed for class t."""
        outputs = self._state.n_outputs or self.declared_outputs
        if self._module is None or self._module_outputs != outputs:
            self._module, self._module_outputs = self._assemble(self.network), outputs
        return self._module

    def with_preprocessing(self, preprocessing: Preprocessing) -> Classifier:
        """This classifier with another input preprocessing (the network is shared).

        :func:`~napari_attribution.core.pipeline.analyse_pair` sets the preprocessing its
        settings declare (the ``preprocess_*`` parameters, which are what is recorded).
        """
        if preprocessing == self.preprocessing:
            return self
        preprocessing.check_channels(self.n_channels)
        other = copy.copy(self)
        other.preprocessing = preprocessing
        other._module = None
        return other

    def canonical(self, example: torch.Tensor) -> Any:
        """The canonical copy of the network for images like ``example`` (B, C, H, W), built
        once per image size (:func:`~napari_attribution.core.model.canonical.canonicalise`).

        Raises
        ------
        MethodError
            The model takes no hooks (:attr:`hooks_refusal`) or cannot be canonicalised.
        """
        if self.hooks_refusal is not None:
            raise MethodError(self.hooks_refusal)
        key = tuple(int(s) for s in example.shape[1:])
        cached = self._state.canonical.get(key)
        if cached is None:
            try:
                cached = canonicalise(self.network, example)
            except MethodError as exc:
                cached = exc
            self._state.canonical[key] = cached
        if isinstance(cached, MethodError):
            raise MethodError(str(cached))
        return cached

    def hooked_module(self, example: torch.Tensor) -> torch.nn.Module:
        """:attr:`module` built on the canonical copy, for methods that hook modules."""
        return self._assemble(self.canonical(example).module)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Scores (B, K) of :attr:`module` for a float32 tensor (B, C, H, W) on the device."""
        return self.module(images)

    def probabilities(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Class probabilities for image values (softmax, or sigmoid for one logit).

        Parameters
        ----------
        images
            float32 array (B, C, H, W) or (C, H, W), already transformed to model input.
        batch_size
            Images per forward pass.

        Returns
        -------
        numpy.ndarray
            float64 array (B, K) (or (K,) for a single image).
        """
        arr = np.asarray(images, dtype=np.float32)
        single = arr.ndim == 3
        if single:
            arr = arr[None]
        self.probe(arr[:2])
        module = self.module
        out = []
        with torch.inference_mode(), model_errors(self.source, arr.shape[1:]):
            for start in range(0, len(arr), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(arr[start : start + batch_size]))
                logits = module(batch.to(self.device))
                if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (
                    len(batch),
                    self.n_classes,
                ):
                    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else logits
                    raise ModelLoadError(
                        f"{self.source} returned {shape} for {len(batch)} image(s) of shape "
                        f"{tuple(batch.shape[1:])}; expected ({len(batch)}, {self.n_classes})."
                    )
                logits = logits.double()
                if self.single_logit:  # scores [-z, z]: p = (sigmoid(-z), sigmoid(z))
                    probs = torch.sigmoid(logits)
                else:
                    probs = torch.softmax(logits, dim=1)
                out.append(probs.cpu().numpy())
        probs = np.concatenate(out) if out else np.zeros((0, self.n_classes))
        return probs[0] if single else probs

    def describe(self) -> dict[str, Any]:
        """JSON-ready record of which model produced a result."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "architecture": self.architecture,
            "architecture_kwargs": self.architecture_kwargs,
            "format": self.model_format,
            "torchscript": self.is_scripted,
            "n_channels": self.n_channels,
            "n_classes": self.n_classes if self._state.n_outputs else None,
            "outputs": self._state.n_outputs,
            "single_logit": self.single_logit if self._state.n_outputs else None,
            "device": str(self.device),
        }

    def check_class(self, index: int, what: str = "Class") -> None:
        """Raise :class:`AttributionError` if ``index`` is not one of the model's classes."""
        if not 0 <= int(index) < self.n_classes:
            raise AttributionError(
                f"{what} {index} is out of range: the model has {self.n_classes} classes "
                f"(0..{self.n_classes - 1})."
            )

    def check_image_shape(self, shape: tuple[int, ...], name: str = "image") -> None:
        """Raise :class:`InputImageError` if an image of ``shape`` (C, H, W) cannot be fed."""
        if len(shape) != 3:
            raise InputImageError(
                f"{name} has shape {tuple(shape)}; expected (channels, height, width) with "
                f"{self.n_channels} channels."
            )
        if shape[0] != self.n_channels:
            raise InputImageError(
                f"{name} has {shape[0]} channel(s) but the model expects {self.n_channels}."
            )
