"""The stable result object of the inference API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..schemes import LandmarkScheme


@dataclass(frozen=True)
class Face:
    """One face found (or given) in an image.

    Attributes:
        points: float64 [L, 2] landmarks, 0-based pixel (x, y) in the input image.
        box: float64 [4] (x0, y0, x1, y1): the detector's box, or the box passed in.
        score: detector confidence in [0, 1]; 1.0 for boxes passed in.
        angle: radians; the in-plane rotation the face was found at (non-zero when the
            detector only found it in a copy rotated by +-90 degrees).
        scheme: the landmark scheme of ``points``.
    """

    points: np.ndarray
    box: np.ndarray
    score: float
    angle: float = 0.0
    scheme: LandmarkScheme | None = field(default=None, repr=False, compare=False)

    def numpy(self) -> np.ndarray:
        """The landmarks, float64 [L, 2]."""
        return self.points

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: box, score, angle (degrees), points as [[x, y], ...]."""
        return {
            "box": [round(float(v), 3) for v in self.box],
            "score": round(float(self.score), 5),
            "angle_deg": round(float(np.degrees(self.angle)), 3),
            "scheme": self.scheme.name if self.scheme else None,
            "points": [[round(float(x), 3), round(float(y), 3)] for x, y in self.points],
        }

    def plot(self, image: np.ndarray, **style: Any) -> np.ndarray:
        """A copy of ``image`` (RGB uint8) with this face drawn on it; see `draw_faces`."""
        from .drawing import draw_faces

        return draw_faces(image, [self], **style)
