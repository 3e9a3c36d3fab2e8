"""Geometric augmentation as pure functions: jittered squares, crop matrices, one batched warp.

Matrices are numpy float64 [N, 2, 3] mapping source-crop pixels to output-crop pixels
(0-based, integers are pixel centres). The warp is a single ``grid_sample`` over the
batch with ``align_corners=False`` (grid as ``affine_grid`` builds it), in which normalised
-1 is the outer edge of the first pixel: pixel centre i of a W-pixel axis sits at
(2i + 1) / W - 1.
Areas outside the source crop are filled with 0 (black), as `wingface.geometry.warp_image`
does by default.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry import (Squares, apply_affine, box_from_points, box_size, compose_affine, invert_affine,
                        linear_determinant, rotation_about, square_matrix)

__all__ = ["jitter_squares", "output_matrices", "rotated_box_growth", "transform_points", "warp_batch"]


def jitter_squares(squares: Squares, rotation: np.ndarray, shift: np.ndarray, zoom: np.ndarray) -> Squares:
    """Apply per-face jitter to face squares.

    Args:
        squares: N squares in source pixels.
        rotation: [N] radians added to each square's angle (counter-clockwise on screen).
        shift: [N, 2] translation of each centre as a fraction of its side (image axes).
        zoom: [N] factor on each side (> 1 shows more context, the face looks smaller).
    Returns:
        The jittered `Squares`.
    """
    side = np.asarray(squares.side, dtype=np.float64)
    center = squares.center + np.asarray(shift, dtype=np.float64) * side[:, None]
    return Squares(center, side * zoom, squares.angle + rotation)


def rotated_box_growth(points: np.ndarray, squares: Squares, rotation: np.ndarray) -> np.ndarray:
    """[N] ratio of the landmark box's longer side seen in a square turned by ``rotation`` [N]
    radians to the one seen in the square as it is: how much larger the axis-aligned box of
    a face rolled by ``rotation`` in the image is. Points [N, L, 2] in source pixels."""

    def longer_side(angle: np.ndarray) -> np.ndarray:
        in_frame = apply_affine(rotation_about(squares.center, -angle), points)
        return box_size(box_from_points(in_frame)).max(-1)

    angle = np.asarray(squares.angle, dtype=np.float64)
    return longer_side(angle + rotation) / longer_side(angle)


def output_matrices(squares: Squares, out_size: int, flip: np.ndarray | None = None) -> np.ndarray:
    """[N, 2, 3] source->output matrices for crops of ``out_size`` pixels covering ``squares``.

    Where ``flip`` [N] bool is set, the crop is also mirrored horizontally (x -> S - 1 - x).
    """
    matrices = square_matrix(squares.center, squares.side, out_size, squares.angle)
    if flip is not None and np.any(flip):
        mirror = np.array([[-1.0, 0.0, out_size - 1.0], [0.0, 1.0, 0.0]])
        matrices[flip] = compose_affine(mirror, matrices[flip])
    return matrices


def transform_points(
    points: np.ndarray, matrices: np.ndarray, flip: np.ndarray | None = None, permutation: np.ndarray | None = None
) -> np.ndarray:
    """Map [N, L, 2] source points through [N, 2, 3] matrices; reorder mirrored faces.

    For faces with ``flip`` set, output point i is the mapped point ``permutation[i]``
    (the scheme's flip permutation), so left/right labels stay those of the subject.
    Returns float64 [N, L, 2] output-crop pixels (NaN stays NaN).
    """
    out = apply_affine(matrices, points)
    if flip is not None and np.any(flip):
        out[flip] = out[flip][:, permutation]
    return out


def warp_batch(images: torch.Tensor, matrices: np.ndarray, out_size: int) -> torch.Tensor:
    """Warp a batch of source crops into output crops with one ``grid_sample``.

    Args:
        images: uint8 [N, H, W, 3] source crops (RGB), on any device.
        matrices: [N, 2, 3] source->output matrices (pixel-centre convention).
        out_size: S, the output side in pixels.
    Returns:
        float32 [N, 3, S, S] on the images' device, values 0..255, bilinear, 0 outside.

    When every face is downscaled, the batch is first shrunk with an antialiased resize so
    that the least-shrunk face is sampled at about one source pixel per output pixel: this
    avoids aliasing (as `warp_image`'s area pre-shrink does) and, on the CPU, converts far
    fewer pixels to float. Normalised coordinates do not depend on the resolution, so the
    sampling grid is the same with or without the shrink.
    """
    n, h, w, _ = images.shape
    source = images.permute(0, 3, 1, 2)  # a channels-last view: no copy
    if source.device.type != "cpu":
        source = source.float()  # uint8 antialiased resize is a CPU kernel
    largest = float(np.sqrt(np.abs(linear_determinant(matrices))).max()) if n else 1.0
    if largest < 1.0:
        size = (max(1, math.ceil(h * largest)), max(1, math.ceil(w * largest)))
        source = F.interpolate(source, size=size, mode="bilinear", antialias=True, align_corners=False)
    theta = torch.as_tensor(_sampling_theta(matrices, (h, w), out_size), dtype=torch.float32, device=images.device)
    grid = _sampling_grid(theta, out_size)
    out = F.grid_sample(source.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.contiguous()


def _sampling_theta(matrices: np.ndarray, source_hw: tuple[int, int], out_size: int) -> np.ndarray:
    """[N, 2, 3] maps from normalised output coordinates to normalised source coordinates."""
    h, w = source_hw
    s = float(out_size)
    from_out = np.array([[s / 2, 0.0, (s - 1) / 2], [0.0, s / 2, (s - 1) / 2]])  # normalised -> pixels
    to_source = np.array([[2.0 / w, 0.0, 1.0 / w - 1], [0.0, 2.0 / h, 1.0 / h - 1]])  # pixels -> normalised
    return compose_affine(to_source, compose_affine(invert_affine(matrices), from_out))


def _sampling_grid(theta: torch.Tensor, out_size: int) -> torch.Tensor:
    """[N, S, S, 2] grid, equal to ``affine_grid(theta, align_corners=False)`` but built by
    broadcasting: several times faster on the CPU than its batched matrix product."""
    centres = (torch.arange(out_size, device=theta.device, dtype=theta.dtype) * 2 + 1) / out_size - 1
    t = theta[:, :, :, None, None]
    grid = torch.empty(len(theta), out_size, out_size, 2, device=theta.device, dtype=theta.dtype)
    for axis in (0, 1):  # normalised source x, then y
        torch.add(t[:, axis, 0] * centres, t[:, axis, 1] * centres[:, None], out=grid[..., axis])
        grid[..., axis] += t[:, axis, 2]
    return grid
