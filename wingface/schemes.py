"""Landmark schemes as data: point count, names, groups, flip pairs and normaliser points.

A scheme is passed explicitly to everything that depends on point semantics (flipping,
metrics, PDB); nothing looks it up by dataset name. The built-in schemes are 300-W (68),
WFLW (98), COFW (29) and AFLW (19); `load_scheme` reads a user scheme from YAML or JSON.

Point indices are 0-based. "Left" and "right" are the subject's, as in the datasets'
own documentation (the subject's right eye is on the image's left).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from .lookup import lookup

__all__ = ["LandmarkScheme", "SCHEMES", "get_scheme", "load_scheme"]


@dataclass(frozen=True)
class LandmarkScheme:
    """A landmark layout.

    Attributes:
        name: short identifier, e.g. ``"300w-68"``.
        num_points: L, the number of points.
        groups: group name -> point indices (jaw, brows, nose, eyes, mouth, ...).
        flip_pairs: (i, j) pairs swapped by a horizontal mirror; unlisted points map to themselves.
        inter_ocular: two point sets; the normaliser is the distance between their means
            (for 300-W the outer eye corners, 36 and 45).
        inter_pupil: two point sets whose means are the eye centres.
        pose_component: which principal component (0-based) of aligned shapes carries yaw,
            used by pose-based data balancing (PC 1 -> 0; PC 2 -> 1 for AFLW-19).
        names: optional per-point names, length L.
    """

    name: str
    num_points: int
    groups: Mapping[str, tuple[int, ...]]
    flip_pairs: tuple[tuple[int, int], ...]
    inter_ocular: tuple[tuple[int, ...], tuple[int, ...]]
    inter_pupil: tuple[tuple[int, ...], tuple[int, ...]]
    pose_component: int = 0
    names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        where = f"scheme {self.name!r}"
        if self.num_points < 1:
            raise ValueError(f"{where}: num_points must be positive, got {self.num_points}")
        if self.names and len(self.names) != self.num_points:
            raise ValueError(f"{where}: {len(self.names)} names for {self.num_points} points")
        seen: set[int] = set()
        for i, j in self.flip_pairs:
            for k in (i, j):
                self._check_index(k, "flip_pairs")
                if k in seen:
                    raise ValueError(f"{where}: point {k} appears in more than one flip pair")
                seen.add(k)
        for key in ("inter_ocular", "inter_pupil"):
            sets = getattr(self, key)
            if len(sets) != 2 or not all(len(s) for s in sets):
                raise ValueError(f"{where}: {key} must be two non-empty point sets")
            for s in sets:
                for k in s:
                    self._check_index(k, key)
        for group, indices in self.groups.items():
            for k in indices:
                self._check_index(k, f"group {group!r}")

    def _check_index(self, k: int, what: str) -> None:
        if not 0 <= k < self.num_points:
            raise ValueError(
                f"scheme {self.name!r}: {what} names point {k}, outside 0..{self.num_points - 1}"
            )

    @property
    def flip_permutation(self) -> np.ndarray:
        """int64 [L]: index map such that ``mirrored[i] = points[perm[i]]`` after negating x."""
        perm = np.arange(self.num_points)
        for i, j in self.flip_pairs:
            perm[i], perm[j] = j, i
        return perm

    def mirror(self, points: np.ndarray, width: float) -> np.ndarray:
        """Mirror shapes horizontally in an image of ``width`` pixels.

        Args:
            points: [..., L, 2] 0-based pixel coordinates (pixel centres at integers).
            width: image width in pixels; x becomes ``width - 1 - x``.
        Returns:
            [..., L, 2] mirrored shapes with left/right points swapped.
        """
        pts = np.asarray(points)
        out = pts[..., self.flip_permutation, :].copy()
        out[..., 0] = (width - 1) - out[..., 0]
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as stored in checkpoints and scheme files."""
        return {
            "name": self.name,
            "num_points": self.num_points,
            "groups": {k: list(v) for k, v in self.groups.items()},
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "inter_ocular": [list(s) for s in self.inter_ocular],
            "inter_pupil": [list(s) for s in self.inter_pupil],
            "pose_component": self.pose_component,
            "names": list(self.names),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "scheme") -> "LandmarkScheme":
        """Build a scheme from plain data; unknown or missing keys raise ValueError naming them."""
        required = {"name", "num_points", "flip_pairs", "inter_ocular", "inter_pupil"}
        allowed = required | {"groups", "pose_component", "names"}
        missing = required - set(data)
        unknown = set(data) - allowed
        if missing:
            raise ValueError(f"{source}: missing key(s) {sorted(missing)}")
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        try:
            return cls(
                name=str(data["name"]),
                num_points=int(data["num_points"]),
                groups={str(k): tuple(int(i) for i in v) for k, v in (data.get("groups") or {}).items()},
                flip_pairs=tuple((int(a), int(b)) for a, b in data["flip_pairs"]),
                inter_ocular=_point_sets(data["inter_ocular"]),
                inter_pupil=_point_sets(data["inter_pupil"]),
                pose_component=int(data.get("pose_component", 0)),
                names=tuple(str(n) for n in data.get("names") or ()),
            )
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from None


def _point_sets(value: Sequence[Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Accept ``[a, b]`` (two single points) or ``[[a, ...], [b, ...]]`` (two sets)."""
    sets = tuple(tuple(int(i) for i in (s if isinstance(s, (list, tuple)) else [s])) for s in value)
    if len(sets) != 2:
        raise ValueError(f"expected two point sets, got {len(sets)}")
    return sets  # type: ignore[return-value]


def _mirror_pairs(left: Sequence[int], right: Sequence[int]) -> list[tuple[int, int]]:
    return list(zip(left, right))


def _ibug68() -> LandmarkScheme:
    pairs = [(i, 16 - i) for i in range(8)]
    pairs += _mirror_pairs(range(17, 22), range(26, 21, -1))
    pairs += [(31, 35), (32, 34)]
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]
    pairs += [(60, 64), (61, 63), (65, 67)]
    groups = {
        "jaw": range(0, 17), "right_brow": range(17, 22), "left_brow": range(22, 27),
        "nose": range(27, 36), "right_eye": range(36, 42), "left_eye": range(42, 48),
        "outer_mouth": range(48, 60), "inner_mouth": range(60, 68),
    }
    return LandmarkScheme(
        name="300w-68", num_points=68,
        groups={k: tuple(v) for k, v in groups.items()},
        flip_pairs=tuple(pairs),
        inter_ocular=((36,), (45,)),
        inter_pupil=(tuple(range(36, 42)), tuple(range(42, 48))),
        pose_component=0,
    )


def _wflw98() -> LandmarkScheme:
    pairs = [(i, 32 - i) for i in range(16)]
    pairs += [(33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47)]
    pairs += [(55, 59), (56, 58)]
    pairs += [(60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73)]
    pairs += [(76, 82), (77, 81), (78, 80), (83, 87), (84, 86), (88, 92), (89, 91), (93, 95)]
    pairs += [(96, 97)]
    groups = {
        "jaw": range(0, 33), "right_brow": range(33, 42), "left_brow": range(42, 51),
        "nose": range(51, 60), "right_eye": range(60, 68), "left_eye": range(68, 76),
        "outer_mouth": range(76, 88), "inner_mouth": range(88, 96), "pupils": (96, 97),
    }
    return LandmarkScheme(
        name="wflw-98", num_points=98,
        groups={k: tuple(v) for k, v in groups.items()},
        flip_pairs=tuple(pairs),
        inter_ocular=((60,), (72,)),
        inter_pupil=((96,), (97,)),
        pose_component=0,
    )


def _cofw29() -> LandmarkScheme:
    pairs = [(0, 1), (2, 3), (4, 6), (5, 7), (8, 9), (10, 11), (12, 14), (13, 15), (16, 17),
             (18, 19), (22, 23)]
    groups = {
        "brows": range(0, 8), "eyes": range(8, 16), "pupils": (16, 17), "nose": range(18, 22),
        "mouth": range(22, 28), "chin": (28,),
    }
    return LandmarkScheme(
        name="cofw-29", num_points=29,
        groups={k: tuple(v) for k, v in groups.items()},
        flip_pairs=tuple(pairs),
        inter_ocular=((8,), (9,)),
        inter_pupil=((16,), (17,)),
        pose_component=0,
    )


def _aflw19() -> LandmarkScheme:
    pairs = [(0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 14), (15, 17)]
    groups = {
        "right_brow": (0, 1, 2), "left_brow": (3, 4, 5), "right_eye": (6, 7, 8),
        "left_eye": (9, 10, 11), "nose": (12, 13, 14), "mouth": (15, 16, 17), "chin": (18,),
    }
    return LandmarkScheme(
        name="aflw-19", num_points=19,
        groups=groups,
        flip_pairs=tuple(pairs),
        inter_ocular=((6,), (11,)),
        inter_pupil=((7,), (10,)),
        pose_component=1,
    )


SCHEMES: Mapping[str, LandmarkScheme] = {
    s.name: s for s in (_ibug68(), _wflw98(), _cofw29(), _aflw19())
}


@lru_cache(maxsize=1)
def mean_shape_68() -> np.ndarray:
    """The bundled mean 300-W shape (``assets/mean_shape_68.json``), read-only float64 [68, 2]:
    2,012 training faces similarity-aligned and averaged, centred on its landmark box with
    box width 1; x right, y down."""
    text = resources.files("wingface").joinpath("assets", "mean_shape_68.json").read_text()
    points = np.array(json.loads(text)["points"], dtype=np.float64)
    points.setflags(write=False)
    return points


def get_scheme(name: str) -> LandmarkScheme:
    """Return a built-in scheme by name (``300w-68``, ``wflw-98``, ``cofw-29``, ``aflw-19``)."""
    return lookup(SCHEMES, name, "scheme")


def load_scheme(path: str | Path) -> LandmarkScheme:
    """Load a user-defined scheme from a ``.yaml``/``.yml`` or ``.json`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scheme file not found: {path}")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: not valid {path.suffix[1:]}: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at top level")
    return LandmarkScheme.from_dict(data, source=str(path))
