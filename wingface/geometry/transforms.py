"""Batched 2x3 affine transforms and least-squares similarity fitting (numpy, float64)."""

from __future__ import annotations

import numpy as np


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points through affine matrices.

    Args:
        matrix: [..., 2, 3] transforms.
        points: [..., L, 2] points; leading dims broadcast with ``matrix``'s.
    Returns:
        [..., L, 2] float64 mapped points.
    """
    m = np.asarray(matrix, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    return p @ np.swapaxes(m[..., :, :2], -1, -2) + m[..., None, :, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of [..., 2, 3] affine matrices (must be non-singular)."""
    m = np.asarray(matrix, dtype=np.float64)
    lin_inv = np.linalg.inv(m[..., :, :2])
    shift = -(lin_inv @ m[..., :, 2:3])
    return np.concatenate([lin_inv, shift], axis=-1)


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The [..., 2, 3] transform that applies ``inner`` first, then ``outer``."""
    a = np.asarray(outer, dtype=np.float64)
    b = np.asarray(inner, dtype=np.float64)
    lin = a[..., :, :2] @ b[..., :, :2]
    shift = a[..., :, :2] @ b[..., :, 2:3] + a[..., :, 2:3]
    return np.concatenate([lin, shift], axis=-1)


def angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` for angles in radians, wrapped into [-pi, pi] (elementwise)."""
    return np.angle(np.exp(1j * (np.asarray(a, dtype=np.float64) - b)))


def rotation_about(center: np.ndarray, angle: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """[..., 2, 3] rotation by ``angle`` radians (counter-clockwise as seen on screen, y down)
    and isotropic ``scale`` about ``center`` [..., 2]."""
    c = np.asarray(center, dtype=np.float64)
    ang = np.asarray(angle, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    cos, sin = np.cos(ang) * s, np.sin(ang) * s
    # On screen with y pointing down, counter-clockwise means the matrix [[c, s], [-s, c]].
    lin = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)
    shift = c[..., :, None] - lin @ c[..., :, None]
    return np.concatenate([lin, shift], axis=-1)


def fit_similarity(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares similarity (rotation, isotropic scale, shift) mapping source onto target.

    Args:
        source, target: [..., L, 2] corresponding points.
        weights: optional [..., L] non-negative weights (e.g. visibility).
    Returns:
        [..., 2, 3] transforms M with ``apply_affine(M, source) ~= target``.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    w = np.ones(src.shape[:-1]) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / np.maximum(w.sum(-1, keepdims=True), 1e-12)
    zs = src[..., 0] + 1j * src[..., 1]
    zd = dst[..., 0] + 1j * dst[..., 1]
    ms = (w * zs).sum(-1, keepdims=True)
    md = (w * zd).sum(-1, keepdims=True)
    cs, cd = zs - ms, zd - md
    a = (w * np.conj(cs) * cd).sum(-1) / np.maximum((w * np.abs(cs) ** 2).sum(-1), 1e-12)
    t = md[..., 0] - a * ms[..., 0]
    lin = np.stack([np.stack([a.real, -a.imag], -1), np.stack([a.imag, a.real], -1)], -2)
    return np.concatenate([lin, np.stack([t.real, t.imag], -1)[..., None]], axis=-1)


def similarity_params(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale and rotation angle (radians, the convention of `rotation_about`) of similarity matrices."""
    m = np.asarray(matrix, dtype=np.float64)
    scale = np.hypot(m[..., 0, 0], m[..., 0, 1])
    angle = np.arctan2(m[..., 0, 1], m[..., 0, 0])
    return scale, angle
