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
    # Closed form, filled in place: np.linalg.inv and np.stack cost several times more on
    # the one or few matrices of an inference call.
    a, b, c, d, tx, ty = (m[..., i, j] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (1, 2)))
    det = linear_determinant(m)
    out = np.empty(m.shape[:-2] + (2, 3))
    out[..., 0, 0], out[..., 0, 1] = d / det, -b / det
    out[..., 1, 0], out[..., 1, 1] = -c / det, a / det
    out[..., 0, 2] = (b * ty - d * tx) / det
    out[..., 1, 2] = (c * tx - a * ty) / det
    return out


def linear_determinant(matrix: np.ndarray) -> np.ndarray:
    """[...] determinants of the linear parts of [..., 2, 3] (or [..., 2, 2]) matrices."""
    m = np.asarray(matrix, dtype=np.float64)
    return m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] * m[..., 1, 0]


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The [..., 2, 3] transform that applies ``inner`` first, then ``outer``."""
    a = np.asarray(outer, dtype=np.float64)
    b = np.asarray(inner, dtype=np.float64)
    out = a[..., :, :2] @ b
    out[..., :, 2] += a[..., :, 2]
    return out


def angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` for angles in radians, wrapped into [-pi, pi] (elementwise)."""
    return np.angle(np.exp(1j * (np.asarray(a, dtype=np.float64) - b)))


def rotation_about(center: np.ndarray, angle: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """[..., 2, 3] rotation by ``angle`` radians (counter-clockwise as seen on screen, y down)
    and isotropic ``scale`` about ``center`` [..., 2]."""
    c = np.asarray(center, dtype=np.float64)
    ang = np.asarray(angle, dtype=np.float64)
    cos, sin = np.cos(ang) * scale, np.sin(ang) * scale
    # On screen with y pointing down, counter-clockwise means the matrix [[c, s], [-s, c]].
    return similarity_matrix(cos, sin, c[..., 0], c[..., 1], c[..., 0], c[..., 1])


def similarity_matrix(cos: np.ndarray, sin: np.ndarray, x: np.ndarray, y: np.ndarray, to_x: np.ndarray,
                      to_y: np.ndarray) -> np.ndarray:
    """[..., 2, 3] similarities with linear part [[cos, sin], [-sin, cos]] (already scaled)
    that map the point (x, y) onto (to_x, to_y); all arguments broadcast."""
    cos, sin, x, y, to_x, to_y = np.broadcast_arrays(cos, sin, x, y, to_x, to_y)
    out = np.empty(cos.shape + (2, 3))
    out[..., 0, 0], out[..., 0, 1], out[..., 1, 0], out[..., 1, 1] = cos, sin, -sin, cos
    out[..., 0, 2] = to_x - (cos * x + sin * y)
    out[..., 1, 2] = to_y - (cos * y - sin * x)
    return out


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
    return similarity_matrix(a.real, -a.imag, 0.0, 0.0, t.real, t.imag)


def similarity_params(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale and rotation angle (radians, the convention of `rotation_about`) of similarity matrices."""
    m = np.asarray(matrix, dtype=np.float64)
    scale = np.hypot(m[..., 0, 0], m[..., 0, 1])
    angle = np.arctan2(m[..., 0, 1], m[..., 0, 0])
    return scale, angle
