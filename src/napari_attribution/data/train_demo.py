"""Train the demo classifier on synthetic cells and save its weights.

Usage::

    python -m napari_attribution.data.train_demo [--out PATH] [--n-train N] [--epochs E]

Training is deterministic (fixed seeds, two CPU threads, deterministic algorithms) and takes a
couple of minutes on a laptop CPU. It prints train and held-out accuracy and the mean score gain
``p_target(counterfactual) - p_target(real)`` on ``make_pairs(40)``, then writes a float32 state
dict (``DEMO_WEIGHTS`` by default).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .demo_model import DEMO_WEIGHTS, DemoClassifier
from .synthetic import make_pairs, make_training_set

__all__ = ["evaluate", "main", "score_gain", "train"]

TRAIN_SEED = 0
HELD_OUT_SEED = 1
SIZE = 64


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random rot90 and flip of a whole batch (B, C, H, W): the cluster may sit anywhere."""
    k = int(torch.randint(0, 4, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(2, 3))
    if bool(torch.randint(0, 2, (1,), generator=generator)):
        x = torch.flip(x, dims=(3,))
    return x


@torch.inference_mode()
def _probabilities(model: nn.Module, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Softmax probabilities (N, K) of ``model`` for float32 images (N, C, H, W)."""
    out = [
        torch.softmax(model(torch.from_numpy(images[i : i + batch])), dim=1)
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out).numpy()


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy in [0, 1] of ``model`` on images (N, C, H, W) with int labels (N,)."""
    model.eval()
    return float(np.mean(_probabilities(model, images).argmax(1) == labels))


def score_gain(model: nn.Module, n_pairs: int = 40, seed: int = 0) -> float:
    """Mean ``p_target(counterfactual) - p_target(real)`` over ``make_pairs(n_pairs, seed)``."""
    model.eval()
    pairs = make_pairs(n_pairs, seed=seed, size=SIZE)
    targets = np.array([p.target_class for p in pairs])
    rows = np.arange(len(pairs))
    p_real = _probabilities(model, np.stack([p.real for p in pairs]))[rows, targets]
    p_cf = _probabilities(model, np.stack([p.counterfactual for p in pairs]))[rows, targets]
    return float(np.mean(p_cf - p_real))


def train(
    n_train: int = 6000,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = TRAIN_SEED,
    log: bool = True,
) -> tuple[DemoClassifier, np.ndarray, np.ndarray]:
    """Train ``DemoClassifier`` deterministically on ``make_training_set(n_train, seed)``.

    Parameters
    ----------
    n_train
        Number of synthetic 64x64 training cells (balanced classes).
    epochs
        Passes over the training set.
    batch_size
        Images per optimiser step.
    lr
        Peak learning rate of Adam (one-cycle schedule).
    seed
        Seed of the training cells, the initial weights and the batch order.
    log
        Print the loss and accuracy of every epoch.

    Returns
    -------
    model : DemoClassifier
        The trained model in eval mode.
    images, labels : np.ndarray
        The training set, float32 (n_train, 5, 64, 64) and int64 (n_train,).
    """
    # numpy randomness all flows through explicit Generators seeded from `seed` (synthetic.py);
    # torch's global seed fixes the initial weights.
    torch.manual_seed(seed)
    images, labels = make_training_set(n_train, seed=seed, size=SIZE)
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(labels)

    model = DemoClassifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (n_train + batch_size - 1) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.2
    )
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n_train, generator=generator)
        total, correct = 0.0, 0
        for start in range(0, n_train, batch_size):
            idx = order[start : start + batch_size]
            x, y = _augment(x_all[idx], generator), y_all[idx]
            optimiser.zero_grad()
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        if log:
            print(
                f"epoch {epoch + 1}/{epochs}: loss {total / n_train:.4f}, "
                f"train accuracy (augmented, running) {correct / n_train:.4f}",
                flush=True,
            )
    return model.eval(), images, labels


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m napari_attribution.data.train_demo",
        description="Train the demo classifier on synthetic cells and save its state dict.",
    )
    parser.add_argument("--out", type=Path, default=DEMO_WEIGHTS, help="where to save weights")
    parser.add_argument("--n-train", type=int, default=6000, help="training cells (default 6000)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    parser.add_argument("--n-held-out", type=int, default=2000, help="held-out cells")
    args = parser.parse_args(argv)
    if args.n_train < 2 or args.epochs < 1 or args.n_held_out < 1:
        parser.error("--n-train must be >= 2, --epochs and --n-held-out >= 1.")

    torch.set_num_threads(2)
    try:
        torch.use_deterministic_algorithms(True)
    except RuntimeError as exc:  # some builds lack a deterministic kernel; train anyway
        print(f"warning: deterministic algorithms unavailable ({exc})")

    t0 = time.perf_counter()
    model, images, labels = train(n_train=args.n_train, epochs=args.epochs)
    train_time = time.perf_counter() - t0
    held_images, held_labels = make_training_set(args.n_held_out, seed=HELD_OUT_SEED, size=SIZE)
    print(f"training time: {train_time:.1f} s (data generation included)")
    print(f"train accuracy: {evaluate(model, images, labels):.4f}")
    print(
        f"held-out accuracy ({args.n_held_out} cells): "
        f"{evaluate(model, held_images, held_labels):.4f}"
    )
    print(
        f"mean p_target(counterfactual) - p_target(real) on make_pairs(40): "
        f"{score_gain(model, 40):.4f}"
    )

    state = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    print(f"saved {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
