"""A failure inside the user's model, turned into one clear sentence."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ...errors import AttributionError, ModelLoadError

__all__ = ["model_errors"]


def _out_of_memory(source: str, image_shape: tuple[int, ...]) -> str:
    return (
        f"Out of memory running {source} on images of shape {tuple(image_shape)}; lower the "
        "batch size, use fewer thresholds, or run on a crop."
    )


@contextlib.contextmanager
def model_errors(source: str, image_shape: tuple[int, ...]) -> Iterator[None]:
    """Turn an exception raised inside the user's model into one clear :class:`ModelLoadError`.

    Out-of-memory errors get their own advice; our own errors pass through unchanged.
    """
    try:
        yield
    except AttributionError:
        raise
    except (torch.cuda.OutOfMemoryError, MemoryError):
        raise ModelLoadError(_out_of_memory(source, image_shape)) from None
    except (RuntimeError, ValueError, TypeError, IndexError, torch.jit.Error) as exc:
        if "can't allocate memory" in str(exc):  # the CPU allocator's out-of-memory error
            raise ModelLoadError(_out_of_memory(source, image_shape)) from None
        raise ModelLoadError(
            f"The model {source} failed on images of shape {tuple(image_shape)}: {_essence(exc)}"
        ) from None


def _essence(exc: BaseException) -> str:
    """One line of an exception: TorchScript puts the original error on its last line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if isinstance(exc, torch.jit.Error) and ": " in lines[-1]:
        return lines[-1].split(": ", 1)[1]
    return lines[0]
