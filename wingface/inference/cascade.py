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
the square only beyond ``orient_deg``, and then, where the residual roll allows, by whole
quarter turns about its centre: faces the next stage reads by itself keep exactly the
squares they would have had without it, and a photo turned by 90 or 180 degrees gets the
same crops, so the same points, as the upright one.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..detection.cascade import eye_roll
from ..geometry import Squares, angle_difference, upright_box
from ..schemes import LandmarkScheme
from .stages import Stage


def eye_line_roll(points: np.ndarray, scheme: LandmarkScheme) -> np.ndarray:
    """[N, L, 2] points -> [N] roll in radians (counter-clockwise on screen) of the line from
    the subject's right eye centre to the left one (horizontal in an upright face)."""
    right, left = (points[:, list(s)].mean(1) for s in scheme.inter_pupil)
    return eye_roll(np.stack([right, left], axis=1))


def upright_squares(points: np.ndarray, roll: np.ndarray) -> Squares:
    """Landmark-box squares of shapes [N, L, 2] measured in their own upright frame (turned by -roll)."""
    center, size = upright_box(points, roll)
    return Squares(center, size.max(-1), roll)


def quarter_turned(squares: Squares, points: np.ndarray, roll: np.ndarray, snap: float) -> Squares:
    """``squares`` turned about their centres by the multiple of 90 degrees nearest to the
    difference between ``roll`` [N] (radians) and their angle (the same pixels read in
    another order), where that leaves at most ``snap`` radians of roll; the other faces get
    the upright square of their points [N, L, 2] (`upright_squares`)."""
    quarters = np.round(angle_difference(roll, squares.angle) / (np.pi / 2))
    angle = squares.angle + quarters * (np.pi / 2)
    snapped = np.abs(angle_difference(roll, angle)) <= snap
    upright = upright_squares(points, roll)
    return Squares(np.where(snapped[:, None], squares.center, upright.center),
                   np.where(snapped, squares.side, upright.side), np.where(snapped, angle, upright.angle))


# Share of a point's reported error that is the distance between the last box stage's and
# the final reading of it (the rest: the error head's expectation). Both are pixel errors of
# the same size, so the blend keeps the calibration. The disagreement flags failures the head
# takes for ordinary fits. Chosen on the validation faces of the shipped model's twin, as the
# share with the largest sum of the two rank correlations with the error
# (benchmarks/disagreement_share.py; benchmarks/results/disagreement_share.json): per face
# 0.60 at share 0, 0.63 at 0.1, 0.64 at 0.2, 0.65 at 0.3; per point 0.48, 0.49, 0.48, 0.46
# (sums 1.085, 1.112, 1.117, 1.101; 0.15 ties 0.2).
DISAGREEMENT_SHARE = 0.2


def with_disagreement(final: np.ndarray, box_points: np.ndarray | None) -> np.ndarray:
    """Final outputs [N, L, C] with, when C = 3 and a box stage ran before, the error column
    blended with each point's distance (image pixels) to that stage's reading ``box_points``
    [N, L, >=2]: ``(1 - share) * expected + share * distance`` (`DISAGREEMENT_SHARE`)."""
    if final.shape[-1] < 3 or box_points is None:
        return final
    out = final.copy()
    out[..., 2] = blend_errors(final[..., 2], disagreement(final, box_points))
    return out


def blend_errors(expected: np.ndarray, distance: np.ndarray, share: float = DISAGREEMENT_SHARE) -> np.ndarray:
    """``(1 - share) * expected + share * distance`` (pixels, any shape; `DISAGREEMENT_SHARE`)."""
    return (1.0 - share) * expected + share * distance


def disagreement(final: np.ndarray, box_points: np.ndarray) -> np.ndarray:
    """[..., L] distance (image pixels) between each final point and the box stage's reading of it."""
    return np.linalg.norm(final[..., :2] - box_points[..., :2], axis=-1)


def blended(finals: Sequence[np.ndarray], box_points: Sequence[np.ndarray] | None) -> list[np.ndarray]:
    """`with_disagreement` per image of a `Cascade.readings` result."""
    return list(finals) if box_points is None else [with_disagreement(f, b) for f, b in zip(finals, box_points)]


def leading_box_stages(stages: Sequence[Stage]) -> int:
    """How many box stages lead ``stages`` (the orientation stages and the last box stage)."""
    return next((i for i, s in enumerate(stages) if s.spec.crop != "box"), len(stages))


def without_orientation(stages: Sequence[Stage]) -> list[Stage]:
    """``stages`` less their orientation stages (the box stages before the last box stage):
    faster, for faces within the next stage's training roll (+-60 degrees for the shipped model)."""
    return list(stages[max(0, leading_box_stages(stages) - 1):])


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
    # An orientation stage turns by whole quarter turns when that leaves at most this roll
    # (radians): most faces of a photo turned by 90 or 180 degrees; a face rolled by about
    # 45 degrees is turned onto its own roll instead. 300w-common with gt boxes, IO % at
    # 45 / 90 / 180 degrees: 3.897 / 3.818 / 3.809 with 15 degrees, 3.961 / - / - with 30,
    # 3.938 / 3.816 / 3.807 by quarter turns only (upright 3.810).
    QUARTER_SNAP = np.radians(15.0)

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
        in image pixels, blended with the stages' disagreement; see `with_disagreement`)."""
        return blended(*self.readings(images, squares))

    def readings(self, images: Sequence[np.ndarray], squares: Sequence[Squares]):
        """(the last stage's outputs [N_i, L, C] as its network read them, the last box
        stage's points [N_i, L, C'] or None when no stage runs after it) per image: what `run`
        blends."""
        return self._run(images, squares, first=0)

    def follow(self, images: Sequence[np.ndarray], points: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Landmarks [N_i, L, C] per image from earlier landmarks [N_i, L, 2] per image (e.g. a
        video's previous frame): the last box stage starts from their box square turned by
        their roll, so the orientation stages are not needed, then the aligned stages run."""
        squares = [upright_squares(p, eye_line_roll(p, self.scheme)) if len(p) else
                   Squares(np.zeros((0, 2)), np.zeros(0), np.zeros(0))
                   for p in (np.asarray(p, dtype=np.float64)[..., :2] for p in points)]
        return blended(*self._run(images, squares, first=max(0, leading_box_stages(self.stages) - 1)))

    def _run(self, images: Sequence[np.ndarray], squares: Sequence[Squares], first: int):
        """Box stages from ``first`` (the orientation stages, then the last box stage), then the
        aligned stages; returns what `readings` describes."""
        last_box = max(first, leading_box_stages(self.stages) - 1)
        shared: dict = {}  # crops of the box stages: an upright face's orientation crop is stage 1's
        for stage in self.stages[first:last_box]:
            squares = self._settled(stage, images, squares, self.orient, quarters=True, shared=shared)[0]
        return self._finish(images, squares, last_box, shared)

    def _finish(self, images, squares: Sequence[Squares], last_box: int, shared: dict):
        """The last box stage (with its de-rotation) and the aligned stages after it:
        (final outputs, the box stage's points or None; see `readings`)."""
        squares, box_points = self._settled(self.stages[last_box], images, squares, self.derotate, shared=shared)
        if last_box + 1 == len(self.stages):
            return box_points, None
        points = box_points
        for stage in self.stages[last_box + 1:]:
            points = stage.run(images, [stage.squares(sq, p[..., :2]) for sq, p in zip(squares, points)])
        return points, box_points

    def _settled(self, stage: Stage, images, squares: Sequence[Squares], threshold: float | None,
                 quarters: bool = False, shared: dict | None = None):
        """(squares, points) of box ``stage`` after turning the squares of faces whose roll
        differs from them by more than ``threshold`` (radians; see `_derotated`); ``shared``:
        see `Stage.run`."""
        points = stage.run(images, [stage.squares(sq, None) for sq in squares], shared)
        for _ in range(self.DEROTATE_PASSES if self.derotate is not None else 0):
            squares, points, changed = self._derotated(stage, images, squares, points, threshold, quarters)
            if not changed:
                break
        return squares, points

    def _derotated(self, first: Stage, images, squares, points, threshold: float, quarters: bool):
        """Box stage ``first`` again, on turned squares, for the faces whose roll differs from
        their square's by more than ``threshold`` (radians): by whole quarter turns of the same
        square (`quarter_turned`) or, without ``quarters``, onto the points' own roll and box
        (`upright_squares`); returns (squares, points, whether any face was redone)."""
        rolls = [eye_line_roll(p[..., :2], self.scheme) if len(p) else np.zeros(0) for p in points]
        redo = [np.abs(angle_difference(roll, sq.angle)) > threshold for roll, sq in zip(rolls, squares)]
        if not any(r.any() for r in redo):
            return squares, points, False
        turned = [quarter_turned(sq, p[..., :2], roll, self.QUARTER_SNAP) if quarters else
                  upright_squares(p[..., :2], roll) for sq, p, roll in zip(squares, points, rolls)]
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
