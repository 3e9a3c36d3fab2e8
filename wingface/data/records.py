"""The one record every dataset reader yields, and the result of reading a split."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True, eq=False)
class FaceRecord:
    """One annotated face.

    Attributes:
        image_path: the image file (for container formats such as COFW's .mat, the container).
        points: float32 [L, 2], 0-based pixel coordinates (integers are pixel centres).
        visible: optional bool [L]; False marks an occluded or unannotated point.
        box: optional float32 [4] (x0, y0, x1, y1) given by the dataset (e.g. a detector box).
        attributes: optional flags or values (WFLW pose/expression/..., COFW occlusion).
        subset: which part of the dataset the face comes from, e.g. ``"helen/testset"``.
        image: the decoded RGB uint8 image when the format stores pixels inline (COFW).

    Records compare by identity (their arrays make value equality ambiguous).
    """

    image_path: Path
    points: np.ndarray
    visible: np.ndarray | None = None
    box: np.ndarray | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    subset: str = ""
    image: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        """A human-readable identifier for messages (container formats add the face's index)."""
        index = self.attributes.get("index")
        return f"{self.image_path}[{index}]" if index is not None else str(self.image_path)


@dataclass
class SplitResult:
    """Records of one split plus the items that were skipped, each with its reason."""

    records: list[FaceRecord]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)
