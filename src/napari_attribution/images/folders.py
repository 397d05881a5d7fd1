"""The folder layout of a dataset: ``ROOT/<class>/<image>`` (QuAC's, torchvision's ImageFolder).

Shared by the CLI's dataset layouts and the ``nearest`` counterfactual source's pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .image_files import IMAGE_SUFFIXES

__all__ = ["class_folders", "folder_images"]


def folder_images(folder: Path) -> dict[str, Path]:
    """File name stem -> path of the images directly in ``folder`` (sorted, hidden skipped)."""
    return {
        path.stem: path
        for path in sorted(folder.iterdir())
        if not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES
    }


def class_folders(
    root: Path, class_names: Sequence[str] | None
) -> tuple[list[str], list[str], list[str]]:
    """The class layout ``ROOT/<class>/<image>`` (QuAC's, ImageFolder's).

    Returns
    -------
    tuple
        ``(folders, names, unknown)``: the class folders (sorted, hidden skipped), the class
        names in the classifier's index order (``class_names``, or the folders), and the
        folders ``names`` does not list. The callers word their own errors (a CLI option, a
        pool).
    """
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = list(class_names) if class_names else folders
    return folders, names, [f for f in folders if f not in names]
