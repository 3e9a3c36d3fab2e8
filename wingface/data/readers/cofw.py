"""COFW (Burgos-Artizzu et al., ICCV 2013): ``COFW_train_color.mat`` / ``COFW_test_color.mat``.

Each file holds the images inline (``IsTr`` / ``IsT``: a cell array of greyscale or RGB uint8
images), the points (``phisTr`` / ``phisT``: N x 87 = 29 x, 29 y, 29 occlusion flags) and the
boxes (``bboxesTr`` / ``bboxesT``: N x 4 = x, y, w, h). The greyscale originals
``COFW_train.mat`` / ``COFW_test.mat`` are used when the colour files are absent. Both MATLAB v5
files (scipy) and v7.3 files (HDF5, h5py) are read.

Coordinates are 1-based Matlab pixel positions; points and box corners become 0-based by
subtracting 1 (MMPose's ``parse_cofw_dataset.py`` does the same for points). Occlusion flag 1
means occluded: ``visible`` is False there and ``attributes["occluded"]`` keeps the flags.

Records carry the decoded RGB image in ``FaceRecord.image``; ``image_path`` is the .mat file,
``attributes["index"]`` the 0-based face index in it and ``subset`` the file name. Root may be
the folder holding the files or one .mat file (a name containing "test" is the test split).
A file that cannot be read raises ValueError; a bad face is skipped with its reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from ...schemes import get_scheme
from ..images import to_rgb_uint8
from ..records import FaceRecord, SplitResult
from .base import DatasetReader

# split -> (file names in order of preference, (images, points, boxes) variable names)
_SPLITS = {
    "cofw-train": (("COFW_train_color.mat", "COFW_train.mat"), ("IsTr", "phisTr", "bboxesTr")),
    "cofw-test": (("COFW_test_color.mat", "COFW_test.mat"), ("IsT", "phisT", "bboxesT")),
}


def load_mat_variables(path: str | Path, names: Sequence[str]) -> dict[str, Any]:
    """Read named variables from a MATLAB v5 or v7.3 (HDF5) .mat file, in MATLAB orientation.

    Numeric arrays keep MATLAB's shape (an N x 87 matrix is [N, 87] from either version;
    v7.3 stores it transposed and is transposed back), char arrays become ``str`` and cell
    arrays a list of their converted elements in MATLAB's linear (column-major) order.
    Variables absent from the file are left out of the result. Raises ValueError naming the
    file when it is not a readable .mat file or a variable has an unsupported type.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MATLAB file not found: {path}")
    if h5py.is_hdf5(str(path)):
        return _load_v73(path, names)
    try:
        raw = scipy.io.loadmat(str(path), variable_names=list(names))
    except (MatReadError, ValueError, TypeError, OSError) as err:
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({err})") from None
    return {name: _v5_value(raw[name]) for name in names if name in raw}


def _v5_value(value: np.ndarray) -> Any:
    if value.dtype == object:
        return [_v5_value(np.asarray(v)) for v in value.ravel(order="F")]
    if value.dtype.kind == "U":
        return "".join(value.ravel(order="F").tolist())
    return value


def _load_v73(path: Path, names: Sequence[str]) -> dict[str, Any]:
    try:
        with h5py.File(path, "r") as f:
            return {name: _h5_value(f, f[name], f"{path}:{name}") for name in names if name in f}
    except OSError as err:
        raise ValueError(f"{path}: not a readable MATLAB v7.3 file ({err})") from None


def _h5_value(f: h5py.File, obj: Any, where: str) -> Any:
    if not isinstance(obj, h5py.Dataset):
        raise ValueError(f"{where}: MATLAB structs are not supported")
    matlab_class = obj.attrs.get("MATLAB_class", b"")
    matlab_class = matlab_class.decode() if isinstance(matlab_class, bytes) else str(matlab_class)
    if obj.attrs.get("MATLAB_empty", 0):
        return "" if matlab_class == "char" else np.zeros((0, 0))
    data = obj[()]
    if h5py.check_dtype(ref=obj.dtype) is not None:
        # HDF5 keeps MATLAB's column-major order, so its row-major order is MATLAB's linear order.
        return [_h5_value(f, f[ref], f"{where}{{{k + 1}}}") for k, ref in enumerate(np.ravel(data))]
    if matlab_class == "char":
        return "".join(chr(int(c)) for c in np.ravel(data))
    return np.asarray(data).T


def find_cofw_files(root: Path) -> dict[str, Path]:
    """Split name -> .mat file for a COFW folder (colour files preferred) or a single .mat file."""
    if root.is_file():
        if root.suffix.lower() != ".mat":
            return {}
        return {"cofw-test" if "test" in root.name.lower() else "cofw-train": root}
    found = {}
    for split, (names, _) in _SPLITS.items():
        path = next((root / n for n in names if (root / n).is_file()), None)
        if path is not None:
            found[split] = path
    return found


class CofwReader(DatasetReader):
    """COFW .mat files with inline images (29 points, scheme ``cofw-29``)."""

    format_name = "cofw"
    default_train_split = "cofw-train"
    default_test_split = "cofw-test"

    def __init__(self, root: str | Path, scheme=None) -> None:
        super().__init__(root, scheme or get_scheme("cofw-29"))
        self.files = find_cofw_files(self.root)
        if not self.files:
            raise ValueError(f"{self.root}: no COFW .mat files (COFW_train_color.mat, COFW_test_color.mat) found")

    @classmethod
    def recognises(cls, root: Path) -> bool:
        if root.is_file():
            return root.suffix.lower() == ".mat" and root.name.lower().startswith("cofw")
        return bool(find_cofw_files(root))

    def split_names(self) -> list[str]:
        return [s for s in _SPLITS if s in self.files]

    def _read_split(self, split: str) -> SplitResult:
        path = self.files[split]
        images, phis, boxes = self._load(path, _SPLITS[split][1])
        result = SplitResult(records=[])
        for i, image in enumerate(images):
            try:
                result.records.append(self._record(path, i, image, phis[i], None if boxes is None else boxes[i]))
            except ValueError as err:
                result.skipped.append((f"{path}[{i}]", str(err)))
        return result

    def _load(self, path: Path, names: tuple[str, str, str]) -> tuple[list, np.ndarray, np.ndarray | None]:
        images_name, phis_name, boxes_name = names
        values = load_mat_variables(path, names)
        missing = [n for n in (images_name, phis_name) if n not in values]
        if missing:
            raise ValueError(f"{path}: no variable(s) {', '.join(missing)} (is this a COFW .mat file?)")
        images = values[images_name]
        phis = np.asarray(values[phis_name], dtype=np.float64)
        if not isinstance(images, list) or phis.ndim != 2 or len(phis) != len(images):
            raise ValueError(f"{path}: {images_name} must be a cell array with one row of {phis_name} per image")
        if phis.shape[1] != 3 * self.scheme.num_points:
            raise ValueError(f"{path}: {phis_name} has {phis.shape[1]} columns, scheme {self.scheme.name!r} "
                             f"needs {3 * self.scheme.num_points} (x, y, occlusion per point)")
        boxes = values.get(boxes_name)
        if boxes is not None:
            boxes = np.asarray(boxes, dtype=np.float64)
            if boxes.shape != (len(images), 4):
                raise ValueError(f"{path}: {boxes_name} must be {len(images)} x 4, got {boxes.shape}")
        return images, phis, boxes

    def _record(self, path: Path, index: int, image: Any, row: np.ndarray, box: np.ndarray | None) -> FaceRecord:
        where = f"{path}[{index}]"
        num = self.scheme.num_points
        points = np.stack([row[:num], row[num:2 * num]], axis=1) - 1.0
        occluded = row[2 * num:]
        if not np.all(np.isfinite(points)):
            raise ValueError(f"{where}: non-finite point coordinates")
        if not np.all((occluded == 0) | (occluded == 1)):
            raise ValueError(f"{where}: occlusion flags must be 0 or 1")
        return FaceRecord(
            image_path=path,
            points=points.astype(np.float32),
            visible=occluded == 0,
            box=None if box is None else _xywh_to_box(box, where),
            attributes={"index": index, "occluded": occluded == 1},
            subset=path.name,
            image=to_rgb_uint8(np.asarray(image), name=where),
        )


def _xywh_to_box(box: np.ndarray, where: str) -> np.ndarray:
    """1-based Matlab (x, y, w, h) -> 0-based float32 (x0, y0, x1, y1)."""
    x, y, w, h = box
    if not (np.all(np.isfinite(box)) and w >= 0 and h >= 0):
        raise ValueError(f"{where}: bad box (x, y, w, h) = {box.tolist()}")
    return np.array([x - 1, y - 1, x - 1 + w, y - 1 + h], dtype=np.float32)
