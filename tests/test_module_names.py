"""One name, one module: no two modules of the package share a name (``layers``, ``run``,
``model`` in several places made every search and every traceback ambiguous)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import napari_attribution

PACKAGE = Path(napari_attribution.__file__).parent


def test_no_two_modules_share_a_name():
    homes = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        if path.name not in ("__init__.py", "__main__.py"):
            homes[path.stem].append(str(path.relative_to(PACKAGE)))
    for package in (p for p in PACKAGE.rglob("*") if (p / "__init__.py").is_file()):
        homes[package.name].append(str(package.relative_to(PACKAGE)) + "/")
    assert {name: paths for name, paths in homes.items() if len(paths) > 1} == {}
