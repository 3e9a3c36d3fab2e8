"""Chaining stages: stage 1 from the face box, each later stage re-aligned from the one before.

With a CNN-6 then a CNN-7 stage this is the paper's two-stage CNN-6/7 framework: stage 1's
points remove the in-plane rotation and correct the box, stage 2 refines in that frame. Any
models can be chained, and a refinement stage may be repeated.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..augmentation import Squares
from ..schemes import LandmarkScheme
from .stages import Stage


class Cascade:
    """Stages run in order; the first must crop from boxes (``crop == "box"``)."""

    def __init__(self, stages: Sequence[Stage], repeat_last: int = 1) -> None:
        if not stages:
            raise ValueError("a cascade needs at least one stage")
        if stages[0].spec.crop != "box":
            raise ValueError("the first stage of a cascade must crop from boxes (crop='box')")
        names = {s.spec.scheme.name for s in stages}
        if len(names) > 1:
            raise ValueError(f"cascade stages disagree on the landmark scheme: {sorted(names)}")
        if repeat_last < 1:
            raise ValueError(f"repeat_last must be >= 1, got {repeat_last}")
        self.stages = list(stages) + [stages[-1]] * (repeat_last - 1)

    @property
    def scheme(self) -> LandmarkScheme:
        return self.stages[0].spec.scheme

    def run(self, images: Sequence[np.ndarray], squares: Sequence[Squares]) -> list[np.ndarray]:
        """Landmarks [N_i, L, 2] per image from landmark-box squares (centre, side, angle) per face."""
        points: list[np.ndarray] | None = None
        for stage in self.stages:
            stage_squares = [stage.squares(sq, None if points is None else points[i]) for i, sq in enumerate(squares)]
            points = stage.run(images, stage_squares)
        return points  # type: ignore[return-value]
