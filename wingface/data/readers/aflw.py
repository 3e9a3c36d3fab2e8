"""AFLW-19: the 19-point AFLW protocol of Zhu et al. (CVPR 2016, cascaded compositional learning).

Two annotation forms are read, both with splits ``aflw-train`` (20,000 faces), ``aflw-full``
(the 4,386 test faces) and ``aflw-frontal`` (test faces with all 19 points visible):

1. ``AFLWinfo_release.mat`` from Zhu et al., the file that defines the protocol (preferred when
   present): ``data`` N x 38 (19 x then 19 y), ``bbox`` N x 4 (left, right, top, bottom),
   ``mask_new`` N x 19 (1 = visible), ``nameList`` (image paths relative to AFLW's
   ``flickr/`` folder) and ``ra`` (a 1-based random order: its first 20,000 are training faces,
   the rest test). Images are looked for in ``flickr/``, ``data/flickr/`` or
   ``aflw/data/flickr/`` beside the .mat or one folder up (AFLW unpacks to ``aflw/data/flickr``).
   Coordinates are used as they are, as 0-based pixels: Zhu et al. document no offset and
   common loaders (e.g. FaRL's) use them unchanged. ``attributes["index"]`` is the 0-based row
   in the .mat. A file with no more than 20,000 faces is not the official one: a warning says so.
2. MMPose's COCO-style ``face_landmarks_aflw_train.json``, ``face_landmarks_aflw_test.json``
   and ``face_landmarks_aflw_test_frontal.json`` (converted from HRNet's CSVs of the same
   protocol), in root or its ``annotations/`` folder, read by `CocoReader`; their
   ``box_size`` normaliser is kept in ``attributes["box_size"]``.

The protocol normalises errors by face size (the box), which the metrics compute.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ...schemes import get_scheme
from ..records import FaceRecord, SplitResult
from .base import DatasetReader
from .coco import CocoReader
from .cofw import load_mat_variables

NUM_POINTS = 19
TRAIN_COUNT = 20000
MAT_NAME = "AFLWinfo_release.mat"
SPLITS = ("aflw-train", "aflw-full", "aflw-frontal")
_JSON_FILES = dict(zip(SPLITS, ("face_landmarks_aflw_train.json", "face_landmarks_aflw_test.json",
                                "face_landmarks_aflw_test_frontal.json")))
_MAT_VARIABLES = ("data", "bbox", "mask_new", "nameList", "ra")
log = logging.getLogger(__name__)


def find_aflw_mat(root: Path) -> Path | None:
    """``AFLWinfo_release.mat`` given directly or inside ``root``, or None."""
    if root.is_file():
        return root if root.name == MAT_NAME else None
    return root / MAT_NAME if (root / MAT_NAME).is_file() else None


def find_aflw_json(root: Path) -> dict[str, Path]:
    """Split name -> MMPose AFLW JSON file in ``root`` or ``root/annotations``."""
    if root.is_file():
        return {s: root for s, name in _JSON_FILES.items() if root.name == name}
    for folder in (root, root / "annotations"):
        found = {s: folder / name for s, name in _JSON_FILES.items() if (folder / name).is_file()}
        if found:
            return found
    return {}


def find_flickr_dir(mat_path: Path) -> Path | None:
    """AFLW's ``flickr/`` image folder near the .mat file (see the module docstring), or None."""
    for base in (mat_path.parent, mat_path.parent.parent):
        for sub in ("flickr", "data/flickr", "aflw/data/flickr"):
            if (base / sub).is_dir():
                return base / sub
    return None


def split_indices(order: np.ndarray, mask: np.ndarray, train_count: int = TRAIN_COUNT) -> dict[str, np.ndarray]:
    """0-based row indices per split from the 1-based ``ra`` order [N] and ``mask_new`` [N, 19]."""
    rows = order.astype(np.int64) - 1
    test = rows[train_count:]
    return {
        "aflw-train": rows[:train_count],
        "aflw-full": test,
        "aflw-frontal": test[np.all(mask[test] == 1, axis=1)],
    }


class AflwReader(DatasetReader):
    """AFLW-19 from ``AFLWinfo_release.mat`` or MMPose's COCO-style JSON (scheme ``aflw-19``)."""

    format_name = "aflw"
    default_train_split = "aflw-train"
    default_test_split = "aflw-full"
    train_count = TRAIN_COUNT

    def __init__(self, root: str | Path, scheme=None) -> None:
        super().__init__(root, scheme or get_scheme("aflw-19"))
        if self.scheme.num_points != NUM_POINTS:
            raise ValueError(f"AFLW-19 has {NUM_POINTS} points; scheme {self.scheme.name!r} has {self.scheme.num_points}")
        self.mat_path = find_aflw_mat(self.root)
        self._coco: CocoReader | None = None
        self._mat: dict[str, Any] | None = None
        if self.mat_path is None:
            files = find_aflw_json(self.root)
            if not files:
                raise ValueError(f"{self.root}: neither {MAT_NAME} nor MMPose's face_landmarks_aflw_*.json found")
            self._coco = CocoReader(self.root, self.scheme, files=files)

    @classmethod
    def recognises(cls, root: Path) -> bool:
        return find_aflw_mat(root) is not None or bool(find_aflw_json(root))

    def split_names(self) -> list[str]:
        return self._coco.split_names() if self._coco is not None else list(SPLITS)

    def _read_split(self, split: str) -> SplitResult:
        if self._coco is not None:
            return self._coco.read(split)
        mat = self._load_mat()
        image_dir = find_flickr_dir(self.mat_path)
        result = SplitResult(records=[])
        for row in split_indices(mat["ra"], mat["mask_new"], self.train_count)[split]:
            where = f"{self.mat_path}[{row}]"
            try:
                result.records.append(self._record(mat, int(row), image_dir, where))
            except (ValueError, OSError) as err:
                result.skipped.append((where, str(err)))
        return result

    def _load_mat(self) -> dict[str, Any]:
        if self._mat is None:
            self._mat = _check_mat(self.mat_path, load_mat_variables(self.mat_path, _MAT_VARIABLES))
            if len(self._mat["nameList"]) <= self.train_count:
                log.warning("%s: only %d faces, so the AFLW-19 test splits are empty (the official file has 24,386)",
                            self.mat_path, len(self._mat["nameList"]))
        return self._mat

    def _record(self, mat: dict[str, Any], row: int, image_dir: Path | None, where: str) -> FaceRecord:
        name = mat["nameList"][row]
        if image_dir is None:
            raise FileNotFoundError(f"{where}: no flickr/ image folder found near {self.mat_path}")
        image = image_dir / name
        if not image.is_file():
            raise FileNotFoundError(f"{where}: image not found: {image}")
        xy = mat["data"][row]
        points = np.stack([xy[:NUM_POINTS], xy[NUM_POINTS:]], axis=1)
        left, right, top, bottom = mat["bbox"][row]
        if not (np.all(np.isfinite(points)) and np.all(np.isfinite(mat["bbox"][row]))):
            raise ValueError(f"{where}: non-finite coordinates")
        return FaceRecord(
            image_path=image,
            points=points.astype(np.float32),
            visible=mat["mask_new"][row] == 1,
            box=np.array([left, top, right, bottom], dtype=np.float32),
            attributes={"index": row},
            subset=Path(name).parent.as_posix() if Path(name).parent != Path(".") else "",
        )


def _check_mat(path: Path, mat: dict[str, Any]) -> dict[str, Any]:
    """Validate the shapes of AFLWinfo_release.mat's variables; ValueError names the file and variable."""
    missing = [v for v in _MAT_VARIABLES if v not in mat]
    if missing:
        raise ValueError(f"{path}: no variable(s) {', '.join(missing)} (is this AFLWinfo_release.mat?)")
    names = mat["nameList"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: nameList must be a cell array of strings")
    count = len(names)
    checked = {"nameList": names}
    for variable, columns in (("data", 2 * NUM_POINTS), ("bbox", 4), ("mask_new", NUM_POINTS)):
        value = np.asarray(mat[variable], dtype=np.float64)
        if value.shape != (count, columns):
            raise ValueError(f"{path}: {variable} must be {count} x {columns}, got {value.shape}")
        checked[variable] = value
    order = np.ravel(np.asarray(mat["ra"], dtype=np.float64))
    if sorted(order.tolist()) != list(range(1, count + 1)):
        raise ValueError(f"{path}: ra must be a 1-based permutation of the {count} faces")
    checked["ra"] = order
    return checked
