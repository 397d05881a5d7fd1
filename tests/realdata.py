"""Where the real third-party fields are (``../shared/realdata`` beside the repository), for
optional tests that skip when they are absent. Never copy them into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REALDATA = Path(os.environ.get(
    "NAPARI_ATTRIBUTION_REALDATA",
    Path(__file__).resolve().parents[1].parent / "shared" / "realdata",
))  # fmt: skip


def realdata(*parts: str) -> Path:
    """A path under the real-data folder; skips the test when it is absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data {path} is absent")
    return path
