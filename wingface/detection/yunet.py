"""YuNet (2023) run with ``cv2.FaceDetectorYN`` (bundled ONNX weights).

YuNet finds faces down to about 32 px, so it is the better first choice for group photos
and small faces; it is slower than BlazeFace and its boxes are taller (h/w about 1.3).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from .base import BoxFit, Detection, FaceDetector, model_file

log = logging.getLogger(__name__)

MODEL_FILE = "yunet_s_640_640.onnx"
NUM_KEYPOINTS = 5
# Tiny inputs make the network's feature maps empty; nothing that small holds a 32-px face.
MIN_SIDE = 16


class YuNetDetector(FaceDetector):
    """YuNet via ``cv2.FaceDetectorYN``.

    Args:
        score_threshold: minimum face score in [0, 1].
        nms_threshold: IoU above which YuNet's own NMS suppresses overlapping boxes.
        max_side: images whose long side exceeds this are downscaled to it before detection
            (area averaging); boxes are mapped back. None runs at full resolution (slower,
            finds smaller faces in large photos).
        model_path: an .onnx file to use instead of the bundled one.

    The network is loaded on first use. Not thread-safe: use one instance per thread.
    """

    name = "yunet"
    # Fitted on the 2,012 300-W train faces by benchmarks/fit_detector_boxes.py
    # (benchmarks/results/detector_boxes.json); medians, landmarks sit below the box centre.
    # No keypoint template: YuNet finds upside-down faces upright with upright-looking
    # keypoints (detection/cascade.py), so they must not vouch for a face being upright.
    box_fit = BoxFit(dx=0.0020, dy=0.1202, scale=0.7805, spread=0.0476)

    def __init__(
        self,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        max_side: int | None = 640,
        model_path: str | Path | None = None,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold: expected a value in [0, 1], got {score_threshold}")
        if not 0.0 <= nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold: expected a value in [0, 1], got {nms_threshold}")
        if max_side is not None and max_side < 64:
            raise ValueError(f"max_side: expected None or at least 64 pixels, got {max_side}")
        if model_path is not None and not Path(model_path).is_file():
            raise FileNotFoundError(f"model_path: YuNet model not found: {model_path}")
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self.model_path = model_path
        self._net: cv2.FaceDetectorYN | None = None

    def _load(self) -> cv2.FaceDetectorYN:
        if self._net is None:
            args = ("", (320, 320), self.score_threshold, self.nms_threshold)
            with model_file(self.model_path, MODEL_FILE) as path:
                self._net = cv2.FaceDetectorYN.create(str(path), *args)
            log.debug("loaded YuNet from %s", self.model_path or MODEL_FILE)
        return self._net

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        if min(height, width) < MIN_SIDE:
            return []
        small, factor = self._shrink(rgb)
        net = self._load()
        net.setInputSize((small.shape[1], small.shape[0]))
        _, rows = net.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        if rows is None:
            return []
        rows = rows.astype(np.float64)
        boxes = np.concatenate([rows[:, 0:2], rows[:, 0:2] + rows[:, 2:4]], axis=1)
        points = rows[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2)
        # Shrunk pixel centre i sits at original position (i + 0.5) / factor - 0.5.
        boxes = (boxes + 0.5) / np.tile(factor, 2) - 0.5
        points = (points + 0.5) / factor - 0.5
        return [Detection(b, s, 0.0, p, self.name) for b, s, p in zip(boxes, rows[:, -1], points)]

    def _shrink(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The image downscaled to ``max_side`` if larger, and the (x, y) scale factors [2]."""
        height, width = rgb.shape[:2]
        if self.max_side is None or max(height, width) <= self.max_side:
            return rgb, np.ones(2)
        k = self.max_side / max(height, width)
        size = (max(MIN_SIDE, round(width * k)), max(MIN_SIDE, round(height * k)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return small, np.array([size[0] / width, size[1] / height])
