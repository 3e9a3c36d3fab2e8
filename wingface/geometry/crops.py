"""The face-crop convention: which square of the image a model sees, and the warp to it.

A face square is a centre (x, y), a side in pixels and an in-plane angle. From a box, the
square is centred on the box and its side is ``max(width, height) * (1 + margin)``; the
paper enlarges boxes by 25% (margin 0.25). The crop of ``size`` pixels covers the square
exactly: its outer pixel edges map onto the square's edges.
"""

from __future__ import annotations

import cv2
import numpy as np

from .boxes import box_center, box_size
from .transforms import compose_affine


def face_square(box: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """[..., 4] boxes -> (centres [..., 2], sides [...]) of the enlarged face squares."""
    side = box_size(box).max(axis=-1) * (1.0 + margin)
    return box_center(box), side


def square_matrix(center: np.ndarray, side: np.ndarray, size: int, angle: np.ndarray | float = 0.0) -> np.ndarray:
    """[..., 2, 3] image->crop transforms for squares of ``side`` px centred at ``center``.

    ``angle`` (radians) is the square's in-plane rotation in the image (counter-clockwise on
    screen); the crop shows it upright. Crop pixel centres run 0..size-1.
    """
    c = np.asarray(center, dtype=np.float64)
    k = size / np.asarray(side, dtype=np.float64)
    ang = np.asarray(angle, dtype=np.float64) + np.zeros_like(k)
    # Undo the square's rotation: rotate image content clockwise by `angle` (matrix R(-angle)).
    cos, sin = np.cos(ang) * k, np.sin(ang) * k
    lin = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    mid = (size - 1) / 2.0
    shift = mid - (lin @ c[..., :, None])[..., 0]
    return np.concatenate([lin, shift[..., None]], axis=-1)


def crop_matrix(box: np.ndarray, size: int, margin: float) -> np.ndarray:
    """[..., 2, 3] image->crop transforms for the model crop of [..., 4] boxes (upright)."""
    center, side = face_square(box, margin)
    return square_matrix(center, side, size)


def warp_image(image: np.ndarray, matrix: np.ndarray, size: int, border_value: int = 0) -> np.ndarray:
    """Warp an HxWxC uint8 image with an image->crop matrix [2, 3] into a size x size crop.

    Strong downscaling first shrinks the image by an integer factor with area averaging, so
    the crop is not aliased. Outside the image the crop is filled with ``border_value``.
    """
    m = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    factor = int(np.floor(1.0 / scale)) if scale < 0.5 else 1
    if factor > 1:
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
        sx, sy = small.shape[1] / w, small.shape[0] / h
        # small pixel centre i sits at original position (i + 0.5) / s - 0.5
        to_original = np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5]])
        m = compose_affine(m, to_original)
        image = small
    out = cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(border_value,) * 4,
    )
    return out.reshape(size, size, -1) if out.ndim == 2 else out
