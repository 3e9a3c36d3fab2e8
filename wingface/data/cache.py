"""Prepared training cache: every face read once, cropped to a fixed-size uint8 square.

A cache is a folder holding
- ``images.npy``   uint8 [N, C, C, 3] RGB crops (C = ``crop_size``),
- ``points.npy``   float32 [N, L, 2] landmarks in crop pixels (0-based pixel centres),
- ``visible.npy``  bool [N, L],
- ``to_image.npy`` float64 [N, 2, 3] crop -> original image transforms,
- ``meta.json``    scheme, crop geometry, source and per-face metadata.

Each crop is the landmark box's square enlarged by ``context`` (side = max(w, h) * context),
so a model crop (margin 0.25) plus rotation, shift and scale jitter stays inside it. The
folder is written to a temporary name and renamed: it appears whole or not at all.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from ..atomic import atomic_path
from ..geometry import apply_affine, box_from_points, invert_affine, square_matrix, warp_image
from ..schemes import LandmarkScheme
from .images import read_image, to_rgb_uint8
from .records import FaceRecord

log = logging.getLogger(__name__)

CACHE_FORMAT = "wingface-cache"
CACHE_VERSION = 1
DEFAULT_CROP_SIZE = 256
DEFAULT_CONTEXT = 2.0


@dataclass
class FaceCache:
    """A loaded cache (arrays as described in the module docstring)."""

    images: np.ndarray
    points: np.ndarray
    visible: np.ndarray
    to_image: np.ndarray
    scheme: LandmarkScheme
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def crop_size(self) -> int:
        return int(self.images.shape[1])

    def image_points(self) -> np.ndarray:
        """float64 [N, L, 2] landmarks mapped back to original image pixels."""
        return apply_affine(self.to_image, self.points)

    def subset(self, indices: Sequence[int]) -> "FaceCache":
        """A view of some faces (arrays indexed; per-face metadata follows)."""
        idx = np.asarray(indices, dtype=np.int64)
        faces = self.meta.get("faces", [])
        meta = dict(self.meta, faces=[faces[i] for i in idx] if faces else [])
        return FaceCache(self.images[idx], self.points[idx], self.visible[idx], self.to_image[idx], self.scheme, meta)


@dataclass
class PrepareSummary:
    """What `prepare_cache` did: faces written and items skipped with their reasons."""

    path: Path
    faces: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def crop_face(image: np.ndarray, points: np.ndarray, crop_size: int, context: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop one face: (crop uint8 [C, C, 3], points in crop px float32 [L, 2], crop->image float64 [2, 3])."""
    box = box_from_points(points)
    center = (box[:2] + box[2:]) / 2
    side = max(float((box[2:] - box[:2]).max()), 1.0) * context
    to_crop = square_matrix(center, side, crop_size)
    crop = warp_image(image, to_crop, crop_size)
    crop_points = apply_affine(to_crop, points).astype(np.float32)
    return crop, crop_points, invert_affine(to_crop)


def _load_face(record: FaceRecord, crop_size: int, context: float):
    image = to_rgb_uint8(record.image, record.name) if record.image is not None else read_image(record.image_path)
    points = np.asarray(record.points, dtype=np.float64)
    if points.shape != (len(points), 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"{record.name}: points must be finite [L, 2], got shape {points.shape}")
    return crop_face(image, points, crop_size, context)


def prepare_cache(
    records: Sequence[FaceRecord],
    out: str | Path,
    scheme: LandmarkScheme,
    *,
    crop_size: int = DEFAULT_CROP_SIZE,
    context: float = DEFAULT_CONTEXT,
    strict: bool = False,
    source: dict[str, Any] | None = None,
    progress: bool = True,
    workers: int = 2,
) -> PrepareSummary:
    """Read every record once and write a cache folder at ``out`` atomically.

    Bad items (unreadable image, wrong point count, ...) are skipped and listed in the
    summary; with ``strict`` the first one raises ValueError naming it and nothing is written.
    """
    if crop_size < 16 or context <= 1.0:
        raise ValueError(f"crop_size must be >= 16 and context > 1 (got {crop_size}, {context})")
    num = scheme.num_points
    results: list = [None] * len(records)
    skipped: list[tuple[str, str]] = []

    def work(i: int):
        rec = records[i]
        if len(rec.points) != num:
            raise ValueError(f"{rec.name}: {len(rec.points)} points, scheme {scheme.name!r} has {num}")
        return _load_face(rec, crop_size, context)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(work, i) for i in range(len(records))]
        bar = tqdm(futures, desc="prepare", unit="face", disable=not progress)
        for i, fut in enumerate(bar):
            try:
                results[i] = fut.result()
            except (ValueError, OSError) as err:
                if strict:
                    pool.shutdown(cancel_futures=True)
                    raise ValueError(f"prepare --strict: {err}") from None
                skipped.append((records[i].name, str(err)))
    kept = [i for i, r in enumerate(results) if r is not None]
    if not kept:
        raise ValueError(f"no readable faces to cache ({len(skipped)} skipped)")
    _write_cache(out, [records[i] for i in kept], [results[i] for i in kept], scheme, crop_size, context, source, skipped)
    return PrepareSummary(Path(out), len(kept), skipped)


def _write_cache(out, records, results, scheme, crop_size, context, source, skipped) -> None:
    visible = np.stack([
        np.ones(scheme.num_points, bool) if r.visible is None else np.asarray(r.visible, bool) for r in records
    ])
    meta = {
        "format": CACHE_FORMAT, "version": CACHE_VERSION, "scheme": scheme.to_dict(),
        "crop_size": crop_size, "context": context, "source": source or {},
        "faces": [{"image": str(r.image_path), "subset": r.subset, "attributes": _plain(r.attributes)} for r in records],
        "skipped": [list(s) for s in skipped],
    }
    with atomic_path(out) as tmp:
        tmp.mkdir()
        np.save(tmp / "images.npy", np.stack([r[0] for r in results]))
        np.save(tmp / "points.npy", np.stack([r[1] for r in results]))
        np.save(tmp / "visible.npy", visible)
        np.save(tmp / "to_image.npy", np.stack([r[2] for r in results]))
        (tmp / "meta.json").write_text(json.dumps(meta))


def _plain(attributes) -> dict[str, Any]:
    return {str(k): (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dict(attributes).items()}


def load_cache(path: str | Path, mmap: bool = False) -> FaceCache:
    """Load a cache folder written by `prepare_cache`.

    FileNotFoundError when the folder holds no ``meta.json``; ValueError naming the folder for
    corrupt metadata or another format.
    """
    root = Path(path)
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{root}: not a wingface cache (no meta.json); build one with `wingface prepare`")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta_path}: corrupt cache metadata ({err})") from None
    if meta.get("format") != CACHE_FORMAT or meta.get("version", 0) > CACHE_VERSION:
        raise ValueError(f"{root}: unsupported cache format {meta.get('format')!r} v{meta.get('version')}")
    mode = "r" if mmap else None
    arrays = {k: np.load(root / f"{k}.npy", mmap_mode=mode) for k in ("images", "points", "visible", "to_image")}
    return FaceCache(scheme=LandmarkScheme.from_dict(meta["scheme"], source=str(meta_path)), meta=meta, **arrays)
