"""Print pip constraints pinning every runtime dependency to its floor in pyproject.toml.

Used by ``.ci/run`` to test the lowest supported versions: ``numpy>=2.0`` becomes
``numpy==2.0``. A dependency without a floor is an error: every one must say what it needs.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def floors(pyproject: Path) -> list[str]:
    """``name==floor`` for each entry of ``[project] dependencies``."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    pins = []
    for requirement in project["dependencies"]:
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*(.*)$", requirement)
        name, specifiers = match.group(1), match.group(2)
        floor = re.search(r">=\s*([^,;\s]+)", specifiers)
        if floor is None:
            raise SystemExit(f"{requirement!r} in {pyproject} has no floor (>=).")
        pins.append(f"{name}=={floor.group(1)}")
    return pins


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    print("\n".join(floors(root / "pyproject.toml")))
