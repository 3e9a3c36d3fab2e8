"""wingface: facial landmark localisation with Wing loss (Feng et al., CVPR 2018).

    from wingface import Landmarker
    faces = Landmarker().predict("photo.jpg")
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Face", "Landmarker", "__version__"]


def __getattr__(name: str):
    # Lazy, so `import wingface` (and the CLI's start-up) does not load torch and OpenCV.
    if name == "Landmarker":
        from .inference.landmarker import Landmarker

        return Landmarker
    if name == "Face":
        from .inference.results import Face

        return Face
    raise AttributeError(f"module 'wingface' has no attribute {name!r}")
