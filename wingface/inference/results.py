"""The stable result object of the inference API, and what its confidences mean.

A model with an error head predicts each point's expected error; the cascade reports ``e``
(image pixels), that expectation blended with the stages' disagreement
(`wingface.inference.cascade.with_disagreement`). The error model behind it is a Laplace
law of the point's distance to the truth, so the chance that a point lies within a distance
``t`` is ``1 - exp(-t / e)``. wingface reports:

- ``point_confidence[i] = 1 - exp(-0.1 * D / e_i)``: the chance that point i is within 10%
  of the inter-ocular distance D (of the predicted shape) of the truth;
- ``confidence = 1 - exp(-0.1 / m)``, with ``m`` the predicted NME (mean of ``e_i / D``):
  the chance that the face is not a failure at the usual 10% threshold.

Both are NaN for models without an error head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..schemes import LandmarkScheme

FAILURE_NME = 0.1  # the FR@10% threshold the confidences refer to (fraction of D)


def expected_nme(points: np.ndarray, errors: np.ndarray, scheme: LandmarkScheme | None) -> tuple[np.ndarray, float]:
    """Per-point expected errors [L] as fractions of the predicted shape's inter-ocular
    distance (of the whole shape's box diagonal when the scheme names no eyes), and their mean."""
    points = np.asarray(points, dtype=np.float64)
    if scheme is not None and scheme.inter_ocular:
        right, left = (points[list(s)].mean(0) for s in scheme.inter_ocular)
        distance = float(np.linalg.norm(left - right))
    else:
        distance = float(np.linalg.norm(np.ptp(points, axis=0)))
    relative = np.asarray(errors, dtype=np.float64) / max(distance, 1e-6)
    return relative, float(relative.mean())


def confidences(points: np.ndarray, errors: np.ndarray | None,
                scheme: LandmarkScheme | None) -> tuple[float, np.ndarray]:
    """(face confidence, point confidences [L]) from points [L, 2] and expected errors [L]
    (image pixels), as the module describes; NaNs when ``errors`` is None."""
    if errors is None:
        return float("nan"), np.full(len(points), np.nan)
    relative, mean = expected_nme(points, errors, scheme)
    point = 1.0 - np.exp(-FAILURE_NME / np.maximum(relative, 1e-9))
    return float(1.0 - np.exp(-FAILURE_NME / max(mean, 1e-9))), point


@dataclass(frozen=True)
class Face:
    """One face found (or given) in an image.

    Attributes:
        points: float64 [L, 2] landmarks, 0-based pixel (x, y) in the input image.
        box: float64 [4] (x0, y0, x1, y1): the detector's box, or the box passed in.
        score: detector confidence in [0, 1]; 1.0 for boxes passed in.
        angle: radians; the in-plane rotation the face was found at (non-zero when the
            detector only found it in a turned copy of the image).
        scheme: the landmark scheme of ``points``.
        confidence: in [0, 1], the chance that the landmark fit is not a failure (NME under
            10%; see the module); NaN for a model without an error head.
        point_confidence: float64 [L] in [0, 1], per point (see the module); NaN likewise.
    """

    points: np.ndarray
    box: np.ndarray
    score: float
    angle: float = 0.0
    scheme: LandmarkScheme | None = field(default=None, repr=False, compare=False)
    confidence: float = float("nan")
    point_confidence: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.point_confidence is None:
            object.__setattr__(self, "point_confidence", np.full(len(self.points), np.nan))

    def numpy(self) -> np.ndarray:
        """The landmarks, float64 [L, 2]."""
        return self.points

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: box, score, angle (degrees), confidence, points as [[x, y], ...]
        and point_confidence [L] (confidences are null for a model without an error head)."""
        return {
            "box": [round(float(v), 3) for v in self.box],
            "score": round(float(self.score), 5),
            "angle_deg": round(float(np.degrees(self.angle)), 3),
            "scheme": self.scheme.name if self.scheme else None,
            "confidence": _rounded(self.confidence),
            "points": [[round(float(x), 3), round(float(y), 3)] for x, y in self.points],
            "point_confidence": [_rounded(c) for c in self.point_confidence],
        }

    def plot(self, image: np.ndarray, **style: Any) -> np.ndarray:
        """A copy of ``image`` (RGB uint8) with this face drawn on it; see `draw_faces`."""
        from .drawing import draw_faces

        return draw_faces(image, [self], **style)


def confidence_text(value: float) -> str:
    """A confidence for CSV: four decimals, or empty when there is none (NaN)."""
    return f"{value:.4f}" if np.isfinite(value) else ""


def _rounded(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)
