"""Bundled offline face detection: BlazeFace (short range, on onnxruntime) and YuNet (on OpenCV).

Usage::

    detector = create_detector()           # BlazeFace, then YuNet; +-90 degree retry
    faces = detector.detect(rgb)           # list[Detection], best first
    centre, side, angle = detector.landmark_square(faces[0])

Boxes are (x0, y0, x1, y1) in 0-based pixel coordinates of the input image; angles are
radians, counter-clockwise on screen (`wingface.geometry.rotation_about`). Detectors hold
OpenCV networks that are not thread-safe: build one per thread and reuse it.
"""

from .base import BoxFit, Detection, FaceDetector, check_image, keypoint_shape, landmark_squares, pairwise_iou
from .blazeface import BlazeFaceDetector
from .cascade import DETECTOR_NAMES, DetectorCascade, create_detector
from .yunet import YuNetDetector

__all__ = [
    "DETECTOR_NAMES", "BlazeFaceDetector", "BoxFit", "Detection", "DetectorCascade", "FaceDetector",
    "YuNetDetector", "check_image", "create_detector", "keypoint_shape", "landmark_squares", "pairwise_iou",
]
