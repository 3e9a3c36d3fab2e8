"""Detector cascade with a retry on the image turned by +-90 and 180 degrees (and, when no
face is found at all, +-45 and +-135 degrees), and the factory.

Faces lying on their side or upside down (infants, people lying down, sideways or inverted
phone photos) are either missed by upright detectors or found with an upright box whose
keypoints show the roll. The cascade then looks at the image turned by +90, -90 and 180
degrees (``np.rot90``) and reports the face with its angle, so the landmark crop can be
taken upright. Between those turns the detectors' own roll tolerance has to cover the rest.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from wingface.geometry import apply_affine, invert_affine, rotation_about, similarity_params, warp_image
from wingface.lookup import lookup

from .base import BoxFit, Detection, FaceDetector, pairwise_iou
from .blazeface import BlazeFaceDetector
from .yunet import YuNetDetector

# np.rot90's k for the turns tried, in order: +90 (counter-clockwise on screen), -90, 180.
TURNS = (1, -1, 2)
# Degrees (counter-clockwise on screen) of the diagonal turns tried last, only when no
# detector finds a face in any quarter turn: a face rolled by about 45 or 135 degrees lies
# between two quarter turns, at the edge of both detectors' roll tolerance.
DIAGONALS = (45.0, -45.0, 135.0, -135.0)


def rot90_to_original(k: int, width: int, height: int) -> np.ndarray:
    """[2, 3] transform from pixels of ``np.rot90(image, k)`` to pixels of ``image`` [height, width].

    Only k = 1 (counter-clockwise on screen), k = -1 (clockwise) and k = 2 (half turn) are
    supported; the matrix's rotation angle is -k * pi / 2 (pi for k = 2).
    """
    if k == 1:  # rotated[i, j] = image[j, width - 1 - i]
        return np.array([[0.0, -1.0, width - 1.0], [1.0, 0.0, 0.0]])
    if k == -1:  # rotated[i, j] = image[height - 1 - j, i]
        return np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, height - 1.0]])
    if k == 2:  # rotated[i, j] = image[height - 1 - i, width - 1 - j]
        return np.array([[-1.0, 0.0, width - 1.0], [0.0, -1.0, height - 1.0]])
    raise ValueError(f"k: expected 1, -1 or 2 (np.rot90 turns), got {k}")


def map_detection(detection: Detection, matrix: np.ndarray) -> Detection:
    """``detection`` found in a rotated copy, mapped to the original by a rot90 ``matrix`` [2, 3].

    The box becomes the axis-aligned box of the mapped corners; the angle grows by the
    matrix's rotation (radians, counter-clockwise on screen), wrapped to (-pi, pi] (a half
    turn gives pi, never -pi).
    """
    corners = apply_affine(matrix, detection.box.reshape(2, 2))
    box = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
    points = None if detection.keypoints is None else apply_affine(matrix, detection.keypoints)
    angle = detection.angle + float(similarity_params(matrix)[1])
    angle = math.pi - (math.pi - angle) % (2 * math.pi)
    return Detection(box, detection.score, angle, points, detection.detector)


def diagonal_copy(rgb: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` turned by ``degrees`` (counter-clockwise on screen) about its centre onto a
    square canvas that holds all of it (black outside), and the [2, 3] map from the copy's
    pixels back to ``rgb``'s."""
    height, width = rgb.shape[:2]
    side = int(math.ceil(math.hypot(width, height)))
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    to_copy = rotation_about(centre, math.radians(degrees))
    to_copy[:, 2] += (side - 1) / 2 - centre
    return warp_image(rgb, to_copy, side), invert_affine(to_copy)


def map_turned(detection: Detection, matrix: np.ndarray) -> Detection:
    """``detection`` found in a copy turned by any angle, mapped back by ``matrix`` [2, 3]:
    its centre and keypoints are mapped, its box keeps its size in the face's own frame
    (what `landmark_squares` reads), and the angle grows by the turn."""
    half = (detection.box[2:] - detection.box[:2]) / 2
    centre = apply_affine(matrix, ((detection.box[:2] + detection.box[2:]) / 2)[None])[0]
    points = None if detection.keypoints is None else apply_affine(matrix, detection.keypoints)
    angle = detection.angle + float(similarity_params(matrix)[1])
    angle = math.pi - (math.pi - angle) % (2 * math.pi)
    return Detection(np.concatenate([centre - half, centre + half]), detection.score, angle, points, detection.detector)


def eye_roll(keypoints: np.ndarray) -> np.ndarray:
    """Roll angle (radians, counter-clockwise on screen) from keypoints [..., K, 2] whose
    first two rows are the subject's right and left eye (both bundled detectors) -> [...]."""
    points = np.asarray(keypoints, dtype=np.float64)
    v = points[..., 1, :] - points[..., 0, :]
    return np.arctan2(-v[..., 1], v[..., 0])


# Boxes of one face found in two orientations overlap at least this much (IoU, after mapping
# back); different faces of one photo overlap less.
SAME_FACE_IOU = 0.3
# A face from an orientation other than the winning one is added only from this score: on
# lfpw/testset/image_0138 turned 45 degrees the face scores 0.80 upright while a turned copy
# wins with its neighbour's face (0.85); the bundled photo turned 45 degrees shows a false
# box at 0.52 in a turned copy.
OTHER_ORIENTATION_SCORE = 0.75


def merge_orientations(groups: Sequence[Sequence[Detection]]) -> list[Detection]:
    """Faces of one image found in several orientations (one group per orientation, mapped
    back to the image) -> its faces: the group with the best-scoring face wins (on a tie the
    earlier), and the others add the faces it lacks that score at least
    `OTHER_ORIENTATION_SCORE` (boxes overlapping every kept one by less than `SAME_FACE_IOU`),
    best first."""
    best = max(range(len(groups)), key=lambda i: max((d.score for d in groups[i]), default=-1.0))
    kept = list(groups[best])
    others = sorted((d for i, g in enumerate(groups) if i != best for d in g if d.score >= OTHER_ORIENTATION_SCORE),
                    key=lambda d: -d.score)
    for d in others:
        if not kept or pairwise_iou(np.stack([k.box for k in kept]), d.box[None]).max() < SAME_FACE_IOU:
            kept.append(d)
    return kept


# BlazeFace on the 1,509 300w-train faces in the two halves measured (every 4th, then every
# 2nd): turned upside down, the best upright-looking (wrong) box scored at most 0.853 (one
# face at 0.85 or more, none at 0.86); upright, 9.1% of faces score under 0.87, so they also
# try the turns (3 more detector runs), and the half-turned copy of an upside-down face
# always scores higher than its upright-looking box.
WEAK_SCORE = 0.87


class DetectorCascade(FaceDetector):
    """Run detectors in order and keep the first stage's faces; retry on turned copies.

    For each stage in order, the upright image is tried; the first stage that finds a face
    wins. With ``rotate_retry``:

    - when a stage finds nothing upright, it is run on the image turned by +90, -90 and 180
      degrees before the next stage is tried, and if it finds a face there it wins;
    - when the winning upright face's eye keypoints show a roll beyond ``roll_check_deg``,
      or its score is under ``weak_score``, the same stage is also run on the three turned
      copies. (Detectors often find
      sideways and upside-down faces upright with lower scores; BlazeFace's eye keypoints
      then show the roll of sideways faces, but YuNet's keep looking upright, and so do
      BlazeFace's on the bundled photo turned 180 degrees: found upright at 0.56, at 0.92
      in the half-turned copy. At 135 degrees a false box at 0.52 beats the face upright.)
    - when no stage finds a face in any of those, each stage in turn is run on copies
      turned diagonally (`DIAGONALS`).

    Where several orientations were tried, the one with the best-scoring face wins, and
    strong faces elsewhere in the photo that only other orientations show are added
    (`merge_orientations`).

    Faces from a turned copy are mapped back to the original image with angle +-pi/2 (a
    quarter turn), pi (the half turn) or the diagonal's angle.

    Args:
        detectors: the stages, each a `FaceDetector` with a distinct ``name``.
        rotate_retry: enable the retries on turned copies.
        roll_check_deg: roll threshold in degrees for the second retry; None disables it.
        weak_score: upright score under which the second retry also runs; None: never.

    ``box_fit`` is the first stage's; use `landmark_square`/`fit_for`, which pick the fit of
    the stage that produced each detection. Not thread-safe (the stages hold OpenCV nets).
    """

    name = "cascade"

    def __init__(self, detectors: Sequence[FaceDetector], rotate_retry: bool = True, roll_check_deg: float | None = 30.0,
                 weak_score: float | None = WEAK_SCORE) -> None:
        stages = list(detectors)
        if not stages:
            raise ValueError("detectors: expected at least one FaceDetector, got none")
        for i, stage in enumerate(stages):
            if not isinstance(stage, FaceDetector):
                raise ValueError(f"detectors[{i}]: expected a FaceDetector, got {type(stage).__name__}")
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"detectors: stage names must be distinct, got {names}")
        if roll_check_deg is not None and not 0.0 < roll_check_deg < 90.0:
            raise ValueError(f"roll_check_deg: expected None or a value in (0, 90), got {roll_check_deg}")
        self.stages = stages
        self.rotate_retry = rotate_retry
        self.roll_check = None if roll_check_deg is None else math.radians(roll_check_deg)
        self.weak_score = weak_score
        self.box_fit = stages[0].box_fit
        self._by_name = {stage.name: stage for stage in stages}

    def fit_for(self, detection: Detection) -> BoxFit:
        """The `BoxFit` of the stage named by ``detection.detector``."""
        return lookup(self._by_name, detection.detector, "detector of this detection").fit_for(detection)

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        # Each stage is tried in every orientation before the next: a fallback detector
        # finding an upside-down face "upright" (YuNet does, with high scores) is worse than
        # the first detector finding it turned.
        for stage in self.stages:
            found = stage.detect(rgb)
            if found:
                return self._check_roll(stage, rgb, found) if self.rotate_retry else found
            found = merge_orientations(self._turned(stage, rgb)) if self.rotate_retry else []
            if found:
                return found
        # Nothing in any quarter turn: a face rolled by about 45 or 135 degrees lies between
        # two turns, where both detectors may miss it. (Diagonal copies of an image with a
        # weak face are not tried: their faces, often upright ones seen rolled, score higher
        # and fit worse; measured on 300w-common, the detector's NME rose 3-9%.)
        for stage in self.stages if self.rotate_retry else ():
            found = merge_orientations(self._diagonal(stage, rgb))
            if found:
                return found
        return []

    def _weak(self, detection: Detection) -> bool:
        return self.weak_score is not None and detection.score < self.weak_score

    def _check_roll(self, stage: FaceDetector, rgb: np.ndarray, found: list[Detection]) -> list[Detection]:
        best = found[0]
        weak = self._weak(best)
        rolled = (self.roll_check is not None and best.keypoints is not None and len(best.keypoints) >= 2
                  and abs(float(eye_roll(best.keypoints))) > self.roll_check)
        if not (weak or rolled):
            return found
        return merge_orientations([found, *self._turned(stage, rgb)])

    def _diagonal(self, stage: FaceDetector, rgb: np.ndarray) -> list[list[Detection]]:
        """``stage``'s faces in each diagonally turned copy (`DIAGONALS`, in order), mapped back."""
        groups = []
        for degrees in DIAGONALS:
            copy, back = diagonal_copy(rgb, degrees)
            groups.append([map_turned(d, back) for d in stage.detect(copy)])
        return groups

    def _turned(self, stage: FaceDetector, rgb: np.ndarray) -> list[list[Detection]]:
        """``stage``'s faces in each quarter-turned copy (`TURNS`, in order), mapped back."""
        height, width = rgb.shape[:2]
        groups = []
        for k in TURNS:
            matrix = rot90_to_original(k, width, height)
            groups.append([map_detection(d, matrix) for d in stage.detect(np.ascontiguousarray(np.rot90(rgb, k)))])
        return groups


# Stage lists by name. BlazeFace first is the measured best on portraits and face crops;
# YuNet first suits group photos and small faces.
_STAGES: dict[str, Callable[[], list[FaceDetector]]] = {
    "default": lambda: [BlazeFaceDetector(), YuNetDetector()],
    "blazeface": lambda: [BlazeFaceDetector()],
    "yunet": lambda: [YuNetDetector()],
    "yunet-first": lambda: [YuNetDetector(), BlazeFaceDetector()],
}
DETECTOR_NAMES = tuple(_STAGES)


def create_detector(name: str = "default", rotate_retry: bool = True) -> DetectorCascade:
    """A ready face detector by name: ``default`` (BlazeFace, then YuNet when BlazeFace finds
    nothing), ``blazeface``, ``yunet`` or ``yunet-first`` (for group photos and small faces).

    Always a `DetectorCascade` (so the turned-copy retry applies to every choice). Models
    load lazily on the first `detect`; build the detector once and reuse it, one per thread.
    Raises ValueError for an unknown name, suggesting the closest one.
    """
    return DetectorCascade(lookup(_STAGES, name, "face detector")(), rotate_retry=rotate_retry)
