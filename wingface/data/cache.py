"""Prepared training cache: every face read once, cropped to a fixed-size uint8 square.

A cache is a folder holding
- ``images.npy``   uint8 [N, C, C, 3] RGB crops (C = ``crop_size``), or, in the compact form,
  ``images.jpeg.npz``: ``data`` uint8 [B], the crops' JPEG files end to end, and ``offsets``
  int64 [N + 1], crop i being ``data[offsets[i]:offsets[i + 1]]`` (about 13x smaller at
  quality 90; `load_cache` decodes it to the same uint8 [N, C, C, 3] array),
- ``points.npy``   float32 [N, L, 2] landmarks in crop pixels (0-based pixel centres),
- ``visible.npy``  bool [N, L],
- ``to_image.npy`` float64 [N, 2, 3] crop -> original image transforms,
- ``meta.json``    scheme, crop geometry, source, per-face metadata and the image encoding
  (``"images": {"encoding": "raw"}`` or ``{"encoding": "jpeg", "quality": Q}``; absent: raw).

Each crop is the landmark box's square enlarged by ``context`` (side = max(w, h) * context),
so a model crop (margin 0.25) plus rotation, shift and scale jitter stays inside it. The
folder is written to a temporary name and renamed: it appears whole or not at all.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ..atomic import atomic_path
from ..geometry import apply_affine, box_from_points, invert_affine, square_matrix, warp_image
from ..schemes import LandmarkScheme
from .images import read_image, to_rgb_uint8
from .records import FaceRecord

log = logging.getLogger(__name__)

CACHE_FORMAT = "wingface-cache"
CACHE_VERSION = 2  # 2 added JPEG crops; raw caches are still written as version 1
DEFAULT_CROP_SIZE = 256
DEFAULT_CONTEXT = 2.0
# 300w-train (2,012 faces, 256 px): raw 377 MiB; JPEG 95: 42.0 MiB, 90: 30.0 MiB, 85: 24.3 MiB,
# mean absolute pixel error 1.15 / 1.56 / 1.85 grey levels (0.80 at quality 90 once shrunk to a
# stage-1 crop's scale). 90 keeps the cache well under 40 MiB, so it travels to a GPU machine.
DEFAULT_JPEG_QUALITY = 90
JPEG_FILE = "images.jpeg.npz"
SLOW_SECONDS = 2.0  # decoding shows a progress bar only when it takes longer than this


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


def encode_jpeg(crop: np.ndarray, quality: int) -> np.ndarray:
    """One RGB uint8 [C, C, 3] crop as JPEG file bytes, uint8 [B] (OpenCV encodes BGR)."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(crop[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding of a {list(crop.shape)} crop failed")
    return data.reshape(-1)


def _check_quality(quality: int) -> int:
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f"jpeg_quality: expected an integer from 1 to 100, got {quality!r}")
    return int(quality)


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
    jpeg_quality: int | None = None,
) -> PrepareSummary:
    """Read every record once and write a cache folder at ``out`` atomically.

    Bad items (unreadable image, wrong point count, ...) are skipped and listed in the
    summary; with ``strict`` the first one raises ValueError naming it and nothing is written.
    ``jpeg_quality`` (1..100) stores the crops as JPEG (the compact form) instead of raw pixels.
    """
    if crop_size < 16 or context <= 1.0:
        raise ValueError(f"crop_size must be >= 16 and context > 1 (got {crop_size}, {context})")
    if jpeg_quality is not None:
        jpeg_quality = _check_quality(jpeg_quality)
    num = scheme.num_points
    results: list = [None] * len(records)
    skipped: list[tuple[str, str]] = []

    def work(i: int):
        rec = records[i]
        if len(rec.points) != num:
            raise ValueError(f"{rec.name}: {len(rec.points)} points, scheme {scheme.name!r} has {num}")
        crop, points, to_image = _load_face(rec, crop_size, context)
        return (crop if jpeg_quality is None else encode_jpeg(crop, jpeg_quality)), points, to_image

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
    _write_cache(out, [records[i] for i in kept], [results[i] for i in kept], scheme, crop_size, context, source,
                 skipped, jpeg_quality)
    return PrepareSummary(Path(out), len(kept), skipped)


def compact_cache(src: str | Path, out: str | Path, quality: int = DEFAULT_JPEG_QUALITY, *,
                  workers: int = 2, progress: bool = True) -> Path:
    """Rewrite the cache ``src`` at ``out`` (atomically) with its crops JPEG-encoded at ``quality``
    (1..100), without reading the dataset again; points, transforms and metadata are copied.
    A ``src`` that is already JPEG is decoded and encoded again (a second, small loss)."""
    quality = _check_quality(quality)
    cache = load_cache(src, mmap=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        jobs = pool.map(lambda i: encode_jpeg(cache.images[i], quality), range(len(cache)))
        crops = list(tqdm(jobs, total=len(cache), desc="compact", unit="face", disable=not progress))
    meta = dict(cache.meta, version=CACHE_VERSION, images={"encoding": "jpeg", "quality": quality})
    arrays = {"points": cache.points, "visible": cache.visible, "to_image": cache.to_image}
    _write_folder(out, crops, arrays, meta)
    return Path(out)


def _write_cache(out, records, results, scheme, crop_size, context, source, skipped, jpeg_quality) -> None:
    visible = np.stack([
        np.ones(scheme.num_points, bool) if r.visible is None else np.asarray(r.visible, bool) for r in records
    ])
    images = {"encoding": "raw"} if jpeg_quality is None else {"encoding": "jpeg", "quality": jpeg_quality}
    meta = {
        "format": CACHE_FORMAT, "version": 1 if jpeg_quality is None else CACHE_VERSION,
        "scheme": scheme.to_dict(), "crop_size": crop_size, "context": context, "source": source or {},
        "images": images,
        "faces": [{"image": str(r.image_path), "subset": r.subset, "attributes": _plain(r.attributes)} for r in records],
        "skipped": [list(s) for s in skipped],
    }
    arrays = {"points": np.stack([r[1] for r in results]), "visible": visible,
              "to_image": np.stack([r[2] for r in results])}
    _write_folder(out, [r[0] for r in results], arrays, meta)


def _write_folder(out, crops: list[np.ndarray], arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write a cache folder atomically: ``crops`` are uint8 [C, C, 3] pixels, or uint8 [B] JPEG
    files when ``meta["images"]`` says jpeg; ``arrays`` are points, visible and to_image."""
    with atomic_path(out) as tmp:
        tmp.mkdir()
        if meta["images"]["encoding"] == "jpeg":
            offsets = np.cumsum([0, *(len(c) for c in crops)], dtype=np.int64)
            np.savez(tmp / JPEG_FILE, data=np.concatenate(crops), offsets=offsets)
        else:
            np.save(tmp / "images.npy", np.stack(crops))
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        (tmp / "meta.json").write_text(json.dumps(meta))


def _plain(attributes) -> dict[str, Any]:
    return {str(k): (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dict(attributes).items()}


def load_cache(path: str | Path, mmap: bool = False) -> FaceCache:
    """Load a cache folder written by `prepare_cache` or `compact_cache`.

    ``mmap`` maps raw crops from disk; JPEG crops are always decoded into memory (a thread
    pool; a progress bar only when slow). FileNotFoundError when the folder holds no
    ``meta.json``; ValueError naming the file for corrupt metadata, crops or another format.
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
    arrays = {k: np.load(root / f"{k}.npy", mmap_mode=mode) for k in ("points", "visible", "to_image")}
    images = _load_images(root, meta, len(arrays["points"]), mode)
    return FaceCache(images=images, scheme=LandmarkScheme.from_dict(meta["scheme"], source=str(meta_path)), meta=meta,
                     **arrays)


def _load_images(root: Path, meta: dict[str, Any], count: int, mode: str | None) -> np.ndarray:
    """The crops uint8 [count, C, C, 3], raw (memory-mapped with ``mode`` "r") or decoded from JPEG."""
    encoding = meta.get("images", {}).get("encoding", "raw")
    if encoding == "raw":
        return np.load(root / "images.npy", mmap_mode=mode)
    if encoding == "jpeg":
        return _decode_jpegs(root / JPEG_FILE, count, int(meta["crop_size"]))
    raise ValueError(f"{root / 'meta.json'}: unknown image encoding {encoding!r} (expected 'raw' or 'jpeg')")


def _read_jpeg_file(path: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8 [B], offsets int64 [count + 1]) of a JPEG crops file; ValueError naming it when corrupt."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the cache's JPEG crops)")
    try:
        with np.load(path) as stored:
            data, offsets = stored["data"], stored["offsets"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: corrupt JPEG crops file ({err})") from None
    if (data.dtype != np.uint8 or data.ndim != 1 or offsets.dtype.kind not in "iu" or offsets.shape != (count + 1,)
            or offsets[0] != 0 or offsets[-1] != len(data) or np.any(np.diff(offsets) <= 0)):
        raise ValueError(f"{path}: corrupt JPEG crops file (offsets do not split {len(data)} bytes into "
                         f"{count} crops)")
    return data, offsets.astype(np.int64)


def _decode_jpegs(path: Path, count: int, size: int) -> np.ndarray:
    """The ``count`` crops of a JPEG crops file as RGB uint8 [count, size, size, 3]."""
    data, offsets = _read_jpeg_file(path, count)
    images = np.empty((count, size, size, 3), np.uint8)

    def decode(i: int) -> None:
        chunk = data[offsets[i]:offsets[i + 1]]
        whole = chunk[:2].tobytes() == b"\xff\xd8" and chunk[-2:].tobytes() == b"\xff\xd9"
        bgr = cv2.imdecode(chunk, cv2.IMREAD_COLOR) if whole else None
        if bgr is None or bgr.shape != (size, size, 3):
            raise ValueError(f"{path}: crop {i} is not a valid {size}x{size} JPEG (corrupt cache; prepare it again)")
        images[i] = bgr[..., ::-1]

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for _ in tqdm(pool.map(decode, range(count)), total=count, desc=f"decode {path.parent.name}", unit="face",
                      delay=SLOW_SECONDS, leave=False):
            pass
    return images
