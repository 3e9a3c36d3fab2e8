"""MediaPipe BlazeFace (short range) run with onnxruntime; decoding in numpy.

The network sees the image letterboxed to a square and resized to 128 x 128, RGB in
[-1, 1]. It predicts, for each of 896 fixed anchors, a score logit and 16 regressors:
box centre offset, width and height, then 6 keypoints, all in 128-pixel units relative
to the anchor centre. Short range: good for faces wider than about 15% of the image's
long side (selfies, portraits, face crops); it misses smaller faces.

The bundled ``.onnx`` is MediaPipe's ``.tflite`` converted by ``tflite2onnx`` 0.4.1 (outputs
equal to OpenCV's run of the ``.tflite`` within 1e-4; onnxruntime runs it 3x faster on one
thread; assets/detectors/NOTICE).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from wingface.geometry import apply_affine, invert_affine, square_matrix, warp_image

from .base import BoxFit, Detection, FaceDetector, model_file, pairwise_iou

log = logging.getLogger(__name__)

MODEL_FILE = "face_detection_short_range.onnx"
INPUT_SIZE = 128
# (stride, anchors per cell) after merging MediaPipe's 4 SSD layers of strides 8, 16, 16, 16.
ANCHOR_LAYERS = ((8, 2), (16, 6))
NUM_KEYPOINTS = 6
# MediaPipe clips logits to +-100 before the sigmoid.
LOGIT_CLIP = 100.0


@lru_cache(maxsize=1)
def blazeface_anchors() -> np.ndarray:
    """Anchor centres [896, 2] (x, y) in units of the 128-px input (0..1 spans its edges).

    Order: layer, then row, then column, then anchor within the cell (MediaPipe's order).
    """
    centres = []
    for stride, per_cell in ANCHOR_LAYERS:
        grid = INPUT_SIZE // stride
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
        cells = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(cells, per_cell, axis=1).reshape(-1, 2))
    out = np.concatenate(centres)
    out.setflags(write=False)
    return out


def decode_blazeface(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode raw BlazeFace outputs (pure, batched).

    Args:
        regressors: [N, A, 16] raw regressors in 128-px input pixels.
        logits: [N, A] raw score logits.
        anchors: [A, 2] anchor centres in input units (`blazeface_anchors`).
    Returns:
        boxes [N, A, 4] (x0, y0, x1, y1), keypoints [N, A, 6, 2], both in input units
        (0..1 spans the input's outer pixel edges), and scores [N, A] in [0, 1].
    """
    raw = np.asarray(regressors, dtype=np.float64) / INPUT_SIZE
    centre = anchors + raw[..., 0:2]
    half = raw[..., 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=-1)
    keypoints = anchors[:, None, :] + raw[..., 4:4 + 2 * NUM_KEYPOINTS].reshape(*raw.shape[:-1], NUM_KEYPOINTS, 2)
    return boxes, keypoints, _sigmoid(logits)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    """MediaPipe's scores: the sigmoid of logits clipped to +-`LOGIT_CLIP` (float64)."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, dtype=np.float64), -LOGIT_CLIP, LOGIT_CLIP)))


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression.

    Takes the best remaining candidate, gathers every remaining candidate overlapping it
    with IoU above ``iou_threshold``, and outputs their score-weighted mean box and
    keypoints with the best candidate's score.

    Args:
        boxes: [M, 4]; scores: [M]; keypoints: [M, K, 2] (any one coordinate space).
    Returns:
        boxes [F, 4], scores [F], keypoints [F, K, 2], highest score first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    overlap = pairwise_iou(boxes, boxes) > iou_threshold
    remaining = np.ones(len(scores), dtype=bool)
    out_boxes, out_scores, out_points = [], [], []
    while remaining.any():
        best = int(np.argmax(remaining))  # scores are sorted, so the first remaining is best
        members = remaining & overlap[best]
        members[best] = True
        w = scores[members] / scores[members].sum()
        out_boxes.append(w @ boxes[members])
        out_points.append(np.tensordot(w, keypoints[members], axes=1))
        out_scores.append(scores[best])
        remaining &= ~members
    k = keypoints.shape[1]
    return (np.array(out_boxes).reshape(-1, 4), np.array(out_scores), np.array(out_points).reshape(-1, k, 2))


def letterbox_matrix(width: int, height: int) -> np.ndarray:
    """[2, 3] image -> 128-px input transform: the centred square of side max(w, h), scaled."""
    center = np.array([(width - 1) / 2, (height - 1) / 2])
    return square_matrix(center, float(max(width, height)), INPUT_SIZE)


class BlazeFaceDetector(FaceDetector):
    """MediaPipe BlazeFace short range on onnxruntime (bundled weights), one thread.

    Args:
        score_threshold: minimum sigmoid score (MediaPipe uses 0.5).
        nms_threshold: IoU above which candidates are merged by weighted NMS (MediaPipe: 0.3).
        model_path: an ``.onnx`` file (input [1, 3, 128, 128], outputs ``regressors`` and
            ``classificators``) to use instead of the bundled one.

    The network is loaded on first use. Not thread-safe: use one instance per thread.
    """

    name = "blazeface"
    # Fitted on the 2,012 300-W train faces by benchmarks/fit_detector_boxes.py
    # (benchmarks/results/detector_boxes.json); medians, landmarks sit below the box centre.
    box_fit = BoxFit(dx=0.0029, dy=0.0592, scale=0.9632, spread=0.0515,
                     keypoints=((-0.2235, -0.3103), (0.2160, -0.3084), (-0.0070, -0.0491), (-0.0085, 0.1676),
                                (-0.4626, -0.2190), (0.4557, -0.2128)))

    def __init__(self, score_threshold: float = 0.5, nms_threshold: float = 0.3, model_path: str | Path | None = None) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold: expected a value in [0, 1], got {score_threshold}")
        if not 0.0 <= nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold: expected a value in [0, 1], got {nms_threshold}")
        if model_path is not None and not Path(model_path).is_file():
            raise FileNotFoundError(f"model_path: BlazeFace model not found: {model_path}")
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.model_path = model_path
        self._session = None
        self._input_name = ""

    def _load(self):
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            # One thread: a small 128x128 network (more threads were not measured).
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            with model_file(self.model_path, MODEL_FILE) as path:
                try:
                    self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                except Exception as err:  # onnxruntime raises its own exception types for bad files
                    raise ValueError(f"{path}: not a loadable BlazeFace ONNX model: {str(err)[:200]}") from None
            self._input_name = self._session.get_inputs()[0].name
            log.debug("loaded BlazeFace from %s", self.model_path or MODEL_FILE)
        return self._session

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        to_input = letterbox_matrix(width, height)
        crop = warp_image(rgb, to_input, INPUT_SIZE)
        blob = np.ascontiguousarray((crop.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None])
        session = self._load()
        regressors, logits = session.run(["regressors", "classificators"], {self._input_name: blob})
        # Only the candidates over the threshold are decoded (a handful of the 896 anchors).
        keep = _sigmoid(logits[0, :, 0]) >= self.score_threshold
        if not keep.any():
            return []
        boxes, keypoints, scores = decode_blazeface(regressors[:, keep], logits[:, keep, 0], blazeface_anchors()[keep])
        boxes, scores, keypoints = weighted_nms(boxes[0], scores[0], keypoints[0], self.nms_threshold)
        # Input units -> input pixel centres -> original image pixels.
        to_image = invert_affine(to_input)
        corners = apply_affine(to_image, boxes.reshape(-1, 2, 2) * INPUT_SIZE - 0.5).reshape(-1, 4)
        points = apply_affine(to_image, keypoints * INPUT_SIZE - 0.5)
        return [Detection(b, s, 0.0, p, self.name) for b, s, p in zip(corners, scores, points)]
