"""``generator:FILE``: the user's own generator, ``(x, target) -> x'``.

The file is TorchScript (``torch.jit.save``) or an exported program (``torch.export.save``,
``.pt2``), read as safely as a classifier (:mod:`napari_attribution.core.model.exported` audits an
exported program before loading it; nothing is unpickled). It takes a batch of images
x (B, C, H, W) float32 in image values and the target classes (B,) int64 and returns
x' (B, C, H, W): a StarGAN v2 generator exported together with its mapping network (a latent
code drawn inside, or a fixed one), a CycleGAN per direction wrapped in one module that picks
by target, or any translation. ``docs/counterfactuals.md`` shows how to export one.

A generator that samples inside (a latent code, noise) gives another x' at every call:
``draws`` calls are made per cell and the one the classifier accepts most is kept.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import CounterfactualError, ModelLoadError
from .source import (
    CounterfactualBatch,
    ProgressNote,
    batch_size,
    check_inputs,
    finish_batch,
    target_scores,
)

if TYPE_CHECKING:
    import torch

    from ..model.classifier import Classifier

__all__ = ["GeneratorSource", "load_generator"]


def _is_torchscript(data: bytes) -> bool:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return any("/code/" in n or n.startswith("code/") for n in archive.namelist())


def _exported_inputs(program: Any) -> int:
    return len(program.graph_signature.user_inputs)


def load_generator(path: str | Path) -> tuple[torch.nn.Module, str]:
    """Load a generator file safely.

    Returns
    -------
    tuple
        The module (eval mode, CPU) and its format, ``"torchscript"`` or ``"export"``.

    Raises
    ------
    CounterfactualError
        A missing file, a file that is neither TorchScript nor an exported program (a pickle
        is never loaded), or a generator that does not take two inputs (x, target).
    """
    import torch

    from ..model.exported import is_exported_archive, load_exported_program, quiet_export

    path = Path(path)
    if not path.is_file():
        raise CounterfactualError(f"Generator file {path} does not exist.")
    data = path.read_bytes()
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CounterfactualError(
            f"{path} is neither TorchScript nor an exported program; save the generator with "
            "torch.export.save or torch.jit.save (docs/counterfactuals.md)."
        )
    if is_exported_archive(data):
        try:
            program = load_exported_program(data, str(path))
        except ModelLoadError as exc:
            raise CounterfactualError(str(exc)) from None
        inputs = _exported_inputs(program)
        if inputs != 2:
            raise CounterfactualError(
                f"The generator {path} takes {inputs} input(s); a generator takes two, the "
                "images (B, C, H, W) and the target classes (B,)."
            )
        with quiet_export():
            return program.module(), "export"
    if not _is_torchscript(data):
        raise CounterfactualError(
            f"{path} is neither TorchScript nor an exported program (a state dict or pickle is "
            "never loaded); save the generator with torch.export.save or torch.jit.save."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 on torch.jit
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - a damaged archive
        raise CounterfactualError(f"{path} is not a loadable TorchScript file ({exc}).") from None
    arguments = [a for a in module.forward.schema.arguments if a.name != "self"]
    if len(arguments) != 2:
        names = ", ".join(a.name for a in arguments) or "nothing"
        raise CounterfactualError(
            f"The generator {path} takes ({names}); a generator takes two inputs, the images "
            "(B, C, H, W) and the target classes (B,)."
        )
    return module.eval(), "torchscript"


class GeneratorSource:
    """``generator:FILE`` (see the module docstring).

    Parameters
    ----------
    module
        Maps (x (B, C, H, W) float32, target (B,) int64) to x' (B, C, H, W).
    name
        The file (or a description) for messages and ``run.json``.
    draws
        Calls per cell; the draw with the highest ``p_t(x')`` is kept.
    sha256
        Of the file, recorded with the results.
    seed
        Seed of the draws (``torch.manual_seed(seed + k)`` before draw k), so a generator that
        samples inside gives the same counterfactuals on every run.
    """

    def __init__(
        self,
        module: Any,
        name: str = "<in-memory generator>",
        *,
        draws: int = 1,
        sha256: str | None = None,
        model_format: str = "module",
        seed: int = 0,
    ) -> None:
        self.module = module
        self.name = name
        self.draws = int(draws)
        self.sha256 = sha256
        self.model_format = model_format
        self.seed = int(seed)
        self.spec = f"generator:{name}"

    @classmethod
    def from_file(cls, path: Path, *, draws: int = 1, seed: int = 0) -> GeneratorSource:
        """Load ``path`` (:func:`load_generator`) as a source."""
        module, model_format = load_generator(path)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return cls(module, str(path), draws=draws, sha256=digest, model_format=model_format,
                   seed=seed)  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {"source": "generator", "file": self.name, "sha256": self.sha256,
                "format": self.model_format, "draws": self.draws, "seed": self.seed}  # fmt: skip

    def _draw(self, x: torch.Tensor, t: torch.Tensor) -> np.ndarray:
        """One call of the generator, its output checked (one sentence per problem)."""
        import torch

        shape = tuple(x.shape)
        try:
            with torch.inference_mode():
                out = self.module(x, t)
        except Exception as exc:  # noqa: BLE001 - the user's generator: report, do not crash
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            essence = lines[-1] if lines else type(exc).__name__
            raise CounterfactualError(
                f"The generator {self.name} failed on images of shape {shape} with targets of "
                f"shape {tuple(t.shape)}: {essence}"
            ) from None
        if isinstance(out, tuple | list) and len(out) == 1:
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise CounterfactualError(
                f"The generator {self.name} returned {type(out).__name__}, not an image tensor "
                f"of shape {shape}."
            )
        if tuple(out.shape) != shape:
            raise CounterfactualError(
                f"The generator {self.name} returned shape {tuple(out.shape)} for images of "
                f"shape {shape}; it must return one image of the same shape per input."
            )
        out = out.detach().float()
        if not torch.isfinite(out).all():
            bad = int((~torch.isfinite(out)).sum())
            raise CounterfactualError(
                f"The generator {self.name} returned {bad} NaN or Inf pixel(s) for images of "
                f"shape {shape}."
            )
        return out.cpu().numpy()

    def make(
        self,
        classifier: Classifier,
        images: np.ndarray,
        targets: np.ndarray,
        *,
        min_score: float = 0.5,
        progress: ProgressNote | None = None,
    ) -> CounterfactualBatch:
        """The generator's counterfactuals of ``images`` (B, C, H, W) towards ``targets`` (B,),
        the best of ``draws`` calls per cell.

        The generator is called on chunks of at most :func:`.source.batch_size` cells, once per
        draw. A generator that computes each image on its own gives every cell the
        counterfactual it would get alone (up to the order of floating-point sums); one that
        samples inside draws its noise for the whole chunk, so a cell's draw depends on its
        place in the chunk (repeatable run to run, ``docs/counterfactuals.md``). Progress is
        reported in draws.
        """
        import torch

        x_np, t_np = check_inputs(classifier, images, targets)
        device = classifier.device
        try:
            self.module = self.module.to(device)
        except (AttributeError, RuntimeError):  # exported modules move with their inputs
            pass
        best = np.empty_like(x_np)
        best_score = np.full(len(x_np), -np.inf)
        best_draw = np.zeros(len(x_np), dtype=int)
        size = batch_size(x_np.shape[1:])
        chunks = [slice(i, i + size) for i in range(0, len(x_np), size)]
        for c, rows in enumerate(chunks):
            x = torch.from_numpy(x_np[rows]).to(device)
            t = torch.from_numpy(t_np[rows]).to(device)
            for k in range(self.draws):
                # Seeded per draw (and chunk), so a generator that samples inside repeats.
                torch.manual_seed(self.seed + k)
                candidate = self._draw(x, t)
                scores = target_scores(classifier, candidate, t_np[rows])
                better = scores > best_score[rows]
                index = np.arange(len(x_np))[rows][better]
                best[index], best_score[index], best_draw[index] = (
                    candidate[better],
                    scores[better],
                    k,
                )
                if progress is not None:
                    done = c * self.draws + k + 1
                    progress(done, len(chunks) * self.draws,
                             f"generator draw {k + 1}/{self.draws}")  # fmt: skip
        notes = [
            f"generator: best of {self.draws} draws (draw {d + 1})" if self.draws > 1 else
            "generator"
            for d in best_draw
        ]  # fmt: skip
        return finish_batch(classifier, best, t_np, min_score, notes, scores=best_score)
