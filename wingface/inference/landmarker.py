"""The user API: image in, faces and landmarks out.

    from wingface import Landmarker
    lm = Landmarker()                         # shipped cascade + bundled detector
    faces = lm.predict("photo.jpg")           # path, RGB uint8 array (H, W, 3) or PIL image
    faces[0].points                           # (68, 2) 0-based pixel x, y
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.images import read_image, to_rgb_uint8
from ..detection.cascade import WEAK_SCORE
from ..geometry import Squares, box_center, box_from_points, box_size, check_box
from .cascade import Cascade, without_orientation
from .loading import load_stages
from .results import Face, confidences
from .stages import Stage, mirror_averaged

log = logging.getLogger(__name__)

DEFAULT_MODEL = "wingface-300w.pt"
DEFAULT_INT8_EXPORT = "wingface-300w-int8"  # the same cascade, `wingface export --quantize int8`
# What precision="auto" runs for the shipped model: the fastest path whose 300w-common NME
# is within 1% of fp32 (docs/MODEL_CARD.md, "Precision").
SHIPPED_AUTO_PRECISION = "int8"


def default_model_path(precision: str = "fp32") -> Path:
    """The shipped pretrained cascade inside the package: the ``.pt`` file, or for ``int8``
    its int8 ONNX export (a folder)."""
    name = DEFAULT_INT8_EXPORT if precision == "int8" else DEFAULT_MODEL
    return Path(str(resources.files("wingface") / "assets" / "models" / name))


def as_image(image: Any, name: str = "image") -> np.ndarray:
    """A path, an RGB array (any of `to_rgb_uint8`'s forms) or a PIL image -> RGB uint8 [H, W, 3]."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image without importing PIL
        return to_rgb_uint8(np.asarray(image.convert("RGB")), name)
    if isinstance(image, np.ndarray):
        return to_rgb_uint8(image, name)
    raise TypeError(f"{name}: expected a path, a numpy array or a PIL image, got {type(image).__name__}")


class Landmarker:
    """Detects faces and localises their landmarks.

    Args:
        model: a checkpoint or cascade file (``.pt``), an ONNX cascade folder/file, a ready
            `Cascade` (then ``backend``, ``device``, ``refine``, ``threads``, ``precision`` and
            ``orientation`` do not apply), or
            None for the shipped 300-W CNN-6/7 cascade.
        detector: a detector name (``default``, ``blazeface``, ``yunet``, ``yunet-first``), a
            `wingface.detection.FaceDetector`, or None to require boxes.
        device: ``cpu`` or ``cuda`` (PyTorch backend).
        backend: ``torch``, ``onnx``, or None: ``onnx`` for an ONNX export folder or file,
            ``torch`` for a ``.pt`` file.
        refine: how many times the last (aligned) stage runs.
        precision: ``fp32``, ``bf16`` (PyTorch autocast; fp32 with a log line on a CPU
            without native bfloat16), ``int8`` (onnxruntime on an int8 export; for the
            shipped model, its bundled export) or ``auto``: for the shipped model the
            fastest of these within 1% of fp32's accuracy (int8 on a CPU, which also
            spares importing torch), otherwise the file's own arithmetic. `precision`
            holds what runs.
        orientation: run the cascade's orientation stage, if it has one, which reads faces
            at any roll; False takes every face as near upright in its box and skips it, and
            the stages only rolled faces need (`without_orientation`): for the shipped model
            stage 2 alone, the fastest mode, for faces within about 20 degrees of upright, on
            which results are unchanged.
        threads: onnxruntime intra-op threads (``onnx`` backend; None: all cores). The
            PyTorch backend follows ``torch.set_num_threads``.
        scheme: if given, the landmark scheme name the model must have (ValueError otherwise);
            by default any scheme is accepted and each `Face` carries the model's.
        flip_test: average every network's output with its output on the mirrored crop
            (twice the network time, slightly more accurate); not for a ready `Cascade`.

    Raises:
        FileNotFoundError: the model file or folder does not exist (for the default model:
            the shipped model is not installed).
        ValueError: a corrupt or foreign model file, stages that disagree on the scheme, or
            a scheme other than ``scheme``.
    """

    def __init__(self, model: str | Path | Cascade | None = None, detector: Any = "default", *, device: str = "cpu",
                 backend: str | None = None, refine: int = 1, threads: int | None = None,
                 scheme: str | None = None, flip_test: bool = False, precision: str = "auto",
                 orientation: bool = True) -> None:
        if isinstance(model, Cascade):  # stages built in memory (e.g. the mean-shape baseline)
            self.model_path, self.cascade = None, model
            self._precision = getattr(model.stages[0].backend, "precision", "fp32")
        else:
            if model is None:
                precision, backend = self._shipped_choice(precision, backend, device)
            self.model_path = self._model_path(model, precision)
            stages = load_stages(self.model_path, backend=backend, device=device, threads=threads, precision=precision)
            self._precision = getattr(stages[0].backend, "precision", "fp32")
            if not orientation:
                stages = without_orientation(stages)
            if flip_test:
                stages = [Stage(s.spec, mirror_averaged(s.backend, s.spec.scheme)) for s in stages]
            self.cascade = Cascade(stages, repeat_last=refine)
        if scheme is not None and self.scheme.name != scheme:
            raise ValueError(f"model {self.model_path or 'in memory'}: landmark scheme is {self.scheme.name!r} "
                             f"({self.scheme.num_points} points), expected {scheme!r}")
        self._detector_arg = detector
        self._detector = None

    @staticmethod
    def _shipped_choice(precision: str, backend: str | None, device: str) -> tuple[str, str | None]:
        """(precision, backend) that run the shipped model at ``precision``."""
        if precision == "auto":
            precision = SHIPPED_AUTO_PRECISION if device == "cpu" and backend != "torch" else "fp32"
        return precision, ("onnx" if precision == "int8" and backend is None else backend)

    @staticmethod
    def _model_path(model: str | Path | None, precision: str) -> Path:
        if model is not None and not isinstance(model, (str, Path)):
            raise TypeError(f"model: expected a path, a Cascade or None, got {type(model).__name__}")
        path = Path(model) if model is not None else default_model_path(precision)
        if model is None and not path.exists():
            raise FileNotFoundError(f"the shipped model is not installed ({path}); pass model=PATH")
        return path

    @property
    def scheme(self):
        return self.cascade.scheme

    @property
    def precision(self) -> str:
        """The arithmetic the networks run at: ``fp32``, ``bf16`` or ``int8``."""
        return self._precision

    @property
    def detector(self):
        """The face detector, created on first use."""
        if self._detector is None and self._detector_arg is not None:
            from ..detection import create_detector

            arg = self._detector_arg
            self._detector = create_detector(arg) if isinstance(arg, str) else arg
        return self._detector

    def predict(self, image: Any, boxes: Sequence[Sequence[float]] | None = None,
                min_confidence: float | None = None) -> list[Face]:
        """Faces in one image, largest detector score first (or one per box, in order).

        Args:
            image: a path, an array (RGB uint8 [H, W, 3]; greyscale, RGBA, uint16 and float
                in [0, 1] are converted) or a PIL image.
            boxes: face boxes [[x0, y0, x1, y1], ...] in image pixels, or None to detect.
                A box partly outside the image is fine (the crop is padded with black); an
                empty list gives no faces.
        Returns:
            One `Face` per detected face or per box.
        Raises:
            FileNotFoundError: a path that does not exist.
            ValueError: an unreadable file, an unusable array, or a degenerate, inverted,
                non-finite or wholly outside box (the message names it).
            TypeError: an image of another type.

        ``min_confidence`` drops faces whose `Face.confidence` is below it (a hopeless fit is
        otherwise still returned, with a low confidence); faces of a model without an error
        head have no confidence and are all dropped when it is set.
        """
        return self.predict_batch([image], None if boxes is None else [boxes], min_confidence)[0]

    def predict_batch(self, images: Sequence[Any], boxes: Sequence[Sequence[Sequence[float]]] | None = None,
                      min_confidence: float | None = None) -> list[list[Face]]:
        """Like `predict` for many images; all faces go through each network as one batch."""
        if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1] or None, got {min_confidence!r}")
        if isinstance(images, (str, Path, np.ndarray)) or hasattr(images, "convert"):
            raise TypeError("images: expected a sequence of images (for one image use predict)")
        if boxes is not None and len(boxes) != len(images):
            raise ValueError(f"boxes: got {len(boxes)} box lists for {len(images)} images")
        arrays = [as_image(img, f"images[{i}]") for i, img in enumerate(images)]
        if not arrays:
            return []
        found = [self._given(a, b, i) if boxes is not None else self._detect(a) for i, (a, b) in
                 enumerate(zip(arrays, boxes if boxes is not None else [None] * len(arrays)))]
        squares, meta, upright, shapes = zip(*found)
        outputs = self.cascade.run(arrays, squares, upright, shapes)
        faces = [[self._face(out, *info) for out, info in zip(image_out, image_meta)]
                 for image_out, image_meta in zip(outputs, meta)]
        if min_confidence is None:
            return faces
        # A NaN confidence (no error head) never passes a threshold that was asked for.
        return [[f for f in image_faces if f.confidence >= min_confidence] for image_faces in faces]

    def predict_from_points(self, image: Any, points: Sequence[np.ndarray]) -> list[Face]:
        """Faces followed from earlier landmarks, one per shape in ``points`` ([L, 2] each,
        image pixels; e.g. the previous frame's in a video): the cascade starts from their box
        turned by their roll, so its orientation stage is skipped and any roll is followed
        (see `Cascade.follow`). Each `Face` has its new points' box, score 1.0 and angle 0.

        Raises:
            ValueError: a shape that is not [L, 2] for this model's scheme, or not finite.
        """
        array = as_image(image)
        shapes = [np.asarray(p, dtype=np.float64) for p in points]
        for i, shape in enumerate(shapes):
            if shape.shape != (self.scheme.num_points, 2) or not np.all(np.isfinite(shape)):
                raise ValueError(f"points[{i}]: expected finite [{self.scheme.num_points}, 2] landmarks, "
                                 f"got shape {list(shape.shape)}")
        if not shapes:
            return []
        output = self.cascade.follow([array], [np.stack(shapes)])[0]
        return [self._face(out, box_from_points(out[:, :2]), 1.0, 0.0) for out in output]

    def _face(self, output: np.ndarray, box: np.ndarray, score: float, angle: float) -> Face:
        """A `Face` from one cascade output [L, C] (x, y[, expected error])."""
        points = output[:, :2]
        face_conf, point_conf = confidences(points, output[:, 2] if output.shape[-1] > 2 else None, self.scheme)
        return Face(points, box, score, angle, self.scheme, face_conf, point_conf)

    def _given(self, image: np.ndarray, boxes: Sequence[Sequence[float]], index: int):
        if len(boxes) == 4 and all(isinstance(v, (int, float, np.number)) for v in boxes):
            raise ValueError(f"boxes[{index}]: expected a list of boxes [[x0, y0, x1, y1], ...], got one box "
                             f"{list(boxes)}; wrap it in a list")
        h, w = image.shape[:2]
        checked = np.array([check_box(b, (w, h), name=f"boxes[{index}][{k}]") for k, b in enumerate(boxes)]).reshape(-1, 4)
        squares = Squares(box_center(checked), box_size(checked).max(-1), np.zeros(len(checked)))
        # Boxes come without keypoints: nothing vouches for the faces being upright.
        upright, shapes = np.zeros(len(checked), dtype=bool), np.full((len(checked), self.scheme.num_points, 2), np.nan)
        return squares, [(b, 1.0, 0.0) for b in checked], upright, shapes

    def _detect(self, image: np.ndarray):
        if self.detector is None:
            raise ValueError("no detector configured: pass boxes=[(x0, y0, x1, y1), ...]")
        detections = self.detector.detect(image)
        squares = [self.detector.landmark_square(d) for d in detections]
        centers = np.array([s[0] for s in squares]).reshape(-1, 2)
        sides = np.array([s[1] for s in squares], dtype=np.float64)
        angles = np.array([s[2] for s in squares], dtype=np.float64)
        return (Squares(centers, sides, angles), [(d.box, d.score, d.angle) for d in detections],
                *self._keypoint_readings(detections))

    def _keypoint_readings(self, detections) -> tuple[np.ndarray, np.ndarray]:
        """(upright bool [N], shapes [N, L, 2] image pixels) for `Cascade.run`: for a 68-point
        model, the mean shape placed on each face's detector keypoints
        (`FaceDetector.keypoint_shape`; NaN where there is none), and whether the face is
        upright in its square: that shape's eye line lies within the cascade's de-rotation
        limit of the face's angle and the detector is sure of the face (score at least
        `WEAK_SCORE`; under it the detector cascade itself doubts the orientation, and a face
        of 300w-common turned 135 degrees, found at 0.75 with its keypoints reading it nearly
        upright, is not). Such faces skip the orientation stage, and the shape is their
        earlier reading."""
        upright = np.zeros(len(detections), dtype=bool)
        shapes = np.full((len(detections), self.scheme.num_points, 2), np.nan)
        if self.scheme.name != "300w-68" or self.cascade.derotate is None:
            return upright, shapes
        for i, detection in enumerate(detections):
            shape = self.detector.keypoint_shape(detection)
            if shape is not None:
                shapes[i] = shape
                upright[i] = detection.score >= WEAK_SCORE
        if upright.any():
            angles = np.array([d.angle for d in detections])
            upright[upright] = self.cascade.reads_upright(shapes[upright], angles[upright])
        return upright, shapes
