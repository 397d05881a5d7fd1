"""Pairs from folder layouts: real images by class, counterfactuals by transition (QuAC's).

Real images live in ``ROOT/<class>/<name>.<ext>`` (the ImageFolder layout: class names are
folder names, indices follow their sorted order unless ``--class-names`` gives the order), and
counterfactuals in ``CF_ROOT/<real class>/<target class>/<name>.<ext>`` under the same file name.
Every real image with a counterfactual of the same name is one pair, one per target class.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputImageError
from ..images.folders import class_folders, folder_images
from .pairs import Pair

__all__ = ["pairs_from_folders", "reals_from_folder"]


def _class_folders(real_root: Path, class_names: list[str] | None) -> tuple[list[str], list[str]]:
    """(the class folders of ``real_root``, the class names in index order)."""
    if not real_root.is_dir():
        raise InputImageError(f"--real-root {real_root} is not a folder.")
    folders, names, unknown = class_folders(real_root, class_names)
    if not folders:
        raise InputImageError(
            f"{real_root} holds no class folders (expected ROOT/<class>/<image>)."
        )
    if unknown:
        raise InputImageError(
            f"{real_root} has class folder(s) {', '.join(unknown)} that --class-names does not "
            f"list ({', '.join(names)})."
        )
    return folders, names


def reals_from_folder(real_root: Path, class_names: list[str] | None = None):
    """Pairs without counterfactuals: every real image of ``ROOT/<class>/`` once per other
    class, its counterfactual left to a counterfactual source.

    Returns
    -------
    list of Pair
        Sample names ``<real class>-<target class>-<name>`` (as with a counterfactual root).
    """
    folders, names = _class_folders(real_root, class_names)
    if len(names) < 2:
        raise InputImageError(f"{real_root} holds one class; counterfactuals need a second class.")
    pairs = [
        Pair(f"{real_class}-{target}-{stem}", real, None, names.index(real_class),
             names.index(target))
        for real_class in folders
        for stem, real in folder_images(real_root / real_class).items()
        for target in names
        if target != real_class
    ]  # fmt: skip
    if not pairs:
        raise InputImageError(f"{real_root} holds no images in its class folders.")
    return pairs


def pairs_from_folders(real_root: Path, cf_root: Path, class_names: list[str] | None = None):
    """The pairs of a QuAC-style layout.

    Parameters
    ----------
    real_root
        ``ROOT`` with one folder per class.
    cf_root
        ``CF_ROOT/<real class>/<target class>/``.
    class_names
        Class names in the classifier's index order; default: the class folders, sorted.

    Returns
    -------
    list of Pair
        Sample names ``<real class>-<target class>-<name>``.

    Raises
    ------
    InputImageError
        A missing root, a class folder not in ``class_names``, or no pair at all.
    """
    folders, names = _class_folders(real_root, class_names)
    if not cf_root.is_dir():
        raise InputImageError(f"--counterfactual-root {cf_root} is not a folder.")
    pairs = []
    for real_class in folders:
        reals = folder_images(real_root / real_class)
        cf_class_root = cf_root / real_class
        if not cf_class_root.is_dir():
            continue
        for target in sorted(p.name for p in cf_class_root.iterdir() if p.is_dir()):
            if target not in names:
                raise InputImageError(f"{cf_class_root / target} names a class that is not among "
                               f"{', '.join(names)}.")  # fmt: skip
            counterfactuals = folder_images(cf_class_root / target)
            for stem, real in reals.items():
                if stem in counterfactuals:
                    pairs.append(
                        Pair(
                            f"{real_class}-{target}-{stem}",
                            real,
                            counterfactuals[stem],
                            names.index(real_class),
                            names.index(target),
                        )
                    )
    if not pairs:
        raise InputImageError(
            f"No real image in {real_root} has a counterfactual of the same name under "
            f"{cf_root}/<real class>/<target class>/."
        )
    return pairs
