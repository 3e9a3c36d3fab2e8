"""300-W folder trees: ``NAME.pts`` beside an image of any extension, searched recursively.

The official layout is recognised by folder name: ``lfpw/trainset``, ``helen/trainset`` and
``afw`` (training), ``lfpw/testset`` + ``helen/testset`` (the common subset), ``ibug`` (the
challenging subset) and ``01_Indoor`` / ``02_Outdoor`` (the 300-W private test set). ``.pts``
coordinates are 1-based (Matlab); they become 0-based on reading.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...schemes import get_scheme
from ..images import IMAGE_SUFFIXES
from ..records import FaceRecord, SplitResult
from .base import DatasetReader

# Subset (relative folder tail, lower case) -> named splits containing it.
_SUBSETS = {
    "lfpw/trainset": ("300w-train",),
    "helen/trainset": ("300w-train",),
    "afw": ("300w-train",),
    "lfpw/testset": ("300w-common", "300w-full"),
    "helen/testset": ("300w-common", "300w-full"),
    "ibug": ("300w-challenging", "300w-full"),
    "01_indoor": ("300w-test",),
    "02_outdoor": ("300w-test",),
}
SPLIT_ORDER = ("300w-train", "300w-common", "300w-challenging", "300w-full", "300w-test", "all")


class PtsFormatError(ValueError):
    """A malformed ``.pts`` file; the message names the file and line."""


def parse_pts(text: str, source: str = "<pts>", expected_points: int | None = None) -> np.ndarray:
    """Parse 300-W ``.pts`` text into float32 [L, 2] **0-based** pixel coordinates.

    Format: optional ``version: 1``, ``n_points: L``, ``{``, L lines ``x y`` (1-based), ``}``.
    Raises PtsFormatError naming ``source`` and the offending line.
    """
    lines = [ln.strip() for ln in text.splitlines()]
    header, count = _parse_header(lines, source)
    try:
        open_at = lines.index("{", header)
        close_at = lines.index("}", open_at + 1)
    except ValueError:
        raise PtsFormatError(f"{source}: missing '{{' or '}}' around the point list") from None
    body = [(i + 1, ln) for i, ln in enumerate(lines[open_at + 1:close_at], start=open_at + 1) if ln]
    if len(body) != count:
        raise PtsFormatError(f"{source}: n_points says {count} but {len(body)} point lines follow")
    if expected_points is not None and count != expected_points:
        raise PtsFormatError(f"{source}: {count} points, expected {expected_points}")
    points = np.empty((count, 2), dtype=np.float64)
    for k, (line_no, ln) in enumerate(body):
        points[k] = _parse_xy(ln, source, line_no)
    return (points - 1.0).astype(np.float32)


def _parse_header(lines: list[str], source: str) -> tuple[int, int]:
    for i, ln in enumerate(lines):
        match = re.fullmatch(r"n_points\s*:\s*(\S+)", ln)
        if match:
            try:
                count = int(match.group(1))
            except ValueError:
                raise PtsFormatError(f"{source}, line {i + 1}: bad n_points {match.group(1)!r}") from None
            if count < 1:
                raise PtsFormatError(f"{source}, line {i + 1}: n_points must be positive")
            return i + 1, count
        if ln == "{":
            break
    raise PtsFormatError(f"{source}: no 'n_points:' header (is this a 300-W .pts file?)")


def _parse_xy(line: str, source: str, line_no: int) -> tuple[float, float]:
    parts = line.split()
    try:
        if len(parts) != 2:
            raise ValueError
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise PtsFormatError(f"{source}, line {line_no}: expected 'x y', got {line!r}") from None
    if not (np.isfinite(x) and np.isfinite(y)):
        raise PtsFormatError(f"{source}, line {line_no}: non-finite coordinate {line!r}")
    return x, y


def find_image(pts_path: Path, images_by_stem: dict[str, Path] | None = None) -> Path | None:
    """The image beside a ``.pts`` file: same stem, any image extension (``NAME_2.pts`` may share ``NAME.jpg``).

    ``images_by_stem`` (stem -> image in the same folder) saves a directory scan per file.
    """
    if images_by_stem is None:
        images_by_stem = images_in(pts_path.parent)
    stems = [pts_path.stem]
    match = re.fullmatch(r"(.+)_\d+", pts_path.stem)
    if match:
        stems.append(match.group(1))
    return next((images_by_stem[s] for s in stems if s in images_by_stem), None)


def images_in(folder: Path) -> dict[str, Path]:
    """Stem -> image file for the images directly inside ``folder`` (first by name on clashes)."""
    found: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.suffix.lower() in IMAGE_SUFFIXES:
            found.setdefault(f.stem, f)
    return found


class W300Reader(DatasetReader):
    """A 300-W style folder tree (also any folder of ``.pts`` + image pairs, as split ``all``)."""

    format_name = "300w"
    default_train_split = "300w-train"
    default_test_split = "300w-common"

    def __init__(self, root: str | Path, scheme=None) -> None:
        super().__init__(root, scheme or get_scheme("300w-68"))
        self._files: list[Path] | None = None

    @classmethod
    def recognises(cls, root: Path) -> bool:
        return root.is_dir() and next(root.rglob("*.pts"), None) is not None

    def _pts_files(self) -> list[Path]:
        if self._files is None:
            self._files = sorted(self.root.rglob("*.pts"))
        return self._files

    def subset_of(self, pts_path: Path) -> str:
        """The official subset a file belongs to (e.g. ``helen/testset``), or its relative folder."""
        rel = pts_path.parent.relative_to(self.root).as_posix()
        full = ("/" + self.root.name + "/" + rel).lower().rstrip("/.")
        for tail in _SUBSETS:
            if full.endswith("/" + tail):
                return tail
        return rel

    def split_names(self) -> list[str]:
        found = {s for f in self._pts_files() for s in _SUBSETS.get(self.subset_of(f), ())}
        if "300w-challenging" not in found:
            found.discard("300w-full")  # without ibug, "full" would silently equal "common"
        if self._pts_files():
            found.add("all")
        return [s for s in SPLIT_ORDER if s in found]

    def _read_split(self, split: str) -> SplitResult:
        result = SplitResult(records=[])
        folders: dict[Path, dict[str, Path]] = {}
        for pts in self._pts_files():
            subset = self.subset_of(pts)
            if split != "all" and split not in _SUBSETS.get(subset, ()):
                continue
            try:
                if pts.parent not in folders:
                    folders[pts.parent] = images_in(pts.parent)
                result.records.append(self._read_face(pts, subset, folders[pts.parent]))
            except (ValueError, OSError) as err:
                result.skipped.append((str(pts), str(err)))
        return result

    def _read_face(self, pts: Path, subset: str, images_by_stem: dict[str, Path]) -> FaceRecord:
        try:
            text = pts.read_text(errors="strict")
        except UnicodeDecodeError:
            raise PtsFormatError(f"{pts}: not a text file") from None
        points = parse_pts(text, str(pts), expected_points=self.scheme.num_points)
        image = find_image(pts, images_by_stem)
        if image is None:
            raise FileNotFoundError(f"{pts}: no image with the same name beside it")
        return FaceRecord(image_path=image, points=points, subset=subset)
