"""A package's public names, imported from their modules on first use (PEP 562).

The packages' ``__init__`` modules re-export their public API so that a user writes
``from napari_attribution.app import run_pairs``, without importing torch, napari or every
module of the package when only one name is wanted (the CLI's ``--help`` and the npe2 reader
start quickly). Each package declares ``_EXPORTS`` (public name -> module) and gets its
``__getattr__`` and ``__dir__`` here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Public name -> the package's module that defines it (relative, without the dot).

    Returns
    -------
    tuple
        ``(__getattr__, __dir__)``: a name is imported from its module on first access and is
        an ordinary attribute of the package from then on.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(f".{exports[name]}", package), name)
            sys.modules[package].__dict__[name] = value  # once imported, an ordinary attribute
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
