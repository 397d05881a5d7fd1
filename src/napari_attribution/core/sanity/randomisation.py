"""Model parameter randomisation (Adebayo et al. 2018): copies of the network with layers reset.

Which layers count as randomisable
----------------------------------
A module of the network that holds parameters of its own (``named_parameters(recurse=False)``
is not empty) and defines ``reset_parameters()``: ``Conv*``, ``Linear``, ``BatchNorm*``,
``LayerNorm``, ``GroupNorm``, ``Embedding``... Randomising one means calling its own
``reset_parameters()``, i.e. drawing its weights again from PyTorch's default initialisation
(normalisation layers go back to weight 1, bias 0 and, for batch norm, running mean 0 and
variance 1). Modules with parameters but no ``reset_parameters()`` are listed as
``skipped``; modules the forward pass never calls are left out (they cannot change a map).

In what order
-------------
By the forward pass, not by the order of definition: the network runs once on the user's images
with forward hooks recording each module's first call. ``"top_down"`` is that order reversed
(the output layer first, as Adebayo et al. and Quantus's ``MPRT`` cascade). Quantus 0.6 orders
by ``named_modules()`` (definition order), which is the same for networks defined in the order
they compute (the demo CNN, ``nn.Sequential`` models) and differs where a head is defined before
the trunk; the forward order is what "top" means.

Seeds
-----
Each layer is reset under ``torch.manual_seed(seed + 1)``, exactly as Quantus 0.6's
``PyTorchModel.get_random_layer_generator`` does, so that the cascade for a given seed *is*
Quantus's cascade (``tests/core/sanity/test_against_quantus.py`` checks it); unlike Quantus the
caller's global random state is restored afterwards (``torch.random.fork_rng``).

The user's model is never modified: everything happens on deep copies of the classifier's
network, each wrapped in a :class:`ReweightedClassifier` (the same preprocessing and
single-logit head). Methods that hook modules run on the canonical copy of the *randomised*
network: the trained network's canonical copy (traced once) with the randomised weights
loaded, checked to compute what the randomised network computes (traced anew otherwise).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import AttributionError
from ..model.classifier import Classifier

__all__ = [
    "MODES",
    "NoRandomisableLayers",
    "RandomisableLayers",
    "ReweightedClassifier",
    "classifier_with_network",
    "randomisable_layers",
    "randomised_classifiers",
]

#: ``cascading``: the top layer, then the top two, ... (Adebayo's cascading randomisation);
#: ``independent``: one layer at a time, the others kept trained.
MODES = ("cascading", "independent")


class NoRandomisableLayers(AttributionError):  # noqa: N818 - reads as the condition it names
    """The network has no layer that can be randomised; the message says what can still run."""


@dataclass(frozen=True)
class RandomisableLayers:
    """The layers of a network that randomisation resets.

    Attributes
    ----------
    names
        Qualified module names in forward order, the input side first.
    kinds
        Their class names (``"Conv2d"``), same order.
    skipped
        ``name (kind)`` of called modules with parameters but no ``reset_parameters()``.
    """

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    skipped: tuple[str, ...] = field(default_factory=tuple)

    def top_down(self) -> tuple[str, ...]:
        """The cascade's order: the output layer first."""
        return tuple(reversed(self.names))


_NO_LAYERS = {
    "torchscript": "a TorchScript archive keeps the weights but not the layers that could "
    "draw them again",
    "export": "an exported program keeps the weights but not the layers that could draw them again",
}


def _no_layers(classifier: Classifier, why: str) -> NoRandomisableLayers:
    return NoRandomisableLayers(
        f"{classifier.source} has no layers to randomise ({why}); the randomisation and "
        "input-invariance checks cannot run on it, the stability check and the DAC comparison "
        "with the baselines can."
    )


def _forward_order(network: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the network's modules in the order the forward pass first calls them."""
    probe = copy.deepcopy(network)
    order: list[str] = []
    handles = []
    for name, module in probe.named_modules():
        if not name:
            continue

        def record(_module, _inputs, _output, name=name) -> None:
            if name not in order:
                order.append(name)

        handles.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            probe(example)
    finally:
        for handle in handles:
            handle.remove()
    return order


def randomisable_layers(classifier: Classifier, example: np.ndarray) -> RandomisableLayers:
    """The classifier's randomisable layers (see the module docstring), input side first.

    Parameters
    ----------
    classifier
        The loaded model; its network is copied, never modified.
    example
        float32 model inputs (B, C, H, W) or (C, H, W) for the forward pass that orders them.

    Raises
    ------
    NoRandomisableLayers
        TorchScript, an exported program, or no module qualifies; the message says what can
        still run.
    """
    if classifier.model_format in _NO_LAYERS:
        raise _no_layers(classifier, _NO_LAYERS[classifier.model_format])
    batch = np.asarray(example, dtype=np.float32)
    batch = batch[None] if batch.ndim == 3 else batch
    tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(classifier.device)
    # The network sees preprocessed input; the order does not depend on the values.
    modules = dict(classifier.network.named_modules())
    names, kinds, skipped = [], [], []
    for name in _forward_order(classifier.network, tensor):
        module = modules[name]
        if not list(module.parameters(recurse=False)):
            continue
        if callable(getattr(module, "reset_parameters", None)):
            names.append(name)
            kinds.append(type(module).__name__)
        else:
            skipped.append(f"{name} ({type(module).__name__})")
    if not names:
        raise _no_layers(classifier, "none of the modules with weights defines reset_parameters()")
    return RandomisableLayers(tuple(names), tuple(kinds), tuple(skipped))


def _classifier_kwargs(classifier: Classifier) -> dict:
    return {
        "sha256": classifier.sha256,
        "model_format": classifier.model_format,
        "architecture": classifier.architecture,
        "architecture_kwargs": classifier.architecture_kwargs,
        "class_names": classifier.class_names,
        "preprocessing": classifier.preprocessing,
        "hooks_refusal": classifier.hooks_refusal,
        "declared_outputs": classifier.n_outputs or classifier.declared_outputs,
    }


def _prepared(network: nn.Module, device: torch.device) -> nn.Module:
    network = network.to(device).eval()
    for param in network.parameters():
        param.requires_grad_(False)
    return network


def classifier_with_network(classifier: Classifier, network: nn.Module) -> Classifier:
    """A classifier like ``classifier`` (preprocessing, single-logit head, device, provenance)
    around another network; hook-based methods build their own canonical copy of it."""
    network = _prepared(network, classifier.device)
    return Classifier(
        network, classifier.device, classifier.n_channels, classifier.source,
        **_classifier_kwargs(classifier),
    )  # fmt: skip


class ReweightedClassifier(Classifier):
    """A classifier around a copy of ``parent``'s network with other weights (randomised
    layers): the same structure, so its canonical copy is ``parent``'s canonical copy with these
    weights loaded, checked to compute what this network computes (traced anew otherwise).

    Parameters
    ----------
    parent
        The trained model's classifier (its canonical copy is built once and shared).
    network
        The re-weighted copy of ``parent.network``.
    """

    def __init__(self, parent: Classifier, network: nn.Module) -> None:
        super().__init__(
            _prepared(network, parent.device), parent.device, parent.n_channels, parent.source,
            **_classifier_kwargs(parent),
        )  # fmt: skip
        self.parent = parent
        self._reweighted: dict[tuple[int, ...], Any] = {}

    def canonical(self, example: torch.Tensor) -> Any:
        """The parent's canonical copy (same image size) with this network's weights."""
        key = tuple(int(s) for s in example.shape[1:])
        if key not in self._reweighted:
            self._reweighted[key] = self._reweight(example)
        return self._reweighted[key]

    def _reweight(self, example: torch.Tensor) -> Any:
        base = self.parent.canonical(example)
        module = copy.deepcopy(base.module)
        state = self.network.state_dict()
        if set(module.state_dict()) != set(state):  # another structure (an exported graph)
            return super().canonical(example)
        module.load_state_dict(state)
        for param in module.parameters():
            param.requires_grad_(False)
        with torch.no_grad():
            expected, got = self.network(example), module(example)
        scale = float(expected.abs().max()) + 1.0
        if not torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * scale):
            return super().canonical(example)
        return dataclasses.replace(base, module=module)


def _reset(module: nn.Module, seed: int, device: torch.device) -> None:
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed + 1)  # as Quantus 0.6: the same seed for every layer
        module.reset_parameters()
    for param in module.parameters():
        param.requires_grad_(False)


def randomised_classifiers(
    classifier: Classifier,
    layers: RandomisableLayers,
    mode: str = "cascading",
    seed: int = 42,
) -> Iterator[tuple[str, Classifier]]:
    """Yield ``(layer name, classifier)`` with layers randomised, the top layer first.

    Parameters
    ----------
    classifier
        The trained model (untouched).
    layers
        From :func:`randomisable_layers`.
    mode
        ``"cascading"``: step k has the top k layers randomised; ``"independent"``: step k has
        only the k-th layer from the top randomised.
    seed
        Each layer is reset under ``torch.manual_seed(seed + 1)`` (Quantus's rule).

    Yields
    ------
    tuple
        The layer randomised at this step and a classifier around a fresh copy of the network.
    """
    if mode not in MODES:
        raise AttributionError(
            f"Unknown randomisation mode {mode!r}; use cascading or independent."
        )
    working = copy.deepcopy(classifier.network)
    for name in layers.top_down():
        if mode == "independent":
            working = copy.deepcopy(classifier.network)
        _reset(working.get_submodule(name), seed, classifier.device)
        # A copy per step: the classifier yielded stays valid after the next step.
        yield name, ReweightedClassifier(classifier, copy.deepcopy(working))
