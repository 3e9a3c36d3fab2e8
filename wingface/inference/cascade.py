"""Chaining stages: stage 1 from the face box, each later stage re-aligned from the one before.

With a CNN-6 then a CNN-7 stage this is the paper's two-stage CNN-6/7 framework: stage 1's
points remove the in-plane rotation and correct the box, stage 2 refines in that frame. Any
models can be chained, and a refinement stage may be repeated.

When a box stage's points show the face rolled by more than ``derotate_deg`` (the angle
of the line between the eye centres) against its square, it runs once more on a square
turned by that roll, so rotated faces (a head on its side, upside down) reach stage 2
nearly upright. Several box stages may lead a cascade: each starts from the squares the one
before settled on, so a first stage trained on the full circle can find the roll and a
second, trained on near-upright faces, place the points. Such an orientation stage turns
the square only beyond ``orient_deg``: faces the next stage reads by itself keep exactly
the squares they would have had without it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..augmentation import Squares
from ..detection.cascade import eye_roll
from ..geometry import angle_difference, apply_affine, box_center, box_from_points, box_size, rotation_about
from ..schemes import LandmarkScheme
from .stages import Stage


def eye_line_roll(points: np.ndarray, scheme: LandmarkScheme) -> np.ndarray:
    """[N, L, 2] points -> [N] roll in radians (counter-clockwise on screen) of the line from
    the subject's right eye centre to the left one (horizontal in an upright face)."""
    right, left = (points[:, list(s)].mean(1) for s in scheme.inter_pupil)
    return eye_roll(np.stack([right, left], axis=1))


def upright_squares(points: np.ndarray, roll: np.ndarray) -> Squares:
    """Landmark-box squares of shapes [N, L, 2] measured in their own upright frame (turned by -roll)."""
    center0 = points.mean(1)
    upright = apply_affine(rotation_about(center0, -roll), points)
    box = box_from_points(upright)
    center = apply_affine(rotation_about(center0, roll), box_center(box)[:, None])[:, 0]
    return Squares(center, box_size(box).max(-1), roll)


class Cascade:
    """Stages run in order; the first must crop from boxes (``crop == "box"``).

    Args:
        stages: the models, stage 1 first.
        repeat_last: how many times the last stage runs (refinement).
        derotate_deg: roll beyond which the last box stage runs again on a turned square;
            None: never.
        orient_deg: the same for the box stages before it (orientation stages).
    """

    DEROTATE_PASSES = 3  # a face rolled past stage 1's training range needs two or three turns

    def __init__(self, stages: Sequence[Stage], repeat_last: int = 1, derotate_deg: float | None = 15.0,
                 orient_deg: float = 60.0) -> None:
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
        self.derotate = None if derotate_deg is None else np.radians(derotate_deg)
        self.orient = np.radians(orient_deg)

    @property
    def scheme(self) -> LandmarkScheme:
        return self.stages[0].spec.scheme

    def run(self, images: Sequence[np.ndarray], squares: Sequence[Squares]) -> list[np.ndarray]:
        """Landmarks [N_i, L, C] per image from landmark-box squares (centre, side, angle) per
        face: the last stage's output (C = 3 when it has an error head: x, y, expected error
        in image pixels; see `Stage.run`)."""
        boxed = next((i for i, s in enumerate(self.stages) if s.spec.crop != "box"), len(self.stages))
        for i, stage in enumerate(self.stages[:boxed]):
            points = stage.run(images, [stage.squares(sq, None) for sq in squares])
            threshold = self.derotate if i == boxed - 1 else self.orient
            for _ in range(self.DEROTATE_PASSES if self.derotate is not None else 0):
                squares, points, changed = self._derotated(stage, images, squares, points, threshold)
                if not changed:
                    break
        for stage in self.stages[boxed:]:
            points = stage.run(images, [stage.squares(sq, p[..., :2]) for sq, p in zip(squares, points)])
        return points

    def _derotated(self, first: Stage, images, squares, points, threshold: float):
        """Box stage ``first`` again, on turned squares, for the faces whose roll differs from
        their square's by more than ``threshold`` (radians); returns (squares, points, whether
        any face was redone)."""
        turned = [upright_squares(p[..., :2], eye_line_roll(p[..., :2], self.scheme)) for p in points]
        redo = [np.abs(angle_difference(t.angle, sq.angle)) > threshold if len(p) else np.zeros(0, bool)
                for t, sq, p in zip(turned, squares, points)]
        if not any(r.any() for r in redo):
            return squares, points, False
        # Only the rolled faces go through stage 1 again.
        again = first.run(images, [first.squares(Squares(t.center[r], t.side[r], t.angle[r]), None)
                                   for r, t in zip(redo, turned)])
        new_squares, new_points = [], []
        for r, t, sq, p, a in zip(redo, turned, squares, points, again):
            p = p.copy()
            p[r] = a
            new_points.append(p)
            new_squares.append(Squares(np.where(r[:, None], t.center, sq.center), np.where(r, t.side, sq.side),
                                       np.where(r, t.angle, sq.angle)))
        return new_squares, new_points, True
