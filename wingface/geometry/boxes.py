"""Axis-aligned boxes (x0, y0, x1, y1) in 0-based pixel coordinates."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def box_from_points(points: np.ndarray) -> np.ndarray:
    """Tight box of each shape: [..., L, 2] points -> [..., 4] (x0, y0, x1, y1), float64.

    NaN points (missing annotations) are ignored.
    """
    p = np.asarray(points, dtype=np.float64)
    lo = np.nanmin(p, axis=-2)
    hi = np.nanmax(p, axis=-2)
    return np.concatenate([lo, hi], axis=-1)


def box_center(box: np.ndarray) -> np.ndarray:
    """[..., 4] boxes -> [..., 2] centres."""
    b = np.asarray(box, dtype=np.float64)
    return (b[..., :2] + b[..., 2:]) / 2


def box_size(box: np.ndarray) -> np.ndarray:
    """[..., 4] boxes -> [..., 2] (width, height)."""
    b = np.asarray(box, dtype=np.float64)
    return b[..., 2:] - b[..., :2]


def clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip [..., 4] boxes to the image's pixel area [-0.5, size - 0.5]."""
    b = np.asarray(box, dtype=np.float64).copy()
    b[..., 0::2] = b[..., 0::2].clip(-0.5, width - 0.5)
    b[..., 1::2] = b[..., 1::2].clip(-0.5, height - 0.5)
    return b


def check_box(box: Sequence[float], image_size: tuple[int, int] | None = None, name: str = "box") -> np.ndarray:
    """Validate one box and return it as float64 [4].

    A box may extend past the image (the crop is padded), but it must be finite, have
    positive width and height, and overlap the image when ``image_size`` (width, height)
    is given. Raises ValueError naming ``name`` otherwise.
    """
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected 4 numbers (x0, y0, x1, y1), got {box!r}") from None
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise ValueError(f"{name}: expected 4 finite numbers (x0, y0, x1, y1), got {box!r}")
    if b[2] <= b[0] or b[3] <= b[1]:
        raise ValueError(f"{name}: degenerate or inverted box {b.tolist()} (need x1 > x0 and y1 > y0)")
    if image_size is not None:
        w, h = image_size
        if b[2] < -0.5 or b[3] < -0.5 or b[0] > w - 0.5 or b[1] > h - 0.5:
            raise ValueError(f"{name}: box {b.tolist()} lies entirely outside the {w}x{h} image")
    return b
