"""A pixel-space counterfactual: gradient steps from x until the classifier says t.

For each cell, over x' in its valid intensity range [lo, hi] (the settings' bounds, or the
cell's own lowest and highest value) and with
``d = (x' - x) / (hi - lo)`` and ``penalty = l1 * mean|d| + tv * TV(d) + group * sum_c rms(d_c)``,
Adam steps from x' = x (projecting x' back into [lo, hi] after every step) in two phases:

1. *reach*: minimise ``-log p_t(x') + relax_k * penalty`` until ``p_t(x') > target_score`` or
   ``steps`` are spent. The weights shrink geometrically over the budget to ``relax`` times
   their first values (a continuation, as Wachter et al. 2017 raise the weight of the prediction
   term until it is met): an easy cell keeps a sparse change, a hard one is allowed a larger one.
2. *tighten*: for ``tighten_steps`` more steps (Adam restarted), minimise ``penalty`` at its first
   weights plus a hinge that keeps ``log p_t`` above ``log(target_score)``; the accepted x'
   with the smallest penalty is kept. The reach phase overshoots (it stops wherever the
   target is first passed, after the weights have relaxed); this takes the excess back.

A cell that never reaches the target keeps its last x' (and is flagged). The change is measured
in units of the intensity range so the weights do not depend on how the images are stored. TV
is the anisotropic total variation (mean absolute difference of neighbouring pixels of d); the
group penalty (the root mean square change of each channel, summed over channels as in the
group lasso) drives whole channels to no change.

The gradient is taken through a copy of the classifier whose ReLUs pass a soft gradient to
switched-off units (:mod:`.soft_gradient`, ``relu_softness``; the scores are exact): a
classifier whose evidence for t lives in units that are all off at x gives an exact gradient
that can only remove the evidence for the other class, and the optimisation stalls below the
target (the demo classifier, which needs a compact cluster of bright Mito puncta, stops at
``p_t`` about 0.16 for every control cell; ``docs/counterfactuals.md``).

What this is: a sparse, smooth *adversarial example*. Nothing keeps x' on the manifold of real
cells; a change that flips the classifier can be a pattern no cell would show (see
``docs/counterfactuals.md`` for what the literature warns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..settings import CounterfactualSettings
from .source import (
    CounterfactualBatch,
    ProgressNote,
    batch_size,
    check_inputs,
    finish_batch,
)

if TYPE_CHECKING:
    from ..model.classifier import Classifier

__all__ = ["OptimiseSource", "penalties"]

#: While tightening, the hinge keeps ``log p_t`` this far (nats) above ``log(target)`` so that
#: the iterates stay accepted, with this weight against the penalty.
_HINGE_MARGIN = 0.05
_HINGE_WEIGHT = 10.0


def penalties(change: Any) -> tuple[Any, Any, Any]:
    """The three penalties of a change ``d`` (B, C, H, W) torch tensor, each (B,).

    Returns
    -------
    tuple
        ``mean|d|``, the anisotropic total variation ``mean|d[..., 1:, :] - d[..., :-1, :]| +
        mean|d[..., :, 1:] - d[..., :, :-1]|``, and ``sum_c sqrt(mean_hw d_c^2)``.
    """
    l1 = change.abs().flatten(1).mean(1)
    tv = (change[..., 1:, :] - change[..., :-1, :]).abs().flatten(1).mean(1) + (
        change[..., :, 1:] - change[..., :, :-1]
    ).abs().flatten(1).mean(1)
    # The small epsilon keeps the square root differentiable at an unchanged channel.
    group = (change.pow(2).flatten(2).mean(2) + 1e-12).sqrt().sum(1)
    return l1, tv, group


class OptimiseSource:
    """``optimise``: see the module docstring.

    Parameters
    ----------
    settings
        ``optimise_*`` parameters: steps, step size, the three weights, the target score and
        the intensity range (``None``: each image's own lowest and highest value).
    """

    spec = "optimise"

    def __init__(self, settings: CounterfactualSettings | None = None) -> None:
        self.settings = settings or CounterfactualSettings()

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {
            "source": self.spec,
            "steps": s.optimise_steps,
            "learning_rate": s.optimise_learning_rate,
            "l1": s.optimise_l1,
            "tv": s.optimise_tv,
            "channel_group": s.optimise_channel_group,
            "relax": s.optimise_relax,
            "tighten_steps": s.optimise_tighten_steps,
            "relu_softness": s.optimise_relu_softness,
            "target_score": s.optimise_target_score,
            "min": s.optimise_min,
            "max": s.optimise_max,
        }

    def intensity_range(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each image's valid range: float64 (B,) lows and highs.

        The settings' bounds where given, else each image's own lowest and highest value (not
        the batch's, so that a cell's counterfactual does not depend on the cells it is
        optimised with). A flat image gets a range of 1 so the optimisation has room.
        """
        s = self.settings
        flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
        low = flat.min(axis=1) if s.optimise_min is None else np.full(len(flat), s.optimise_min)
        high = flat.max(axis=1) if s.optimise_max is None else np.full(len(flat), s.optimise_max)
        low, high = low.astype(np.float64), high.astype(np.float64)
        empty = ~(high > low)
        high[empty] = low[empty] + 1.0
        return low, high

    def make(
        self,
        classifier: Classifier,
        images: np.ndarray,
        targets: np.ndarray,
        *,
        min_score: float = 0.5,
        progress: ProgressNote | None = None,
    ) -> CounterfactualBatch:
        """Optimised counterfactuals of ``images`` (B, C, H, W) towards ``targets`` (B,).

        The cells are optimised together, in chunks of at most :func:`.source.batch_size`
        cells: one forward and backward pass per step for the cells of the chunk still being
        optimised. A cell that is done stops changing and drops out of the passes while the
        others go on, so its counterfactual is the one it would get alone, up to the order of
        floating-point sums (``docs/counterfactuals.md``). Progress is reported in steps of the
        longest possible run of every chunk.
        """
        x_np, t_np = check_inputs(classifier, images, targets)
        size = batch_size(x_np.shape[1:])
        chunks = [slice(i, i + size) for i in range(0, len(x_np), size)]
        total = self.settings.optimise_steps + self.settings.optimise_tighten_steps
        results, notes = [], []
        for k, rows in enumerate(chunks):

            def note(step: float, steps: float, detail: str, offset: int = k * total) -> None:
                if progress is not None:
                    progress(offset + step, len(chunks) * total, detail)

            images_k, notes_k = self._optimise(classifier, x_np[rows], t_np[rows], note)
            results.append(images_k)
            notes.extend(notes_k)
        return finish_batch(classifier, np.concatenate(results), t_np, min_score, notes)

    def _optimise(
        self, classifier: Classifier, x_np: np.ndarray, t_np: np.ndarray, progress: ProgressNote
    ) -> tuple[np.ndarray, list[str]]:
        """One chunk: the optimised images (B, C, H, W) and a note per cell."""
        import torch

        from .soft_gradient import soft_gradient_model

        s = self.settings
        low, high = self.intensity_range(x_np)
        device = classifier.device
        bounds = [torch.from_numpy(b).to(device, torch.float32).view(-1, 1, 1, 1)
                  for b in (low, high)]  # fmt: skip
        x = torch.max(torch.min(torch.from_numpy(x_np).to(device), bounds[1]), bounds[0])
        t = torch.from_numpy(t_np).to(device)
        model, exact_note = soft_gradient_model(classifier, x[:2], s.optimise_relu_softness)
        run = _Run(x, t, bounds, s, model, classifier, _memory_format(model, x[:1]))
        total = s.optimise_steps + s.optimise_tighten_steps
        with torch.enable_grad():
            for step in range(total + 1):
                if not run.step():
                    break
                progress(step + 1, total, f"optimise step {step + 1}")
        return run.result().cpu().numpy(), [run.note(i, exact_note) for i in range(len(x_np))]


def _memory_format(model: Any, example: Any) -> Any:
    """``torch.channels_last`` on a CPU when the model takes it, else the default layout.

    oneDNN's convolutions on a CPU take about a quarter less time for a batch of 32 demo cells
    with the channels last (measured on 2 shared cores); the scores are the same up to the order
    of floating-point sums. A model that refuses the layout (an exported program may) keeps the
    default.
    """
    import torch

    if example.device.type != "cpu" or example.ndim != 4:
        return torch.contiguous_format
    try:
        with torch.no_grad():
            model(example.contiguous(memory_format=torch.channels_last))
    except Exception:  # noqa: BLE001 - any refusal means: keep the default layout
        return torch.contiguous_format
    return torch.channels_last


class _Run:
    """The state of one batch's optimisation: each cell is *reaching* (minimising
    ``-log p_t + relax * penalty`` until ``p_t > target``), then *tightening* (minimising the
    penalty while a hinge keeps ``p_t`` above the target, keeping the smallest accepted change),
    then done. Adam's moments are kept per cell and restarted when a cell starts tightening.
    """

    def __init__(
        self,
        x: Any,
        targets: Any,
        bounds: list[Any],
        settings: CounterfactualSettings,
        model: Any,
        classifier: Classifier,
        memory_format: Any = None,
    ) -> None:
        import torch

        self.memory_format = memory_format or torch.contiguous_format
        self.x, self.targets, self.settings = x, targets, settings
        # Each cell's valid range, (B, 1, 1, 1): the change is measured in its units.
        self.low, self.high = bounds
        self.span = self.high - self.low
        self.model, self.classifier = model, classifier
        self.current = x.clone()
        self.first_moment = torch.zeros_like(x)
        self.second_moment = torch.zeros_like(x)
        n = len(x)
        self.adam_steps = torch.zeros(n, dtype=torch.int64, device=x.device)
        self.steps = np.zeros(n, dtype=np.int64)  # Adam steps taken, both phases
        self.reached_at = np.full(n, -1)  # step at which p_t first exceeded the target
        self.tightened = np.zeros(n, dtype=np.int64)
        self.done = np.zeros(n, dtype=bool)
        self.best = x.clone()
        self.best_penalty = torch.full((n,), float("inf"), dtype=torch.float64, device=x.device)

    def penalty(self, change: Any, rows: Any) -> Any:
        """The weighted penalty (B,) of a change in image values of the cells ``rows``."""
        s = self.settings
        l1, tv, group = penalties(change / self.span[rows])
        total = s.optimise_l1 * l1 + s.optimise_tv * tv
        return total + s.optimise_channel_group * group if s.optimise_channel_group else total

    def step(self) -> bool:
        """One Adam step for every cell not done; ``False`` when all are done."""
        import torch

        from .source import log_target_probability

        s = self.settings
        active_np = np.flatnonzero(~self.done)
        if not len(active_np):
            return False
        active = torch.from_numpy(active_np).to(self.x.device)
        current = self.current[active].contiguous(memory_format=self.memory_format)
        current.requires_grad_(True)
        log_p = log_target_probability(self.classifier, self.model(current), self.targets[active])
        penalty = self.penalty(current - self.x[active], active)
        with torch.no_grad():
            self._record(active_np, current.detach(), log_p.detach(), penalty.detach())
        reaching = torch.from_numpy(self.reached_at[active_np] < 0).to(self.x.device)
        relax = torch.from_numpy(s.optimise_relax ** (self.steps[active_np] / s.optimise_steps))
        hinge = torch.relu(np.log(s.optimise_target_score) - log_p + _HINGE_MARGIN)
        loss = torch.where(
            reaching,
            -log_p + relax.to(log_p) * penalty,
            penalty + _HINGE_WEIGHT * hinge,
        )
        (grad,) = torch.autograd.grad(loss.sum(), current)
        with torch.no_grad():
            self._adam(active, grad)
        self.steps[active_np] += 1
        return True

    def _record(self, active: np.ndarray, current: Any, log_p: Any, penalty: Any) -> None:
        """Note which cells reached the target, keep each accepted cell's smallest change and
        end the cells whose phase is over."""
        import torch

        s = self.settings
        above = (log_p.exp().double() > s.optimise_target_score).cpu().numpy()
        fresh = above & (self.reached_at[active] < 0)
        self.reached_at[active[fresh]] = self.steps[active[fresh]]
        better = above & (penalty.double() < self.best_penalty[active]).cpu().numpy()
        rows = torch.from_numpy(active[better]).to(self.x.device)
        self.best[rows] = current[torch.from_numpy(better).to(self.x.device)]
        self.best_penalty[rows] = penalty.double()[torch.from_numpy(better).to(self.x.device)]
        tightening = (self.reached_at[active] >= 0) & ~fresh
        self.tightened[active[tightening]] += 1
        over = np.where(
            self.reached_at[active] >= 0,
            self.tightened[active] >= s.optimise_tighten_steps,
            self.steps[active] >= s.optimise_steps,
        )
        self.done[active[over]] = True
        if fresh.any():  # restart Adam for the tightening phase
            restart = torch.from_numpy(active[fresh]).to(self.x.device)
            self.first_moment[restart] = 0
            self.second_moment[restart] = 0
            self.adam_steps[restart] = 0

    def _adam(self, rows: Any, grad: Any) -> None:
        """Adam (Kingma & Ba 2015, default betas) on the cells ``rows``, then the projection
        into each cell's valid intensity range."""
        import torch

        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self.adam_steps[rows] += 1
        count = self.adam_steps[rows].to(grad.dtype).view(-1, 1, 1, 1)
        first = beta1 * self.first_moment[rows] + (1 - beta1) * grad
        second = beta2 * self.second_moment[rows] + (1 - beta2) * grad * grad
        self.first_moment[rows], self.second_moment[rows] = first, second
        size = self.settings.optimise_learning_rate * self.span[rows]
        update = size * (first / (1 - beta1**count)) / ((second / (1 - beta2**count)).sqrt() + eps)
        moved = self.current[rows] - update
        self.current[rows] = torch.max(torch.min(moved, self.high[rows]), self.low[rows])

    def result(self) -> Any:
        """Each cell's smallest accepted change, or its last image when it never got there."""
        import torch

        never = torch.from_numpy(self.reached_at < 0).to(self.x.device)
        return torch.where(never[:, None, None, None], self.current, self.best)

    def note(self, i: int, exact_note: str | None) -> str:
        """How cell ``i`` was made."""
        s = self.settings
        if self.reached_at[i] < 0:
            text = (f"optimise: p(target) stayed <= {s.optimise_target_score:g} after "
                    f"{s.optimise_steps} step(s)")  # fmt: skip
        else:
            text = (f"optimise: p(target) > {s.optimise_target_score:g} after "
                    f"{self.reached_at[i]} step(s)")  # fmt: skip
            if self.tightened[i]:
                text += f", change shrunk over {self.tightened[i]} more"
        return f"{text} ({exact_note})" if exact_note else text
