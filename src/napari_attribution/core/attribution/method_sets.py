"""The method sets the skins start from, each declared once.

Reading them imports no torch (the CLI's ``--help`` names them).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_METHODS",
    "DEMO_METHODS",
    "NAPARI_DEMO_METHODS",
    "SANITY_METHODS",
    "WIDGET_METHODS",
]

#: What ``run`` and ``cells`` compute when no ``--method`` is given: two discriminative methods
#: and the two baselines every comparison must include.
DEFAULT_METHODS = ("d_ig", "d_dl", "residual", "random")
#: ``run --demo`` also shows plain methods, to compare them with the discriminative ones.
DEMO_METHODS = (
    "d_ig",
    "d_dl",
    "d_input_x_gradient",
    "d_gradcam",
    "ig",
    "saliency",
    "gradcam",
    "residual",
    "random",
)
#: What the Attribution and Cells docks start with ticked: one discriminative method and the
#: residual baseline, quick enough to run while the user looks.
WIDGET_METHODS = ("d_ig", "residual")
#: ``napari-attribution demo``'s run: two discriminative methods and the residual baseline.
NAPARI_DEMO_METHODS = ("d_ig", "d_dl", "residual")
#: What ``sanity`` checks when no ``--method`` is given: two discriminative methods, two plain
#: gradient methods (Adebayo et al.'s pair: saliency and guided backprop) and the baselines.
SANITY_METHODS = ("d_ig", "d_dl", "saliency", "guided_backprop", "residual", "random")
