"""COCO-style keypoint JSON, as MMPose and HRNet distribute 300-W, WFLW, COFW and AFLW.

A file holds ``images`` (``id``, ``file_name``), ``annotations`` (``image_id``, flat
``keypoints`` [x, y, v] * L, optional ``bbox`` [x, y, w, h], ``center`` + ``scale``,
``box_size``) and ``categories``. One file is one split named by its stem; root may be a file
or a folder whose ``*.json`` files (or those in its ``annotations/`` subfolder) are COCO files.

Images: ``file_name`` is resolved against the first of ``images/`` beside the JSON,
``images/`` beside its folder, the JSON's parent folder and the JSON's folder in which the
first listed images exist (MMPose's ``data/<name>/annotations`` + ``data/<name>/images``).

Coordinates are used as 0-based pixel coordinates. MMPose's converters keep pixel positions
(its COFW converter subtracts Matlab's 1, its WFLW converter copies the WFLW values unchanged);
the 300-W and AFLW files come from HRNet's CSVs, whose offset convention is not documented, so a
sub-pixel-to-one-pixel offset there cannot be ruled out.

Visibility: ``v = 0`` (not labelled) is never visible. MMPose's files disagree on ``v = 1``
(WFLW marks every point 1, COFW marks occluded points 1 and visible ones 2), so per file: if
any point has ``v = 2``, the COCO meaning applies (visible only when ``v = 2``), else any
``v > 0`` is visible. Points are kept either way; only ``visible`` changes.

Box: MMPose's face files carry ``center`` and ``scale`` in units of 200 pixels (their ``bbox``
is not in pixels for WFLW); when both are present the box is the square of side
``200 * scale`` around ``center``, else ``bbox`` (x, y, w, h) becomes (x, y, x + w, y + h).
AFLW's ``box_size`` (the face-size normaliser) goes into ``attributes["box_size"]``.

Scheme: the built-in scheme with the file's point count (68, 98, 29, 19) unless one is passed.
A file that is not valid COCO JSON raises CocoFormatError; bad annotations and missing images
are skipped with their reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...schemes import SCHEMES, LandmarkScheme
from ..records import FaceRecord, SplitResult
from .base import DatasetReader

MMPOSE_SCALE_UNIT = 200.0  # pixels per unit of MMPose's ``scale`` field
_PEEK_BYTES = 65536


class CocoFormatError(ValueError):
    """A malformed COCO keypoint file or annotation; the message names the file."""


def builtin_scheme_for(num_points: int) -> LandmarkScheme | None:
    """The built-in scheme with ``num_points`` points (68, 98, 29 or 19), or None."""
    return next((s for s in SCHEMES.values() if s.num_points == num_points), None)


def peek_json_start(path: Path) -> str:
    """The first 64 KiB of a file as text without leading whitespace or BOM ('' if unreadable)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_PEEK_BYTES)
    except OSError:
        return ""
    return head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")


def looks_like_coco(path: Path) -> bool:
    """Cheap check: a ``.json`` file holding an object whose start mentions images or annotations."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    head = peek_json_start(path)
    return head.startswith("{") and ('"annotations"' in head or '"images"' in head)


def find_coco_files(root: Path) -> dict[str, Path]:
    """Split name (file stem) -> COCO JSON file for a file, a folder or its ``annotations/`` subfolder."""
    if root.is_file():
        return {root.stem: root} if looks_like_coco(root) else {}
    for folder in (root, root / "annotations"):
        if folder.is_dir():
            found = {f.stem: f for f in sorted(folder.glob("*.json")) if looks_like_coco(f)}
            if found:
                return found
    return {}


def parse_coco(doc: Any, source: str = "<coco>", expected_points: int | None = None) -> SplitResult:
    """Turn a parsed COCO keypoint document into records, one per annotation.

    ``image_path`` is the image's ``file_name`` as written (resolve it against the image root);
    points float32 [L, 2], visible bool [L], box float32 [4] or None, all as described in the
    module docstring. Raises CocoFormatError naming ``source`` when ``doc`` is not a COCO
    document; a bad annotation is listed in ``skipped`` with its reason.
    """
    if not isinstance(doc, dict):
        raise CocoFormatError(f"{source}: expected a JSON object with 'images' and 'annotations'")
    images, annotations = doc.get("images"), doc.get("annotations")
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise CocoFormatError(f"{source}: 'images' and 'annotations' must both be lists")
    file_names = {im["id"]: im["file_name"] for im in images
                  if isinstance(im, dict) and _hashable(im.get("id")) and isinstance(im.get("file_name"), str)}
    strict_visibility = any(_visibilities(a).count(2) for a in annotations)
    result = SplitResult(records=[])
    for k, ann in enumerate(annotations):
        where = f"{source}: annotation {k}"
        try:
            result.records.append(_annotation(ann, file_names, strict_visibility, expected_points, where))
        except CocoFormatError as err:
            result.skipped.append((where, str(err)))
    return result


def _hashable(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _visibilities(ann: Any) -> list[Any]:
    keypoints = ann.get("keypoints") if isinstance(ann, dict) else None
    return keypoints[2::3] if isinstance(keypoints, list) else []


def _annotation(ann: Any, file_names: Mapping[Any, str], strict_visibility: bool,
                expected_points: int | None, where: str) -> FaceRecord:
    if not isinstance(ann, dict):
        raise CocoFormatError(f"{where}: expected an object")
    image_id = ann.get("image_id")
    if not _hashable(image_id) or image_id not in file_names:
        raise CocoFormatError(f"{where}: image_id {image_id!r} is not in 'images'")
    keypoints = _numbers(ann.get("keypoints"), None, "keypoints", where)
    if len(keypoints) == 0 or len(keypoints) % 3:
        raise CocoFormatError(f"{where}: 'keypoints' must be [x, y, v] * L, got {len(keypoints)} numbers")
    triples = keypoints.reshape(-1, 3)
    if expected_points is not None and len(triples) != expected_points:
        raise CocoFormatError(f"{where}: {len(triples)} keypoints, expected {expected_points}")
    flags = triples[:, 2]
    if not np.all(np.isin(flags, (0, 1, 2))):
        raise CocoFormatError(f"{where}: visibility flags must be 0, 1 or 2")
    file_name = Path(file_names[image_id])
    attributes: dict[str, float] = {}
    if "box_size" in ann:
        attributes["box_size"] = float(_numbers(ann["box_size"], 1, "box_size", where)[0])
    return FaceRecord(
        image_path=file_name,
        points=triples[:, :2].astype(np.float32),
        visible=flags == 2 if strict_visibility else flags > 0,
        box=_box(ann, where),
        attributes=attributes,
        subset=file_name.parent.as_posix() if file_name.parent != Path(".") else "",
    )


def _numbers(value: Any, count: int | None, field: str, where: str) -> np.ndarray:
    """Finite float64 numbers from a JSON number or list of numbers (``count`` of them if given)."""
    items = value if isinstance(value, list) else [value]
    try:
        numbers = [float(v) for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]
    except OverflowError:
        numbers = []
    if len(numbers) != len(items) or not all(math.isfinite(v) for v in numbers):
        raise CocoFormatError(f"{where}: {field!r} must hold finite numbers")
    if count is not None and len(items) != count:
        raise CocoFormatError(f"{where}: {field!r} must hold {count} numbers, got {len(items)}")
    return np.array(numbers, dtype=np.float64)


def _box(ann: dict, where: str) -> np.ndarray | None:
    if "center" in ann and "scale" in ann:
        center = _numbers(ann["center"], 2, "center", where)
        scale = _numbers(ann["scale"], None, "scale", where)
        if len(scale) not in (1, 2) or np.any(scale <= 0):
            raise CocoFormatError(f"{where}: 'scale' must be one or two positive numbers")
        half = np.broadcast_to(scale, (2,)) * MMPOSE_SCALE_UNIT / 2
        return np.concatenate([center - half, center + half]).astype(np.float32)
    if "bbox" in ann:
        x, y, w, h = _numbers(ann["bbox"], 4, "bbox", where)
        if w < 0 or h < 0:
            raise CocoFormatError(f"{where}: 'bbox' has negative width or height")
        return np.array([x, y, x + w, y + h], dtype=np.float32)
    return None


def load_json(path: Path) -> Any:
    """Parse a JSON file; unreadable or invalid files raise CocoFormatError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise CocoFormatError(f"{path}: not valid JSON ({err})") from None


def find_image_root(json_path: Path, file_names: Sequence[str]) -> Path:
    """Where ``file_name``s resolve: the first candidate (module docstring) holding any of the first 20."""
    folder = json_path.parent
    candidates = [folder / "images", folder.parent / "images", folder.parent, folder]
    probe = file_names[:20]
    for candidate in candidates:
        if any((candidate / name).is_file() for name in probe):
            return candidate
    return next((c for c in candidates if c.is_dir()), folder)


def pick_split(names: Sequence[str], words: Sequence[str]) -> str | None:
    """The first split name containing one of ``words`` (tried in order, case-insensitive), or None."""
    return next((n for w in words for n in names if w in n.lower()), None)


class CocoReader(DatasetReader):
    """COCO-style keypoint JSON files, one split per file.

    ``files`` (split name -> JSON path) overrides discovery under ``root``; readers of a named
    dataset distributed this way (AFLW) use it to give the splits their official names.
    """

    format_name = "coco"

    def __init__(self, root: str | Path, scheme: LandmarkScheme | None = None,
                 files: Mapping[str, Path] | None = None) -> None:
        self.files = dict(files) if files is not None else find_coco_files(Path(root))
        if not self.files:
            raise ValueError(f"{root}: no COCO keypoint JSON files found")
        self._cache: dict[Path, Any] = {}
        names = list(self.files)
        self.default_train_split = pick_split(names, ("train",)) or names[0]
        self.default_test_split = pick_split(names, ("test", "val")) or names[-1]
        super().__init__(root, scheme or self._infer_scheme(self.files[self.default_train_split]))

    @classmethod
    def recognises(cls, root: Path) -> bool:
        return bool(find_coco_files(root))

    def split_names(self) -> list[str]:
        return list(self.files)

    def _document(self, path: Path) -> Any:
        if path not in self._cache:
            self._cache = {path: load_json(path)}  # keep one: splits are read one at a time
        return self._cache[path]

    def _infer_scheme(self, path: Path) -> LandmarkScheme:
        doc = self._document(path)
        annotations = doc.get("annotations") if isinstance(doc, dict) else None
        if not isinstance(annotations, list):
            raise CocoFormatError(f"{path}: expected a JSON object with an 'annotations' list")
        counts = [len(a["keypoints"]) // 3 for a in annotations
                  if isinstance(a, dict) and isinstance(a.get("keypoints"), list) and a["keypoints"]]
        if not counts:
            raise CocoFormatError(f"{path}: no annotation with keypoints to choose a landmark scheme from")
        scheme = builtin_scheme_for(counts[0])
        if scheme is None:
            raise ValueError(f"{path}: {counts[0]} keypoints per face matches no built-in scheme "
                             f"({', '.join(f'{s.name}: {s.num_points}' for s in SCHEMES.values())}); pass a scheme")
        return scheme

    def _read_split(self, split: str) -> SplitResult:
        path = self.files[split]
        parsed = parse_coco(self._document(path), str(path), self.scheme.num_points)
        root = find_image_root(path, [str(r.image_path) for r in parsed.records])
        result = SplitResult(records=[], skipped=parsed.skipped)
        for record in parsed.records:
            image = root / record.image_path
            if image.is_file():
                result.records.append(replace(record, image_path=image))
            else:
                result.skipped.append((f"{path}: {record.image_path}", f"image not found: {image}"))
        return result
