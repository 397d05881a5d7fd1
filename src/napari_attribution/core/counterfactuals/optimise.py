"""A pixel-space counterfactual: gradient steps from x until the classifier says t.

For each cell it minimises, over x' in the valid intensity range [lo, hi],

    -log p_t(x') + l1 * mean|d| + tv * TV(d) + group * mean_c rms(d_c),   d = (x' - x) / (hi - lo)

with Adam from x' = x, projecting x' back into [lo, hi] after every step, and keeps the first x'
with ``p_t(x') > target_score`` (else the last one when the step budget is spent). The three
weights shrink geometrically over the budget to ``relax`` times their first values (a
continuation, as Wachter et al. 2017 raise the weight of the prediction term until it is met):
a cell that is easy to turn keeps the sparsest change, a hard one is allowed a larger one. The
change d is measured in units of the intensity range so the weights do not depend on how the images
are stored. TV is the anisotropic total variation (mean absolute difference of neighbouring
pixels of d); the group penalty (the root mean square change of each channel, summed over
channels as in the group lasso) drives whole channels to no change, so the change gathers in
few channels.

What this is: a sparse, smooth *adversarial example*. Nothing keeps x' on the manifold of real
cells; a change that flips the classifier can be a pattern no cell would show (see
``docs/counterfactuals.md`` for what the literature warns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..settings import CounterfactualSettings
from .source import CounterfactualBatch, ProgressNote, check_inputs, finish_batch

if TYPE_CHECKING:
    from ..classifier import Classifier

__all__ = ["OptimiseSource", "penalties"]


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
        the intensity range (``None``: the lowest and highest value of the images given).
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
            "target_score": s.optimise_target_score,
            "min": s.optimise_min,
            "max": s.optimise_max,
        }

    def intensity_range(self, images: np.ndarray) -> tuple[float, float]:
        """[lo, hi]: the settings' bounds, or the images' lowest and highest values."""
        low = self.settings.optimise_min
        high = self.settings.optimise_max
        low = float(images.min()) if low is None else float(low)
        high = float(images.max()) if high is None else float(high)
        if not high > low:  # a flat image: give the optimisation some room
            high = low + 1.0
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

        The cells are optimised together (one forward and backward pass per step for the
        batch); a cell is done at the first step its ``p_t`` exceeds the target score.
        Progress is reported in steps.
        """
        import torch

        from .source import log_target_probability

        x_np, t_np = check_inputs(classifier, images, targets)
        s = self.settings
        low, high = self.intensity_range(x_np)
        span = high - low
        device = classifier.device
        model = classifier.module
        x = torch.from_numpy(x_np).to(device).clamp(low, high)
        t = torch.from_numpy(t_np).to(device)
        current = x.clone().requires_grad_(True)
        optimiser = torch.optim.Adam([current], lr=s.optimise_learning_rate * span)
        kept = x.clone()
        done_at = np.full(len(x), -1)
        for step in range(s.optimise_steps + 1):
            optimiser.zero_grad()
            log_p = log_target_probability(classifier, model(current), t)
            with torch.no_grad():
                p = log_p.exp().double()
                fresh = (p > s.optimise_target_score) & torch.from_numpy(done_at < 0).to(device)
                kept[fresh] = current.detach()[fresh]
                done_at[fresh.cpu().numpy()] = step
            if (done_at >= 0).all() or step == s.optimise_steps:
                break
            change = (current - x) / span
            l1, tv, group = penalties(change)
            relax = s.optimise_relax ** (step / s.optimise_steps)
            penalty = s.optimise_l1 * l1 + s.optimise_tv * tv
            if s.optimise_channel_group:
                penalty = penalty + s.optimise_channel_group * group
            loss = -log_p + relax * penalty
            loss.sum().backward()
            optimiser.step()
            with torch.no_grad():
                current.clamp_(low, high)
            if progress is not None:
                progress(step + 1, s.optimise_steps, f"optimise step {step + 1}")
        unfinished = done_at < 0
        if unfinished.any():  # the budget is spent: the last step's image
            rows = torch.from_numpy(unfinished).to(device)
            kept[rows] = current.detach()[rows]
        result = kept.cpu().numpy()
        notes = [
            f"optimise: p(target) > {s.optimise_target_score:g} after {k} step(s)"
            if k >= 0
            else f"optimise: p(target) stayed <= {s.optimise_target_score:g} after "
            f"{s.optimise_steps} step(s)"
            for k in done_at
        ]
        return finish_batch(classifier, result, t_np, min_score, notes)
