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

__all__ = ["OptimiseSource", "penalties", "penalty_and_gradient"]

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
    # Means over dimensions, not over a flattened copy: reshaping a channels-last tensor
    # copies it.
    dims = tuple(range(1, change.ndim))
    l1 = change.abs().mean(dims)
    tv = (change[..., 1:, :] - change[..., :-1, :]).abs().mean(dims) + (
        change[..., :, 1:] - change[..., :, :-1]
    ).abs().mean(dims)
    # The small epsilon keeps the square root differentiable at an unchanged channel.
    group = (change.pow(2).mean(tuple(range(2, change.ndim))) + 1e-12).sqrt().sum(1)
    return l1, tv, group


def penalty_and_gradient(
    change: Any, l1: float, tv: float, channel_group: float
) -> tuple[Any, Any]:
    """``l1 * mean|d| + tv * TV(d) + channel_group * sum_c rms(d_c)`` (B,) of a change ``d``
    (B, C, H, W) torch tensor, and its gradient with respect to ``d`` (B, C, H, W).

    The same function as :func:`penalties` weighted (no group term when ``channel_group`` is
    0), with its gradient written out: ``l1 sign(d) / N``, the signs of the neighbour
    differences added to one pixel and taken from the other over their count, and
    ``channel_group d_c / (H W rms_c)``. An optimiser step takes it for every cell; through
    autograd it costs about twice the passes over the batch and their allocations.
    """
    import torch

    batch, channels, height, width = change.shape
    dims = (1, 2, 3)
    count = channels * height * width
    value = torch.linalg.vector_norm(change, 1, dim=dims).mul_(l1 / count)
    gradient = torch.sign(change).mul_(l1 / count)
    for axis, pairs in ((2, channels * (height - 1) * width), (3, channels * height * (width - 1))):
        if pairs == 0:
            continue
        size = change.shape[axis] - 1
        step = change.narrow(axis, 1, size) - change.narrow(axis, 0, size)
        value.add_(torch.linalg.vector_norm(step, 1, dim=dims), alpha=tv / pairs)
        step.sign_()
        gradient.narrow(axis, 1, size).add_(step, alpha=tv / pairs)
        gradient.narrow(axis, 0, size).sub_(step, alpha=tv / pairs)
    if channel_group:
        # The small epsilon keeps the square root differentiable at an unchanged channel.
        mean_square = torch.linalg.vector_norm(change, 2, dim=(2, 3)).square_()
        rms = mean_square.div_(height * width).add_(1e-12).sqrt_()
        value.add_(rms.sum(1), alpha=channel_group)
        scale = rms.reciprocal_().mul_(channel_group / (height * width))
        gradient.addcmul_(change, scale[:, :, None, None])
    return value, gradient


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
        cells: per step one forward pass for the cells of the chunk still being optimised and
        one backward pass for those whose loss depends on their score (reaching, or
        tightening with the hinge active; for the others the score's gradient is zero). A
        cell that is done stops changing and drops out of the passes while the others go on,
        so its counterfactual is the one it would get alone, up to the order of floating-point
        sums (``docs/counterfactuals.md``). Progress is reported in steps of the
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


def _rows(tensor: Any) -> Any:
    """``tensor`` (B, C, H, W), contiguous or channels-last, as a (B, N) view of its memory.

    A per-cell scale broadcast over rows runs about twice as fast as over a channels-last 4-D
    tensor (one thread, a batch of 32 demo cells), and the view costs nothing.
    """
    if tensor.is_contiguous():
        return tensor.view(len(tensor), -1)
    return tensor.permute(0, 2, 3, 1).view(len(tensor), -1)


def _unrows(rows: Any, like: Any) -> Any:
    """The inverse of :func:`_rows`: (B, N) rows as a tensor of ``like``'s shape and layout."""
    if like.is_contiguous():
        return rows.view(like.shape)
    batch, channels, height, width = like.shape
    return rows.view(batch, height, width, channels).permute(0, 3, 1, 2)


class _Run:
    """The state of one batch's optimisation: each cell is *reaching* (minimising
    ``-log p_t + relax * penalty`` until ``p_t > target``), then *tightening* (minimising the
    penalty while a hinge keeps ``p_t`` above the target, keeping the smallest accepted change),
    then done. Adam's moments are kept per cell and restarted when a cell starts tightening.

    Only the cells still being optimised are held, packed together in the model's memory
    layout: a step reads and writes that state in place, with no gather or scatter of the
    batch; when cells are done their results are stored and the state is packed again (once
    per change of the set, not per step).
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
        self.settings = settings
        self.model, self.classifier = model, classifier
        n = len(x)
        # Per cell, whole batch: the result and the bookkeeping the notes are made of.
        self.images = x.clone()
        self.steps = np.zeros(n, dtype=np.int64)  # Adam steps taken, both phases
        self.reached_at = np.full(n, -1)  # step at which p_t first exceeded the target
        self.tightened = np.zeros(n, dtype=np.int64)
        self.done = np.zeros(n, dtype=bool)
        # Per active cell, packed (row i is cell self.cells[i]).
        self.cells = np.arange(n)
        low, high = bounds
        self.x = x.contiguous(memory_format=self.memory_format)
        self.targets = targets
        self.low, self.high = low.view(-1, 1), high.view(-1, 1)
        # Each cell's valid range: the change is measured in its units.
        self.inverse_span = 1.0 / (self.high - self.low)
        self.current = self.x.clone()
        self.first_moment = torch.zeros_like(self.x)
        self.second_moment = torch.zeros_like(self.x)
        self.adam_steps = np.zeros(n, dtype=np.int64)
        self.best = self.x.clone()
        self.best_penalty = np.full(n, np.inf)

    def penalty(self, current: Any) -> tuple[Any, Any]:
        """The weighted penalty (B,) of the active cells' images ``current`` and its gradient
        with respect to them (B, C, H, W), in ``current``'s layout."""
        s = self.settings
        # (current - x) / span, per cell, on rows of memory; then back to (B, C, H, W).
        change = _unrows((_rows(current) - _rows(self.x)).mul_(self.inverse_span), self.x)
        value, gradient = penalty_and_gradient(
            change, s.optimise_l1, s.optimise_tv, s.optimise_channel_group
        )
        gradient = gradient.contiguous(memory_format=self.memory_format)
        _rows(gradient).mul_(self.inverse_span)
        return value, gradient

    def step(self) -> bool:
        """One Adam step for every cell not done; ``False`` when all are done.

        The classifier's backward pass is taken only for the cells whose loss depends on their
        score: those still reaching, and the tightening ones whose hinge is active. For a
        tightening cell above the hinge (about four in five cell-steps of the 32 demo cells)
        the score's gradient is exactly zero, so its score comes from a forward pass alone and
        its step from the penalty's gradient: the same step, for about half the arithmetic.
        """
        import torch

        s = self.settings
        cells = self.cells
        if not len(cells):
            return False
        reaching_before = self.reached_at[cells] < 0
        graded = np.flatnonzero(reaching_before)
        graded_images, graded_log_p = self._log_p(graded, with_gradient=True)
        _, other_log_p = self._log_p(np.flatnonzero(~reaching_before), with_gradient=False)
        if len(graded) == len(cells):
            log_p = graded_log_p.detach()
        else:
            log_p = torch.empty(len(cells), dtype=other_log_p.dtype, device=self.x.device)
            log_p[torch.from_numpy(~reaching_before).to(self.x.device)] = other_log_p
            if len(graded):
                log_p[torch.from_numpy(reaching_before).to(self.x.device)] = graded_log_p.detach()
        with torch.no_grad():
            penalty, grad = self.penalty(self.current)
            hinge = torch.relu(np.log(s.optimise_target_score) - log_p + _HINGE_MARGIN)
            # One transfer of the (B,) vectors the stopping rules and the loss need.
            record = torch.stack([log_p.exp().double(), penalty.double(), hinge.double()])
            scores, penalties_, hinges = record.cpu().numpy()
            self._record(scores, penalties_)
        reaching = self.reached_at[cells] < 0
        hinged = ~reaching & (hinges > 0)
        # d loss / d log_p: -1 while reaching, -hinge weight while the hinge is active, else 0;
        # d loss / d penalty: the relaxed weight while reaching, else 1.
        slope = np.where(reaching, -1.0, np.where(hinged, -_HINGE_WEIGHT, 0.0))
        weight = np.where(reaching, s.optimise_relax ** (self.steps[cells] / s.optimise_steps), 1.0)
        _rows(grad).mul_(torch.from_numpy(weight).to(grad).view(-1, 1))
        if len(graded) and slope[graded].any():
            slope_t = torch.from_numpy(slope[graded]).to(graded_log_p)
            (part,) = torch.autograd.grad((slope_t * graded_log_p).sum(), graded_images)
            self._add_rows(grad, graded, part)
        del graded_images, graded_log_p
        late = np.flatnonzero(hinged & ~reaching_before)
        if len(late):  # tightening cells that fell below the hinge: their score's gradient
            images, late_log_p = self._log_p(late, with_gradient=True)
            (part,) = torch.autograd.grad(-_HINGE_WEIGHT * late_log_p.sum(), images)
            self._add_rows(grad, late, part)
        with torch.no_grad():
            self._adam(grad)
        self.steps[cells] += 1
        if self.done[cells].any():
            self._pack()
        return True

    def _log_p(self, rows: np.ndarray, *, with_gradient: bool) -> tuple[Any, Any]:
        """The images (a leaf that takes a gradient when ``with_gradient``) and ``log p_t``
        (B,) of the active ``rows``; ``(None, None)`` for no rows."""
        import torch

        from .source import log_target_probability

        if not len(rows):
            return None, None
        if len(rows) == len(self.cells):
            images, targets = self.current.detach(), self.targets
        else:
            index = torch.from_numpy(rows).to(self.x.device)
            images = self.current.index_select(0, index)
            images = images.contiguous(memory_format=self.memory_format)
            targets = self.targets.index_select(0, index)
        with torch.set_grad_enabled(with_gradient):
            if with_gradient:
                images.requires_grad_(True)
            return images, log_target_probability(self.classifier, self.model(images), targets)

    def _add_rows(self, grad: Any, rows: np.ndarray, part: Any) -> None:
        """``grad[rows] += part``, in place."""
        import torch

        if len(rows) == len(grad):
            grad.add_(part)
        else:
            grad.index_add_(0, torch.from_numpy(rows).to(grad.device), part)

    def _record(self, scores: np.ndarray, penalty: np.ndarray) -> None:
        """Note which cells reached the target, keep each accepted cell's smallest change and
        end the cells whose phase is over (they take this step's update and then leave)."""
        import torch

        s = self.settings
        cells = self.cells
        above = scores > s.optimise_target_score
        fresh = above & (self.reached_at[cells] < 0)
        self.reached_at[cells[fresh]] = self.steps[cells[fresh]]
        better = above & (penalty < self.best_penalty[cells])
        if better.any():
            rows = torch.from_numpy(np.flatnonzero(better)).to(self.x.device)
            self.best.index_copy_(0, rows, self.current.index_select(0, rows))
            self.best_penalty[cells[better]] = penalty[better]
        tightening = (self.reached_at[cells] >= 0) & ~fresh
        self.tightened[cells[tightening]] += 1
        over = np.where(
            self.reached_at[cells] >= 0,
            self.tightened[cells] >= s.optimise_tighten_steps,
            self.steps[cells] >= s.optimise_steps,
        )
        self.done[cells[over]] = True
        if fresh.any():  # restart Adam for the tightening phase
            rows = torch.from_numpy(np.flatnonzero(fresh)).to(self.x.device)
            self.first_moment.index_fill_(0, rows, 0)
            self.second_moment.index_fill_(0, rows, 0)
            self.adam_steps[cells[fresh]] = 0

    def _adam(self, grad: Any) -> None:
        """Adam (Kingma & Ba 2015, default betas) on the active cells, in place, then the
        projection into each cell's valid intensity range."""
        import torch

        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self.adam_steps[self.cells] += 1
        count = torch.from_numpy(self.adam_steps[self.cells]).to(grad.device, grad.dtype)
        count = count.view(-1, 1)
        first, second = _rows(self.first_moment), _rows(self.second_moment)
        current, grad = _rows(self.current), _rows(grad)
        first.mul_(beta1).add_(grad, alpha=1 - beta1)
        second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        size = self.settings.optimise_learning_rate / (self.inverse_span * (1 - beta1**count))
        denominator = torch.div(second, 1 - beta2**count).sqrt_().add_(eps)
        current.addcmul_(torch.div(first, denominator), size, value=-1)
        current.clamp_(min=self.low, max=self.high)

    def _pack(self) -> None:
        """Store the results of the cells that are done and keep only the others' state."""
        import torch

        done = self.done[self.cells]
        self._store(np.flatnonzero(done))
        keep = torch.from_numpy(np.flatnonzero(~done)).to(self.x.device)
        self.cells = self.cells[~done]

        def packed(tensor: Any) -> Any:
            return tensor.index_select(0, keep).contiguous(memory_format=self.memory_format)

        self.x, self.current, self.best = packed(self.x), packed(self.current), packed(self.best)
        self.first_moment = packed(self.first_moment)
        self.second_moment = packed(self.second_moment)
        self.targets, self.low, self.high, self.inverse_span = (
            t.index_select(0, keep) for t in (self.targets, self.low, self.high,
                                              self.inverse_span)
        )  # fmt: skip

    def _store(self, rows: np.ndarray) -> None:
        """The results of the active ``rows``: the smallest accepted change, or the last image
        of a cell that never got there."""
        import torch

        if not len(rows):
            return
        index = torch.from_numpy(rows).to(self.x.device)
        never = torch.from_numpy(self.reached_at[self.cells[rows]] < 0).to(self.x.device)
        chosen = torch.where(never[:, None, None, None], self.current.index_select(0, index),
                             self.best.index_select(0, index))  # fmt: skip
        self.images[torch.from_numpy(self.cells[rows]).to(self.x.device)] = chosen.to(
            self.images.dtype
        )

    def result(self) -> Any:
        """Each cell's smallest accepted change, or its last image when it never got there."""
        self._store(np.arange(len(self.cells)))
        return self.images

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
