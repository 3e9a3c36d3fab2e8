"""Face squares of a batch of shapes, in source-crop pixels (numpy, float64).

A face square is a centre (x, y), a side in pixels and an in-plane angle in radians
(counter-clockwise on screen, the convention of `wingface.geometry.square_matrix`); the
model crop covers it exactly. Stage 1 squares come from the landmarks' tight box; stage 2
squares come from a similarity alignment to a reference shape, so the crop shows the face
upright and at a normalised size.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .boxes import box_center, box_from_points, box_size
from .crops import face_square
from .transforms import apply_affine, fit_similarity, invert_affine, rotation_about, similarity_params

__all__ = ["ALIGNED_CROPS", "CROP_MODES", "Squares", "crop_squares", "squares_from_alignment", "squares_from_points",
           "upright_box"]

# How a stage crops the face (`wingface.spec.ModelSpec.crop`): the square of the shape's box,
# or one of the aligned frames, which follow earlier points (`squares_from_alignment`).
ALIGNED_CROPS = ("aligned", "aligned-centred")
CROP_MODES = ("box", *ALIGNED_CROPS)


class Squares(NamedTuple):
    """Face squares of N faces: ``center`` [N, 2] and ``side`` [N] in source pixels,
    ``angle`` [N] radians (counter-clockwise on screen); all float64."""

    center: np.ndarray
    side: np.ndarray
    angle: np.ndarray


def squares_from_points(points: np.ndarray, margin: float) -> Squares:
    """Stage-1 squares: centred on each shape's tight box, side ``max(w, h) * (1 + margin)``.

    Args:
        points: [N, L, 2] pixel coordinates; NaN points (missing) are ignored.
        margin: enlargement of the box's longer side (0.25 = the paper's 25%).
    Returns:
        `Squares` with zero angles.
    """
    pts = _check_points(points)
    center, side = face_square(box_from_points(pts), margin)
    return Squares(center, side, np.zeros(len(pts)))


def crop_squares(points: np.ndarray, crop: str, reference: np.ndarray | None, margin: float) -> Squares:
    """The squares of shapes [N, L, 2] for crop mode ``crop`` (one of `CROP_MODES`): their
    box squares (`squares_from_points`) or an aligned frame (`squares_from_alignment`;
    ``reference`` [L, 2] is needed then)."""
    if crop == "box":
        return squares_from_points(points, margin)
    return squares_from_alignment(points, reference, margin, centred=crop == "aligned-centred")


def squares_from_alignment(points: np.ndarray, reference: np.ndarray, margin: float,
                           centred: bool = False) -> Squares:
    """Stage-2 squares: the reference shape's face square mapped back into each image.

    A similarity (rotation, scale, shift) is fitted from each shape to ``reference``; the
    square of the reference's tight box (with ``margin``) is carried back through its
    inverse, so the crop shows the face rotated upright and scaled like the reference.
    With ``centred`` the square keeps that angle and side but is centred on the shape's own
    box in the upright frame: a head turned far to the side fits the frontal reference off
    centre, and the reference's square would cut off its far contour.

    Args:
        points: [N, L, 2] pixel coordinates; NaN points (missing) get zero weight.
        reference: [L, 2] mean shape in any frame (e.g. a model's mean shape), all finite.
        margin: enlargement of the reference box's longer side.
        centred: centre each square on its shape's box (in the square's upright frame).
    Returns:
        `Squares` in the images' pixels, with the rotation in ``angle``.
    """
    pts = _check_points(points)
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != pts.shape[1:] or not np.all(np.isfinite(ref)):
        raise ValueError(f"reference: expected finite [{pts.shape[1]}, 2] points, got shape {ref.shape}")
    known = np.all(np.isfinite(pts), axis=-1)
    if np.any(known.sum(-1) < 2):
        raise ValueError("points: every shape needs at least two known (finite) points to align")
    to_ref = fit_similarity(np.where(known[..., None], pts, 0.0), ref, weights=known.astype(np.float64))
    ref_center, ref_side = face_square(box_from_points(ref), margin)
    scale, rotation = similarity_params(to_ref)
    # `to_ref` turns content by `rotation`; the square that undoes it has the opposite angle.
    if centred:
        center = upright_box(pts, -rotation)[0]
    else:
        center = apply_affine(invert_affine(to_ref), ref_center[None, None, :])[:, 0]
    return Squares(center, ref_side / scale, -rotation)


def upright_box(points: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The boxes of shapes [N, L, 2] measured in their frame turned by ``angle`` [N]
    (radians, counter-clockwise on screen): (centres [N, 2] in image pixels, sizes [N, 2]
    (width, height) in that frame); NaN points are ignored."""
    pivot = np.nanmean(points, axis=1)
    box = box_from_points(apply_affine(rotation_about(pivot, -angle), points))
    return apply_affine(rotation_about(pivot, angle), box_center(box)[:, None])[:, 0], box_size(box)


def _check_points(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[-1] != 2 or pts.shape[1] < 1:
        raise ValueError(f"points: expected shape [N, L, 2], got {pts.shape}")
    return pts
