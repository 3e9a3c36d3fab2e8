"""Reading and normalising images: everything becomes RGB uint8 [H, W, 3]."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def to_rgb_uint8(array: np.ndarray, name: str = "image") -> np.ndarray:
    """Convert an image array to RGB uint8 [H, W, 3].

    Accepts greyscale [H, W] or [H, W, 1], RGB [H, W, 3] and RGBA [H, W, 4] (alpha dropped);
    uint8 as is, uint16 scaled by 1/257, floats in [0, 1]. Channel order is taken as RGB.
    Raises ValueError naming ``name`` for anything else.
    """
    a = np.asarray(array)
    if a.size == 0 or a.ndim not in (2, 3) or min(a.shape[:2]) < 1:
        raise ValueError(f"{name}: expected an image of shape (H, W) or (H, W, C), got shape {a.shape}")
    if a.ndim == 3 and a.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name}: expected 1, 3 or 4 channels, got {a.shape[2]}")
    a = _to_uint8(a, name)
    if a.ndim == 2 or a.shape[2] == 1:
        a = np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def _to_uint8(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return (a.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: float image contains NaN or inf")
        if a.min() < 0 or a.max() > 1:
            raise ValueError(f"{name}: float images must lie in [0, 1], got [{a.min():.3g}, {a.max():.3g}]")
        return np.round(a * 255).astype(np.uint8)
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    raise ValueError(f"{name}: unsupported pixel type {a.dtype} (use uint8, uint16 or float in [0, 1])")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3] (greyscale, 16-bit and RGBA are converted).

    Raises FileNotFoundError if the path does not exist and ValueError if it cannot be decoded.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image not found: {p}")
    data = np.fromfile(str(p), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ValueError(f"{p}: not a readable image (empty, corrupt or unsupported format)")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return to_rgb_uint8(image, name=str(p))
