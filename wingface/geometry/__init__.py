"""Geometry: boxes, 2-D similarity/affine transforms, the face-crop convention and face squares.

Coordinate convention, used everywhere in wingface: points are 0-based pixel coordinates
(x, y) in which integer values are pixel centres; pixel (i, j) covers [i - 0.5, i + 0.5].
Boxes are (x0, y0, x1, y1) in the same coordinates. A transform is a 2x3 float64 affine
matrix M mapping a point p to ``M[:, :2] @ p + M[:, 2]``.
"""

from .boxes import box_center, box_from_points, box_size, check_box, clip_box
from .crops import crop_matrix, face_square, square_matrix, warp_image
from .squares import (ALIGNED_CROPS, CROP_MODES, Squares, crop_squares, squares_from_alignment, squares_from_points,
                      upright_box)
from .transforms import (
    angle_difference,
    apply_affine,
    compose_affine,
    fit_similarity,
    invert_affine,
    linear_determinant,
    rotation_about,
    similarity_params,
)

__all__ = [
    "ALIGNED_CROPS", "CROP_MODES", "Squares", "crop_squares", "angle_difference", "apply_affine", "box_center",
    "box_from_points", "box_size", "check_box",
    "clip_box", "compose_affine", "crop_matrix", "face_square", "fit_similarity", "invert_affine",
    "linear_determinant", "rotation_about", "similarity_params", "square_matrix", "squares_from_alignment",
    "squares_from_points", "upright_box", "warp_image",
]
