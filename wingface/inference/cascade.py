"""Chaining stages: stage 1 from the face box, each later stage re-aligned from the one before.

With a CNN-6 then a CNN-7 stage this is the paper's two-stage CNN-6/7 framework: stage 1's
points remove the in-plane rotation and correct the box, stage 2 refines in that frame. Any
models can be chained, and a refinement stage may be repeated.

When the first stage after the orientation stages (the anchor) reads the face rolled by more
than ``derotate_deg`` (the angle of the line between the eye centres) against its square, it
runs once more on a square turned by that roll, so rotated faces (a head on its side,
upside down) reach the next stage nearly upright. Orientation stages may lead a cascade:
trained on the full circle, they find the roll, and each hands the next the square it
settled on. An orientation stage turns the square only beyond ``orient_deg``, and then,
where the residual roll allows, by whole quarter turns about its centre: faces the next
stage reads by itself keep exactly the squares they would have had without it, and a photo
turned by 90 or 180 degrees gets the same crops, so the same points, as the upright one.

A cascade may mark its orientation stages (``spec.orientation``, `wingface cascade build
--orientation`); then a face they find upright in its square goes straight to the first
aligned stage, which crops that square (a stage 2 trained to start from the box, as the
shipped one is), and only rolled faces take the box stage between, whose own de-rotation
reads them. Upright faces cost two networks, not three.
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


# Share of a point's reported error that is the distance between an earlier stage's and the
# final reading of it (`Cascade.readings`: stage 1's, or for a face that went straight to
# stage 2 the orientation stage's; the rest: the error head's expectation). Both are pixel
# errors of the same size, so the blend keeps the calibration. The disagreement flags
# failures the head takes for ordinary fits. Chosen on the validation faces of the shipped
# model's twin by the largest sum of the two rank correlations with the error
# (benchmarks/disagreement_share.py; benchmarks/results/disagreement_share.json; session 12,
# the 96-px stage 2): per face 0.49 at share 0, 0.53 at 0.1, 0.54 at 0.2, 0.54 at 0.3; per
# point 0.47, 0.47, 0.45, 0.43 (sums 0.956, 0.996, 0.994, 0.972): 0.1 and 0.2 tie, and 0.2,
# the share since session 11, ranks the faces better.
DISAGREEMENT_SHARE = 0.2
# The same share for a face no stage read before stage 2, whose earlier reading is the mean
# shape placed on its detector keypoints (`Cascade.run`'s ``shapes``): that reading is
# coarser, so its distances are larger. Chosen on the twin's validation faces through the
# bundled detector (benchmarks/keypoint_share.py; keypoint_share.json): with the head's
# shipped scale, per face / per point and mean observed / reported error, 0 0.439 / 0.488 /
# 1.01, 0.05 0.620 / 0.487 / 0.90, 0.1 0.614 / 0.467 / 0.83, 0.2 0.544 / 0.406 / 0.73.
KEYPOINT_SHARE = 0.05


def with_disagreement(final: np.ndarray, box_points: np.ndarray | None,
                      share: float = DISAGREEMENT_SHARE) -> np.ndarray:
    """Final outputs [N, L, C] with, when C = 3 and a box stage ran before, the error column
    blended with each point's distance (image pixels) to that stage's reading ``box_points``
    [N, L, >=2]: ``(1 - share) * expected + share * distance``."""
    if final.shape[-1] < 3 or box_points is None:
        return final
    out = final.copy()
    out[..., 2] = blend_errors(final[..., 2], disagreement(final, box_points), share)
    return out


def blend_errors(expected: np.ndarray, distance: np.ndarray, share: float = DISAGREEMENT_SHARE) -> np.ndarray:
    """``(1 - share) * expected + share * distance`` (pixels, any shape; `DISAGREEMENT_SHARE`)."""
    return (1.0 - share) * expected + share * distance


def disagreement(final: np.ndarray, box_points: np.ndarray) -> np.ndarray:
    """[..., L] distance (image pixels) between each final point and the box stage's reading of it."""
    return np.linalg.norm(final[..., :2] - box_points[..., :2], axis=-1)


def blended(finals: Sequence[np.ndarray], box_points: Sequence[np.ndarray] | None,
            share: float = DISAGREEMENT_SHARE) -> list[np.ndarray]:
    """`with_disagreement` per image of a `Cascade.readings` result."""
    return list(finals) if box_points is None else [with_disagreement(f, b, share) for f, b in zip(finals, box_points)]


def leading_box_stages(stages: Sequence[Stage]) -> int:
    """How many box stages lead ``stages``."""
    return next((i for i, s in enumerate(stages) if s.spec.crop != "box"), len(stages))


def orientation_stages(stages: Sequence[Stage]) -> int:
    """How many orientation stages lead ``stages``: those whose spec says so
    (``spec.orientation``) or, in a cascade that marks none, the box stages before its last
    box stage."""
    marked = next((i for i, s in enumerate(stages) if not s.spec.orientation), len(stages))
    return marked if marked else max(0, leading_box_stages(stages) - 1)


def without_orientation(stages: Sequence[Stage]) -> list[Stage]:
    """``stages`` for faces known to be near upright: less their orientation stages and, in a
    cascade that marks them (see `Cascade`), the box stages that serve only rolled faces.
    Faster; for the shipped model, stage 2 alone from the box (faces within about 20 degrees
    of upright)."""
    return list(stages[upright_start(stages):])


def upright_start(stages: Sequence[Stage]) -> int:
    """Index of the stage a face upright in its square starts at: the first aligned stage
    after the orientation stages in a cascade that marks them (``spec.orientation``), else
    the first stage after the orientation stages."""
    k = orientation_stages(stages)
    if not (stages and stages[0].spec.orientation):
        return k
    return next((i for i in range(k, len(stages)) if stages[i].spec.crop != "box"), k)


class Cascade:
    """Stages run in order: the orientation stages (`orientation_stages`) settle each face's
    square, the next stage (the anchor) starts from it, and every later stage from the points
    of the one before. Where the orientation stages are marked (``spec.orientation``), a face
    they find upright in its square (within ``derotate_deg``) skips the box stages after them:
    its anchor is the first aligned stage, which crops that square (`Stage.squares`); rolled
    faces take every stage.

    Args:
        stages: the models, stage 1 first.
        repeat_last: how many times the last stage runs (refinement).
        derotate_deg: roll beyond which the anchor runs again on a turned square; None: never.
        orient_deg: the same for the orientation stages.
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
        names = {s.spec.scheme.name for s in stages}
        if len(names) > 1:
            raise ValueError(f"cascade stages disagree on the landmark scheme: {sorted(names)}")
        if any(s.spec.orientation for s in stages[orientation_stages(stages):]):
            raise ValueError("orientation stages must lead a cascade")
        if repeat_last < 1:
            raise ValueError(f"repeat_last must be >= 1, got {repeat_last}")
        self.stages = list(stages) + [stages[-1]] * (repeat_last - 1)
        self.derotate = None if derotate_deg is None else np.radians(derotate_deg)
        self.orient = np.radians(orient_deg)

    @property
    def scheme(self) -> LandmarkScheme:
        return self.stages[0].spec.scheme

    def reads_upright(self, points: np.ndarray, angles: np.ndarray) -> np.ndarray:
        """[N] whether shapes [N, L, 2] (image pixels) lie upright in squares turned by
        ``angles`` [N] (radians): their eye line within ``derotate_deg`` of the square's angle
        (every face when the cascade never de-rotates)."""
        limit = np.inf if self.derotate is None else self.derotate
        return np.abs(angle_difference(eye_line_roll(points, self.scheme), angles)) <= limit

    def run(self, images: Sequence[np.ndarray], squares: Sequence[Squares],
            upright: Sequence[np.ndarray] | None = None,
            shapes: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """Landmarks [N_i, L, C] per image from landmark-box squares (centre, side, angle) per
        face: the last stage's output (C = 3 when it has an error head: x, y, expected error
        in image pixels, blended with the stages' disagreement; see `with_disagreement`).

        ``upright`` (bool [N_i] per image) marks faces already known to be upright in their
        squares (within ``derotate_deg``, e.g. by a detector's keypoints): they start at the
        stage `without_orientation` starts at, and where no earlier stage reads them, their
        ``shapes`` ([N_i, L, 2] image pixels per image, e.g. a mean shape placed on those
        keypoints) are the earlier reading blended in (`KEYPOINT_SHARE`)."""
        if upright is None or not any(u.any() for u in upright):
            return blended(*self.readings(images, squares))
        finals, earlier = self._run(images, _picked(squares, upright), first=upright_start(self.stages))
        if earlier is None and shapes is not None:
            known = blended(finals, _picked(shapes, upright), KEYPOINT_SHARE)
        else:
            known = blended(finals, earlier)
        if all(u.all() for u in upright):
            return known
        rest = [~u for u in upright]
        return _merged(known, blended(*self.readings(images, _picked(squares, rest))), upright)

    def readings(self, images: Sequence[np.ndarray], squares: Sequence[Squares]):
        """(the last stage's outputs [N_i, L, C] as its network read them, an earlier reading
        [N_i, L, C'] per image: the anchor's points, or when the anchor is the last stage the
        orientation stage's, or None without one): what `run` blends."""
        return self._run(images, squares, first=0)

    def follow(self, images: Sequence[np.ndarray], points: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Landmarks [N_i, L, C] per image from earlier landmarks [N_i, L, 2] per image (e.g. a
        video's previous frame): the anchor starts from their box square turned by their
        roll, so the orientation stages are not needed, then the stages after it run."""
        squares = [upright_squares(p, eye_line_roll(p, self.scheme)) if len(p) else
                   Squares(np.zeros((0, 2)), np.zeros(0), np.zeros(0))
                   for p in (np.asarray(p, dtype=np.float64)[..., :2] for p in points)]
        return blended(*self._run(images, squares, first=upright_start(self.stages)))

    def _run(self, images: Sequence[np.ndarray], squares: Sequence[Squares], first: int):
        """The orientation stages from ``first``, then the anchor (with its de-rotation) and the
        stages after it; returns what `readings` describes."""
        k = orientation_stages(self.stages)
        shared: dict = {}  # crops of the box stages: an upright face's orientation crop is stage 1's
        oriented = None
        for stage in self.stages[first:k]:
            squares, oriented = self._settled(stage, images, squares, self.orient, quarters=True, shared=shared)
        skip = upright_start(self.stages)
        if first >= k or skip == k:  # no orientation stage ran: the squares are taken as upright
            return self._finish(images, squares, max(first, skip), shared, oriented)
        upright = [self.reads_upright(p[..., :2], sq.angle) if len(p) else np.zeros(0, bool)
                   for p, sq in zip(oriented, squares)]
        if all(u.all() for u in upright):
            return self._finish(images, squares, skip, shared, oriented)
        rolled = [~u for u in upright]
        fast = self._finish(images, _picked(squares, upright), skip, shared, _picked(oriented, upright))
        slow = self._finish(images, _picked(squares, rolled), k, shared, _picked(oriented, rolled))
        return tuple(_merged(f, s_, upright) for f, s_ in zip(fast, slow))

    def _finish(self, images, squares: Sequence[Squares], anchor: int, shared: dict, oriented):
        """The anchor stage from ``squares`` (a box stage crops them, an aligned one places its
        reference in them) with its de-rotation, then the aligned stages after it, each from
        the points before: (final outputs, the anchor's points, or when it is the last stage
        the orientation stage's points ``oriented`` (None without one); see `readings`)."""
        squares, points = self._settled(self.stages[anchor], images, squares, self.derotate, shared=shared)
        if anchor + 1 == len(self.stages):
            return points, oriented
        earlier = points
        for stage in self.stages[anchor + 1:]:
            points = stage.run(images, [stage.squares(sq, p[..., :2]) for sq, p in zip(squares, points)])
        return points, earlier

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


def _picked(per_image: Sequence, masks: Sequence[np.ndarray]) -> list:
    """The faces of each image that ``masks`` [N_i] select: `Squares` or [N_i, ...] arrays."""
    if isinstance(per_image[0], Squares):
        return [Squares(sq.center[m], sq.side[m], sq.angle[m]) for sq, m in zip(per_image, masks)]
    return [a[m] for a, m in zip(per_image, masks)]


def _merged(chosen: Sequence[np.ndarray], others: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list:
    """Per image, the rows of ``chosen`` where ``masks`` is set and of ``others`` elsewhere."""
    merged = []
    for a, b, m in zip(chosen, others, masks):
        out = np.empty((len(m), *(a.shape[1:] if len(a) else b.shape[1:])))
        out[m], out[~m] = a, b
        merged.append(out)
    return merged
