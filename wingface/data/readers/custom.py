"""Custom point sets: one CSV or JSON file per split, with an optional scheme file beside it.

CSV (a header row, then one face per row):

- ``image``: the image path, relative to the CSV's folder (or absolute);
- ``x0, y0, x1, y1, ..., x{L-1}, y{L-1}``: the points;
- optional ``v0 .. v{L-1}`` (all or none): 1 visible, 0 occluded or unannotated;
- optional ``box_x0, box_y0, box_x1, box_y1`` (all or none): a face box;
- optional ``subset``. Other columns are an error (a typo should not pass silently).

JSON: a list of ``{"image": ..., "points": [[x, y], ...]}`` objects with optional
``"visible": [true, ...]`` (or 0/1), ``"box": [x0, y0, x1, y1]``, ``"subset": "..."`` and
``"attributes": {...}``.

Coordinates are 0-based pixel coordinates with pixel centres at integers (the toolkit's own
convention; no conversion). The split is the file stem; root is a file or a folder of such
files. Scheme: the one passed in, else ``scheme.yaml`` / ``scheme.yml`` / ``scheme.json`` beside
the files (`wingface.schemes.load_scheme`), else the built-in scheme with the same point count;
otherwise opening raises ValueError asking for a scheme file. A file that cannot be parsed at
all (bad header, invalid JSON) raises CustomFormatError; bad rows and missing images are skipped
with their reason.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...schemes import LandmarkScheme, load_scheme
from ..records import FaceRecord, SplitResult
from .base import DatasetReader
from .coco import builtin_scheme_for, peek_json_start, pick_split

SCHEME_FILES = ("scheme.yaml", "scheme.yml", "scheme.json")
BOX_COLUMNS = ("box_x0", "box_y0", "box_x1", "box_y1")
_JSON_KEYS = ("image", "points", "visible", "box", "subset", "attributes")


class CustomFormatError(ValueError):
    """A malformed custom CSV/JSON file or face; the message names the file (and row)."""


@dataclass(frozen=True)
class CsvLayout:
    """Column indices of a custom CSV header: ``num_points`` x/y columns, optional v and box columns."""

    width: int
    image: int
    xs: tuple[int, ...]
    ys: tuple[int, ...]
    vs: tuple[int, ...] | None
    box: tuple[int, ...] | None
    subset: int | None

    @property
    def num_points(self) -> int:
        return len(self.xs)


def parse_csv_header(header: list[str], source: str = "<csv>") -> CsvLayout:
    """Check a custom CSV header and locate its columns; raises CustomFormatError naming ``source``."""
    names = [h.strip() for h in header]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CustomFormatError(f"{source}: repeated column(s) {repeated}")
    column = {n: i for i, n in enumerate(names)}
    if "image" not in column:
        raise CustomFormatError(f"{source}: no 'image' column in the header {names[:8]}")
    indexed = {p: sorted(int(n[1:]) for n in names if re.fullmatch(p + r"(0|[1-9][0-9]*)", n)) for p in "xyv"}
    count = len(indexed["x"])
    if count == 0 or indexed["x"] != list(range(count)) or indexed["y"] != list(range(count)):
        raise CustomFormatError(f"{source}: need columns x0, y0, ..., x{{L-1}}, y{{L-1}} with no gaps")
    if indexed["v"] and indexed["v"] != list(range(count)):
        raise CustomFormatError(f"{source}: visibility columns must be all of v0..v{count - 1} or none")
    boxes = [c for c in BOX_COLUMNS if c in column]
    if boxes and len(boxes) != 4:
        raise CustomFormatError(f"{source}: box columns must be all of {', '.join(BOX_COLUMNS)} or none")
    known = {"image", "subset", *BOX_COLUMNS} | {f"{p}{i}" for p in "xyv" for i in indexed[p]}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CustomFormatError(f"{source}: unknown column(s) {unknown[:5]}; allowed: image, x<i>, y<i>, v<i>, "
                                f"{', '.join(BOX_COLUMNS)}, subset")
    return CsvLayout(
        width=len(names), image=column["image"],
        xs=tuple(column[f"x{i}"] for i in range(count)), ys=tuple(column[f"y{i}"] for i in range(count)),
        vs=tuple(column[f"v{i}"] for i in range(count)) if indexed["v"] else None,
        box=tuple(column[c] for c in BOX_COLUMNS) if boxes else None,
        subset=column.get("subset"),
    )


def parse_custom_csv(text: str, source: str = "<csv>") -> SplitResult:
    """Parse a custom CSV into records whose ``image_path`` is as written in the file.

    Points float32 [L, 2], visible bool [L] or None, box float32 [4] or None. Raises
    CustomFormatError naming ``source`` for an unusable file (no header, bad columns, broken
    quoting); a bad row is listed in ``skipped`` as ``"<source>, line <n>"`` with its reason.
    """
    try:
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    except csv.Error as err:
        raise CustomFormatError(f"{source}: not a readable CSV file ({err})") from None
    if not rows:
        raise CustomFormatError(f"{source}: empty file (expected a header row)")
    layout = parse_csv_header(rows[0], source)
    result = SplitResult(records=[])
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{source}, line {number}"
        try:
            result.records.append(_csv_face(row, layout, where))
        except CustomFormatError as err:
            result.skipped.append((where, str(err)))
    return result


def _csv_face(row: list[str], layout: CsvLayout, where: str) -> FaceRecord:
    if len(row) != layout.width:
        raise CustomFormatError(f"{where}: expected {layout.width} fields, got {len(row)}")
    image = row[layout.image].strip()
    if not image:
        raise CustomFormatError(f"{where}: empty image path")
    points = np.stack([_floats([row[i] for i in layout.xs], where), _floats([row[i] for i in layout.ys], where)], 1)
    visible = None if layout.vs is None else _flags([row[i] for i in layout.vs], where)
    box = None if layout.box is None else _box([row[i] for i in layout.box], where)
    subset = row[layout.subset].strip() if layout.subset is not None else ""
    return FaceRecord(image_path=Path(image), points=points, visible=visible, box=box, subset=subset)


def _floats(values: list[Any], where: str) -> np.ndarray:
    """Finite numbers (numeric text or JSON numbers) as float32; CustomFormatError otherwise."""
    try:
        if any(isinstance(v, bool) or not isinstance(v, (str, int, float)) for v in values):
            raise ValueError
        numbers = [float(v) for v in values]
    except (ValueError, OverflowError):
        raise CustomFormatError(f"{where}: expected numbers, got {values[:4]}") from None
    if not all(math.isfinite(v) for v in numbers):
        raise CustomFormatError(f"{where}: non-finite number")
    return np.array(numbers, dtype=np.float32)


def _flags(values: list[Any], where: str) -> np.ndarray:
    numbers = _floats([int(v) if isinstance(v, bool) else v for v in values], where)
    if not np.all((numbers == 0) | (numbers == 1)):
        raise CustomFormatError(f"{where}: visibility must be 0/1 or true/false")
    return numbers == 1


def _box(values: list[Any], where: str) -> np.ndarray:
    box = _floats(values, where)
    if not (box[0] <= box[2] and box[1] <= box[3]):
        raise CustomFormatError(f"{where}: box (x0, y0, x1, y1) = {box.tolist()} has x1 < x0 or y1 < y0")
    return box


def parse_custom_json(text: str, source: str = "<json>", expected_points: int | None = None) -> SplitResult:
    """Parse a custom JSON list into records whose ``image_path`` is as written in the file.

    Raises CustomFormatError naming ``source`` when the text is not a JSON list; a bad item
    (or one without ``expected_points`` points) is listed in ``skipped`` as ``"<source>, item <k>"``.
    """
    try:
        items = json.loads(text.lstrip("\ufeff"))
    except (ValueError, RecursionError) as err:
        raise CustomFormatError(f"{source}: not valid JSON ({err})") from None
    if not isinstance(items, list):
        raise CustomFormatError(f"{source}: expected a JSON list of faces")
    result = SplitResult(records=[])
    for k, item in enumerate(items):
        where = f"{source}, item {k}"
        try:
            result.records.append(_json_face(item, where, expected_points))
        except CustomFormatError as err:
            result.skipped.append((where, str(err)))
    return result


def _json_face(item: Any, where: str, expected_points: int | None) -> FaceRecord:
    if not isinstance(item, dict):
        raise CustomFormatError(f"{where}: expected an object with 'image' and 'points'")
    unknown = sorted(set(item) - set(_JSON_KEYS))
    if unknown:
        raise CustomFormatError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(_JSON_KEYS)}")
    image, points = item.get("image"), item.get("points")
    if not isinstance(image, str) or not image.strip():
        raise CustomFormatError(f"{where}: 'image' must be a non-empty path")
    if not isinstance(points, list) or not points or not all(isinstance(p, list) and len(p) == 2 for p in points):
        raise CustomFormatError(f"{where}: 'points' must be a non-empty list of [x, y] pairs")
    if expected_points is not None and len(points) != expected_points:
        raise CustomFormatError(f"{where}: {len(points)} points, expected {expected_points}")
    visible, box = item.get("visible"), item.get("box")
    if visible is not None and (not isinstance(visible, list) or len(visible) != len(points)):
        raise CustomFormatError(f"{where}: 'visible' must be a list with one flag per point")
    if box is not None and (not isinstance(box, list) or len(box) != 4):
        raise CustomFormatError(f"{where}: 'box' must be [x0, y0, x1, y1]")
    subset, attributes = item.get("subset", ""), item.get("attributes", {})
    if not isinstance(subset, str) or not isinstance(attributes, dict):
        raise CustomFormatError(f"{where}: 'subset' must be a string and 'attributes' an object")
    coordinates = [c for p in points for c in p]
    _require_json_numbers(coordinates + (box or []) + [v for v in visible or [] if not isinstance(v, bool)], where)
    return FaceRecord(
        image_path=Path(image.strip()),
        points=_floats(coordinates, where).reshape(-1, 2),
        visible=None if visible is None else _flags(visible, where),
        box=None if box is None else _box(box, where),
        attributes=attributes,
        subset=subset,
    )


def _require_json_numbers(values: list[Any], where: str) -> None:
    """JSON faces hold numbers, not numeric text (which CSV cells are)."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise CustomFormatError(f"{where}: 'points', 'visible' and 'box' must hold numbers")


def find_custom_files(root: Path) -> dict[str, Path]:
    """Split name (file stem) -> custom CSV or JSON-list file, for a file or a folder of them."""
    candidates = [root] if root.is_file() else sorted(root.glob("*.csv")) + sorted(root.glob("*.json"))
    return {f.stem: f for f in candidates if f.name not in SCHEME_FILES and _is_custom(f)}


def _is_custom(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix == ".csv" or (suffix == ".json" and peek_json_start(path).startswith("["))


def find_scheme_file(folder: Path) -> Path | None:
    """``scheme.yaml``, ``scheme.yml`` or ``scheme.json`` in ``folder``, or None."""
    return next((folder / n for n in SCHEME_FILES if (folder / n).is_file()), None)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise CustomFormatError(f"{path}: cannot read ({err})") from None


def _point_count(path: Path) -> int:
    """Points per face of a custom file: from the CSV header or the first JSON face."""
    if path.suffix.lower() == ".csv":
        header = _read_text(path).partition("\n")[0]
        try:
            first = next(iter(csv.reader([header])), None)
        except csv.Error as err:
            raise CustomFormatError(f"{path}: not a readable CSV header ({err})") from None
        if not first:
            raise CustomFormatError(f"{path}: empty file (expected a header row)")
        return parse_csv_header(first, str(path)).num_points
    parsed = parse_custom_json(_read_text(path), str(path))
    if not parsed.records:
        raise CustomFormatError(f"{path}: no valid face to count points from")
    return len(parsed.records[0].points)


class CustomReader(DatasetReader):
    """Custom CSV/JSON point files with a scheme file (or a built-in scheme of the same size)."""

    format_name = "custom"

    def __init__(self, root: str | Path, scheme: LandmarkScheme | None = None) -> None:
        root = Path(root)
        self.files = find_custom_files(root)
        if not self.files:
            raise ValueError(f"{root}: no custom .csv or .json (list of faces) files found")
        names = list(self.files)
        self.default_train_split = pick_split(names, ("train",)) or names[0]
        self.default_test_split = pick_split(names, ("test", "val")) or names[-1]
        super().__init__(root, scheme or self._find_scheme(root))

    def _find_scheme(self, root: Path) -> LandmarkScheme:
        scheme_file = find_scheme_file(root if root.is_dir() else root.parent)
        if scheme_file is not None:
            return load_scheme(scheme_file)
        first = self.files[self.default_train_split]
        count = _point_count(first)
        scheme = builtin_scheme_for(count)
        if scheme is None:
            raise ValueError(f"{first}: {count} points per face matches no built-in scheme; put a scheme file "
                             f"({' or '.join(SCHEME_FILES)}, see wingface.schemes.load_scheme) beside it")
        return scheme

    @classmethod
    def recognises(cls, root: Path) -> bool:
        return bool(find_custom_files(root))

    def split_names(self) -> list[str]:
        return list(self.files)

    def _read_split(self, split: str) -> SplitResult:
        path = self.files[split]
        text = _read_text(path)
        if path.suffix.lower() == ".csv":
            parsed = parse_custom_csv(text, str(path))
        else:
            parsed = parse_custom_json(text, str(path), self.scheme.num_points)
        result = SplitResult(records=[], skipped=parsed.skipped)
        if parsed.records and len(parsed.records[0].points) != self.scheme.num_points:
            raise CustomFormatError(f"{path}: {len(parsed.records[0].points)} points per face, "
                                    f"scheme {self.scheme.name!r} has {self.scheme.num_points}")
        for record in parsed.records:
            image = path.parent / record.image_path
            if image.is_file():
                result.records.append(replace(record, image_path=image))
            else:
                result.skipped.append((f"{path}: {record.image_path}", f"image not found: {image}"))
        return result
