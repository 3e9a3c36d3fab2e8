"""WFLW (Wu et al., CVPR 2018): the official ``list_98pt_rect_attr_*.txt`` annotation lists.

Each line holds 207 whitespace-separated fields: 196 point coordinates ``x0 y0 ... x97 y97``,
the face box ``x_min y_min x_max y_max``, six 0/1 attribute flags (pose, expression,
illumination, make-up, occlusion, blur) and the image path relative to ``WFLW_images/``.

Coordinates are used as distributed, as 0-based pixel coordinates: the authors document no
offset, and MMPose's converter (``wflw2coco.py``) copies them unchanged into its JSON.

Root may be the WFLW folder (holding ``WFLW_annotations/list_98pt_rect_attr_train_test/`` and
``WFLW_images/``), ``WFLW_annotations/``, ``list_98pt_rect_attr_train_test/`` itself or one of
its ``.txt`` files. Images are looked for in a ``WFLW_images/`` folder inside the annotation
folder or any of its three parents (the first found wins).

Splits: ``wflw-train``, ``wflw-test`` and the official test subsets ``wflw-test-pose``,
``-expression``, ``-illumination``, ``-makeup``, ``-occlusion``, ``-blur`` (test faces whose flag
is set). The flags also go into ``FaceRecord.attributes`` as bools. A list file that cannot be
read at all raises ValueError; a bad line or a missing image is skipped with its reason.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ...schemes import get_scheme
from ..records import FaceRecord, SplitResult
from .base import DatasetReader

NUM_POINTS = 98
ATTRIBUTES = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")
ANNOTATION_DIR = "list_98pt_rect_attr_train_test"
IMAGE_DIR = "WFLW_images"
_LIST_FILES = {"wflw-train": "list_98pt_rect_attr_train.txt", "wflw-test": "list_98pt_rect_attr_test.txt"}
_NUMBERS = 2 * NUM_POINTS + 4 + len(ATTRIBUTES)


class WflwFormatError(ValueError):
    """A malformed WFLW annotation line; the message names the file and line."""


def parse_wflw_line(line: str, source: str = "<wflw>") -> FaceRecord:
    """Parse one annotation line into a `FaceRecord` whose ``image_path`` is relative to ``WFLW_images/``.

    Returns points float32 [98, 2] and box float32 [4] (x0, y0, x1, y1), both 0-based pixel
    coordinates as in the file, attributes ``{name: bool}`` for the six flags and ``subset`` =
    the image's folder (e.g. ``"0--Parade"``). Raises WflwFormatError naming ``source``.
    """
    fields = line.split()
    if len(fields) <= _NUMBERS:
        raise WflwFormatError(f"{source}: expected {_NUMBERS} numbers and an image path, got {len(fields)} fields")
    numbers = _numbers(fields[:_NUMBERS], source)
    flags = numbers[2 * NUM_POINTS + 4:]
    if not np.all((flags == 0) | (flags == 1)):
        raise WflwFormatError(f"{source}: attribute flags must be 0 or 1, got {flags.tolist()}")
    box = numbers[2 * NUM_POINTS:2 * NUM_POINTS + 4].astype(np.float32)
    if not (box[0] <= box[2] and box[1] <= box[3]):
        raise WflwFormatError(f"{source}: box {box.tolist()} has x_max < x_min or y_max < y_min")
    image = Path(" ".join(fields[_NUMBERS:]))
    return FaceRecord(
        image_path=image,
        points=numbers[:2 * NUM_POINTS].reshape(NUM_POINTS, 2).astype(np.float32),
        box=box,
        attributes={name: bool(flag) for name, flag in zip(ATTRIBUTES, flags)},
        subset=image.parent.as_posix() if image.parent != Path(".") else "",
    )


def _numbers(tokens: list[str], source: str) -> np.ndarray:
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if not _is_float(t))
        raise WflwFormatError(f"{source}: {bad!r} is not a number") from None
    if not np.all(np.isfinite(values)):
        raise WflwFormatError(f"{source}: non-finite number")
    return values


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def find_annotation_dir(root: Path) -> Path | None:
    """The folder holding the ``list_98pt_rect_attr_*.txt`` files for a WFLW root, or None."""
    if root.is_file():
        return root.parent if root.name in _LIST_FILES.values() else None
    for folder in (root, root / ANNOTATION_DIR, root / "WFLW_annotations" / ANNOTATION_DIR):
        if any((folder / name).is_file() for name in _LIST_FILES.values()):
            return folder
    return None


def find_image_dir(annotation_dir: Path) -> Path | None:
    """The ``WFLW_images/`` folder in ``annotation_dir`` or up to three parents above it, or None."""
    for folder in [annotation_dir, *list(annotation_dir.parents)[:3]]:
        if (folder / IMAGE_DIR).is_dir():
            return folder / IMAGE_DIR
    return None


class WflwReader(DatasetReader):
    """The WFLW annotation lists with attribute subsets (98 points, scheme ``wflw-98``)."""

    format_name = "wflw"
    default_train_split = "wflw-train"
    default_test_split = "wflw-test"

    def __init__(self, root: str | Path, scheme=None) -> None:
        super().__init__(root, scheme or get_scheme("wflw-98"))
        if self.scheme.num_points != NUM_POINTS:
            raise ValueError(f"WFLW has {NUM_POINTS} points; scheme {self.scheme.name!r} has {self.scheme.num_points}")
        found = find_annotation_dir(self.root)
        if found is None:
            raise ValueError(f"{self.root}: no WFLW list files ({', '.join(_LIST_FILES.values())}) found")
        self.annotation_dir = found
        self.image_dir = find_image_dir(found)

    @classmethod
    def recognises(cls, root: Path) -> bool:
        return find_annotation_dir(root) is not None

    def split_names(self) -> list[str]:
        names = [s for s, f in _LIST_FILES.items() if (self.annotation_dir / f).is_file()]
        if "wflw-test" in names:
            names += [f"wflw-test-{a}" for a in ATTRIBUTES]
        return names

    def _read_split(self, split: str) -> SplitResult:
        attribute = split.partition("-test-")[2]
        list_file = self.annotation_dir / _LIST_FILES["wflw-test" if attribute else split]
        try:
            lines = list_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"{list_file}: cannot read WFLW list file ({err})") from None
        result = SplitResult(records=[])
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{list_file}, line {number}"
            try:
                record = self._record(line, where)
            except (ValueError, OSError) as err:
                result.skipped.append((where, str(err)))
                continue
            if not attribute or record.attributes[attribute]:
                result.records.append(record)
        return result

    def _record(self, line: str, where: str) -> FaceRecord:
        record = parse_wflw_line(line, where)
        if self.image_dir is None:
            raise FileNotFoundError(f"{where}: no {IMAGE_DIR}/ folder found near {self.annotation_dir}")
        image = self.image_dir / record.image_path
        if not image.is_file():
            raise FileNotFoundError(f"{where}: image not found: {image}")
        return replace(record, image_path=image)
