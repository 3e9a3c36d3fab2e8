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
from .transforms import apply_affine, compose_affine, invert_affine, linear_determinant, similarity_matrix


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
    ang = np.asarray(angle, dtype=np.float64)
    # Undo the square's rotation: rotate image content clockwise by `angle` (matrix R(-angle)),
    # taking the centre onto the crop's middle.
    mid = (size - 1) / 2.0
    return similarity_matrix(np.cos(ang) * k, -np.sin(ang) * k, c[..., 0], c[..., 1], mid, mid)


def crop_matrix(box: np.ndarray, size: int, margin: float) -> np.ndarray:
    """[..., 2, 3] image->crop transforms for the model crop of [..., 4] boxes (upright)."""
    center, side = face_square(box, margin)
    return square_matrix(center, side, size)


def warp_image(image: np.ndarray, matrix: np.ndarray, size: int, border_value: int = 0) -> np.ndarray:
    """Warp an HxWxC uint8 image with an image->crop matrix [2, 3] into a size x size crop.

    Strong downscaling first shrinks, by an integer factor with area averaging, the part of
    the image the crop covers (never the whole image: a small face in a 12 MP photo costs
    what a face in a thumbnail does), so the crop is not aliased. Outside the image the crop
    is filled with ``border_value``.
    """
    m = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(linear_determinant(m))))
    factor = int(np.floor(1.0 / scale)) if scale < 0.5 else 1
    if factor > 1:
        image, m = _shrunk_footprint(image, m, size, factor)
    out = cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(border_value,) * 4,
    )
    return out.reshape(size, size, -1) if out.ndim == 2 else out


def _shrunk_footprint(image: np.ndarray, m: np.ndarray, size: int, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The image region under the crop, shrunk by ``factor`` (area averaging of whole
    factor x factor blocks of the image grid), and the matrix from that small image to the crop."""
    h, w = image.shape[:2]
    corners = np.array([[-1, -1], [size, -1], [-1, size], [size, size]], dtype=np.float64)
    footprint = apply_affine(invert_affine(m), corners)
    # Whole blocks, one block of slack for the bilinear taps, clipped to the image's blocks.
    x0, y0 = (np.floor(footprint.min(axis=0) / factor) - 1).astype(int)
    x1, y1 = (np.ceil(footprint.max(axis=0) / factor) + 1).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, -(-w // factor)), min(y1, -(-h // factor))
    if x1 <= x0 or y1 <= y0:  # the crop lies wholly outside the image: nothing to shrink
        return image, m
    region = image[y0 * factor:y1 * factor, x0 * factor:x1 * factor]
    short_y, short_x = (y1 - y0) * factor - region.shape[0], (x1 - x0) * factor - region.shape[1]
    if short_y or short_x:  # a partial block at the image's right or bottom edge
        region = cv2.copyMakeBorder(region, 0, short_y, 0, short_x, cv2.BORDER_REPLICATE)
    small = cv2.resize(region, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    # small pixel centre i sits at original position (x0 + i + 0.5) * factor - 0.5
    to_original = np.array([[factor, 0, (x0 + 0.5) * factor - 0.5], [0, factor, (y0 + 0.5) * factor - 0.5]])
    return small, compose_affine(m, to_original)
