"""The face-detector contract: `Detection`, `BoxFit` and the `FaceDetector` base class.

Coordinates follow the project convention: 0-based pixel coordinates of the original
image in which integers are pixel centres; boxes are (x0, y0, x1, y1). Angles are radians,
counter-clockwise on screen, as in `wingface.geometry.rotation_about` and `square_matrix`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar

import numpy as np

from wingface.data.images import to_rgb_uint8
from wingface.geometry import apply_affine, box_center, box_size, fit_similarity, rotation_about
from wingface.schemes import mean_shape_68


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected face.

    Attributes:
        box: float64 [4] (x0, y0, x1, y1), axis-aligned in original image pixels. For a face
            found in a rotated copy of the image it is that copy's box mapped back.
        score: detector confidence in [0, 1].
        angle: radians; the rotation of the face's upright direction in the image
            (counter-clockwise on screen). 0 for faces found upright, +-pi/2 for faces found
            in a copy rotated by -+90 degrees.
        keypoints: float64 [K, 2] detector keypoints in original image pixels, or None.
            BlazeFace: right eye, left eye, nose tip, mouth, right ear, left ear (K = 6);
            YuNet: right eye, left eye, nose tip, right and left mouth corners (K = 5).
            "Right" is the subject's right. For reporting only.
        detector: name of the detector that produced it (e.g. ``"blazeface"``).
    """

    box: np.ndarray
    score: float
    angle: float = 0.0
    keypoints: np.ndarray | None = None
    detector: str = ""

    def __post_init__(self) -> None:
        box = np.array(self.box, dtype=np.float64).reshape(4)
        box.setflags(write=False)
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "angle", float(self.angle))
        if self.keypoints is not None:
            points = np.array(self.keypoints, dtype=np.float64).reshape(-1, 2)
            points.setflags(write=False)
            object.__setattr__(self, "keypoints", points)


@dataclass(frozen=True)
class BoxFit:
    """How a detector's boxes relate to the tight box of the 68 ground-truth landmarks.

    All quantities are in the face's upright frame and relative to the detector box side
    ``max(width, height)``: the landmark-box square has centre
    ``box_centre + side * (dx, dy)`` (rotated by the detection's angle) and side
    ``side * scale``, where the landmark-box square side is ``max(w, h)`` of the landmark box.

    Attributes:
        dx, dy: centre offset, fractions of the detector box side (dy > 0: landmarks lower).
        scale: landmark-box side / detector box side.
        spread: RMS of the per-face residuals of dx, dy and scale / median scale - 1 (a
            fraction of the box side); how much box jitter a landmark model must tolerate.
        keypoints: where the detector's keypoints sit on the mean 68-point shape
            (`wingface.schemes.mean_shape_68`, in its frame), one (x, y) per keypoint, or
            None: then the detector's keypoints give no reading of the landmarks.
    """

    dx: float
    dy: float
    scale: float
    spread: float
    keypoints: tuple[tuple[float, float], ...] | None = None


def landmark_squares(boxes: np.ndarray, angles: np.ndarray | float, fit: BoxFit) -> tuple[np.ndarray, np.ndarray]:
    """Predict landmark-box squares from detector boxes (pure, batched).

    Args:
        boxes: [..., 4] detector boxes (x0, y0, x1, y1) in image pixels.
        angles: [...] or scalar face angles in radians (counter-clockwise on screen).
        fit: the detector's `BoxFit`.
    Returns:
        centres [..., 2] in image pixels and sides [...] in pixels of the squares that the
        tight box of the 68 landmarks would give (centre and max(w, h)).
    """
    side = box_size(boxes).max(axis=-1)
    ang = np.asarray(angles, dtype=np.float64) + np.zeros_like(side)
    # The offset is fitted in the upright frame; turn it the way the face is turned.
    lin = rotation_about(np.zeros(ang.shape + (2,)), ang)[..., :2]
    offset = lin @ np.array([fit.dx, fit.dy])
    return box_center(boxes) + offset * side[..., None], side * fit.scale


def keypoint_shape(keypoints: np.ndarray, fit: BoxFit) -> np.ndarray | None:
    """The mean 68-point shape placed on a face's detector keypoints [K, 2] (image pixels) by
    the similarity that best maps ``fit.keypoints`` onto them: float64 [68, 2] image pixels,
    a coarse reading of the landmarks; None when ``fit`` has no keypoint template or the
    keypoint counts differ."""
    if fit.keypoints is None or len(fit.keypoints) != len(keypoints):
        return None
    return apply_affine(fit_similarity(np.asarray(fit.keypoints), keypoints), mean_shape_68())


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes [N, 4] and [M, 4] -> [N, M] (0 for empty boxes)."""
    a = np.asarray(a, dtype=np.float64)[:, None, :]
    b = np.asarray(b, dtype=np.float64)[None, :, :]
    wh = (np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2])).clip(0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod((a[..., 2:] - a[..., :2]).clip(0), axis=-1)
    area_b = np.prod((b[..., 2:] - b[..., :2]).clip(0), axis=-1)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate a detector input and return it as RGB uint8 [H, W, 3].

    Greyscale [H, W] / [H, W, 1], RGBA, uint16 and float [0, 1] images are converted with
    `wingface.data.images.to_rgb_uint8`. Raises ValueError naming ``name`` otherwise.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array (RGB uint8 [H, W, 3]), got {type(image).__name__}")
    return to_rgb_uint8(image, name=name)


def model_file(given: str | Path | None, bundled: str) -> AbstractContextManager[Path]:
    """Context manager yielding ``given`` as a path, or else a filesystem path to the bundled
    ``wingface/assets/detectors/<bundled>``."""
    if given is not None:
        return nullcontext(Path(given))
    return resources.as_file(resources.files("wingface").joinpath("assets", "detectors", bundled))


class FaceDetector(ABC):
    """A face detector: RGB image in, detections sorted by score (descending) out.

    Subclasses set ``name`` and ``box_fit`` and implement `_detect` on a validated
    RGB uint8 [H, W, 3] image. Instances hold OpenCV or onnxruntime networks, which are not
    thread-safe: use one detector per thread.
    """

    name: ClassVar[str]
    box_fit: BoxFit

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Detect faces in an RGB uint8 [H, W, 3] image (greyscale and RGBA are converted).

        Returns detections in original image pixels, highest score first; an empty list
        when there is no face. Raises ValueError for a non-array or an unusable shape/dtype.
        """
        rgb = check_image(image)
        return sorted(self._detect(rgb), key=lambda d: -d.score)

    @abstractmethod
    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        """Detections in a validated RGB uint8 [H, W, 3] image, in any order."""

    def fit_for(self, detection: Detection) -> BoxFit:
        """The `BoxFit` that applies to ``detection`` (a cascade picks its stage's)."""
        return self.box_fit

    def landmark_square(self, detection: Detection) -> tuple[np.ndarray, float, float]:
        """The square the tight 68-landmark box would give for ``detection``.

        Returns (centre float64 [2] in image pixels, side in pixels, angle in radians); the
        offset and scale of `fit_for(detection)` are applied in the face's upright frame.
        """
        center, side = landmark_squares(detection.box, detection.angle, self.fit_for(detection))
        return center, float(side), detection.angle

    def keypoint_shape(self, detection: Detection) -> np.ndarray | None:
        """The mean 68-point shape placed on ``detection``'s keypoints (`keypoint_shape`),
        float64 [68, 2] image pixels, or None (no keypoints, or no template for them)."""
        if detection.keypoints is None:
            return None
        return keypoint_shape(detection.keypoints, self.fit_for(detection))
