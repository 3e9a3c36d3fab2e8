"""`BatchAugmenter`: a whole training batch of cached face crops -> model inputs in one warp.

Per batch it draws every random parameter at once from a `torch.Generator` (so a seed
fixes the batch), jitters the face squares, mirrors some faces, warps all crops with one
``grid_sample`` and applies the photometric operations vectorised over the batch. Points
are mapped with exactly the matrices the pixels are warped with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import Squares, squares_from_points
from ..schemes import LandmarkScheme
from .config import AugmentConfig
from .geometric import jitter_squares, output_matrices, rotated_box_growth, transform_points, warp_batch
from .photometric import adjust_colour, gaussian_blur, occlude

__all__ = ["AugmentedBatch", "BatchAugmenter"]


@dataclass
class AugmentedBatch:
    """Model inputs and targets of one batch.

    Attributes:
        images: float32 [N, 3, S, S], values 0..255, on the source images' device.
        points: float32 [N, L, 2] in output-crop pixels (0-based pixel centres), same device.
        visible: bool [N, L] (reordered like the points for mirrored faces), same device, or None.
        matrices: numpy float64 [N, 2, 3] source-crop -> output-crop pixel transforms
            (including the mirror of flipped faces).
        flipped: numpy bool [N], which faces were mirrored (their points are reordered by
            the scheme's flip permutation).
    """

    images: torch.Tensor
    points: torch.Tensor
    visible: torch.Tensor | None
    matrices: np.ndarray
    flipped: np.ndarray


class BatchAugmenter:
    """Crops and augments batches of cached face crops for one model contract.

    Args:
        config: the augmentation settings used in train mode.
        scheme: the landmark scheme (its flip permutation reorders mirrored points).
        out_size: S, the model input side in pixels.
        margin: the face-square margin of the model (0.25 = the paper's 25%).
    """

    def __init__(self, config: AugmentConfig, scheme: LandmarkScheme, out_size: int, margin: float = 0.25):
        if isinstance(out_size, bool) or not isinstance(out_size, int) or out_size < 1:
            raise ValueError(f"out_size: expected a positive integer, got {out_size!r}")
        if not margin >= 0:
            raise ValueError(f"margin: expected a non-negative number, got {margin!r}")
        self.config = config
        self.scheme = scheme
        self.out_size = out_size
        self.margin = float(margin)
        self._permutation = scheme.flip_permutation

    def __call__(
        self,
        images: torch.Tensor | np.ndarray,
        points: torch.Tensor | np.ndarray,
        visible: torch.Tensor | np.ndarray | None = None,
        *,
        squares: Squares | None = None,
        train: bool = True,
        generator: torch.Generator | None = None,
    ) -> AugmentedBatch:
        """Augment (``train=True``) or just crop (``train=False``, deterministic) a batch.

        Args:
            images: uint8 [N, H, W, 3] RGB source crops (torch, any device, or numpy).
            points: [N, L, 2] points in source-crop pixels; NaN marks a missing point.
            visible: optional bool [N, L].
            squares: face squares in source pixels; default `squares_from_points(points, margin)`.
            train: draw random jitter, flips and photometric changes.
            generator: source of randomness (its device's RNG); None uses torch's global RNG.
        Returns:
            `AugmentedBatch`.
        """
        images = _as_images(images)
        pts = self._as_points(points, images.shape[0])
        vis = None if visible is None else _as_visible(visible, pts.shape[:2]).to(images.device)
        if squares is None:
            squares = squares_from_points(pts, self.margin)
        elif len(squares.side) != len(pts):
            raise ValueError(f"squares: {len(squares.side)} squares for {len(pts)} faces")
        flip = np.zeros(len(pts), dtype=bool)
        if train:
            squares, flip = self._jitter(squares, generator, pts)
        matrices = output_matrices(squares, self.out_size, flip)
        out = warp_batch(images, matrices, self.out_size)
        if train:
            out = self._photometric(out, generator)
        out_points = transform_points(pts, matrices, flip, self._permutation)
        if vis is not None and flip.any():
            rows = torch.as_tensor(flip, device=vis.device)
            vis = vis.clone()
            vis[rows] = vis[rows][:, torch.as_tensor(self._permutation, device=vis.device)]
        return AugmentedBatch(
            images=out,
            points=torch.as_tensor(out_points, dtype=torch.float32, device=images.device),
            visible=vis,
            matrices=matrices,
            flipped=flip,
        )

    def _jitter(self, squares: Squares, generator: torch.Generator | None,
                points: np.ndarray) -> tuple[Squares, np.ndarray]:
        """Draw rotation, shift, zoom and flip for every face; returns jittered squares and flips."""
        cfg = self.config
        u = 2 * _uniform((len(squares.side), 5), generator, torch.float64).cpu().numpy() - 1  # in [-1, 1)
        rotation = u[:, 0] * math.radians(cfg.rotation_deg)
        shift = u[:, 1:3] * cfg.shift
        zoom = np.exp(u[:, 3] * math.log1p(cfg.scale))
        flip = (u[:, 4] + 1) / 2 < cfg.flip
        if cfg.rotated_box:
            zoom = zoom * rotated_box_growth(points, squares, rotation)
        return jitter_squares(squares, rotation, shift, zoom), flip

    def _photometric(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Blur, colour jitter and occlusion with per-sample random parameters; clamps to 0..255."""
        cfg = self.config
        n, s = images.shape[0], images.shape[-1]
        u = _uniform((n, 15), generator, torch.float32).to(images.device)
        chosen = (u[:, 0] < cfg.blur).nonzero()[:, 0]
        if len(chosen):
            low, high = cfg.blur_sigma
            images[chosen] = gaussian_blur(images[chosen], low + u[chosen, 1] * (high - low))
        if cfg.brightness or cfg.contrast or cfg.saturation or cfg.greyscale:
            factors = 1 + (2 * u[:, 2:5] - 1) * torch.tensor(
                [cfg.brightness, cfg.contrast, cfg.saturation], device=images.device
            )
            images = adjust_colour(images, factors[:, 0], factors[:, 1], factors[:, 2], u[:, 5] < cfg.greyscale)
        chosen = (u[:, 6] < cfg.occlusion).nonzero()[:, 0]
        if len(chosen):
            images[chosen] = occlude(images[chosen], *self._occluders(u[chosen, 7:], s, generator))
        return images.clamp_(0, 255)

    def _occluders(
        self, u: torch.Tensor, size: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rectangles [K, 4] and fills (a random colour, or uniform noise half the time) from
        uniforms u [K, 8]: centre x, y; width, height; noise flag; colour r, g, b."""
        low, high = self.config.occlusion_side
        half = (low + u[:, 2:4] * (high - low)) * size / 2
        centre = u[:, 0:2] * size - 0.5
        rects = torch.cat([centre - half, centre + half], dim=1)
        fill = (u[:, 5:8] * 255)[:, :, None, None].repeat(1, 1, size, size)
        noisy = (u[:, 4] < 0.5).nonzero()[:, 0]
        if len(noisy):
            fill[noisy] = _uniform((len(noisy), 3, size, size), generator, torch.float32).to(u.device) * 255
        return rects, fill

    def _as_points(self, points: torch.Tensor | np.ndarray, n: int) -> np.ndarray:
        pts = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
        expected = (n, self.scheme.num_points, 2)
        if pts.shape != expected:
            raise ValueError(f"points: expected shape {list(expected)} for scheme {self.scheme.name!r}, "
                             f"got {list(pts.shape)}")
        return pts.astype(np.float64)


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype) -> torch.Tensor:
    """Uniform [0, 1) draws on the generator's device (the CPU for the global RNG)."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


def _as_images(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"images: expected a torch tensor or numpy array, got {type(images).__name__}")
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"images: expected uint8 [N, H, W, 3], got {t.dtype} {list(t.shape)}")
    return t


def _as_visible(visible: torch.Tensor | np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    vis = torch.as_tensor(visible)
    if tuple(vis.shape) != tuple(shape):
        raise ValueError(f"visible: expected shape {list(shape)}, got {list(vis.shape)}")
    return vis.bool()
