"""The cascade's de-rotation: box stages turn their squares to the face's roll, and a leading
orientation stage turns them only for faces the next stage could not read by itself."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from wingface.geometry import Squares
from wingface.bench.predict_speed import random_cascade
from wingface.data.synthetic import synthetic_shape
from wingface.geometry import angle_difference, apply_affine, rotation_about
from wingface.inference.cascade import (DISAGREEMENT_SHARE, KEYPOINT_SHARE, Cascade, eye_line_roll,
                                       orientation_stages, with_disagreement, without_orientation)
from wingface.inference.stages import Stage
from wingface.inference.torch_backend import TorchBackend
from wingface.schemes import get_scheme

SCHEME = get_scheme("300w-68")
CENTRE = np.array([100.0, 100.0])


class _ReadsWithin(Stage):
    """A box stage that 'sees' a face rolled by ``truth`` radians at CENTRE: it gets the roll
    right when its square is within ``reach`` of it, and otherwise reports a face upright in
    its square (what a network shows outside its training range). Counts the faces it ran."""

    def __init__(self, spec, truth: float, reach: float) -> None:
        super().__init__(spec, backend=None)
        self.truth, self.reach, self.faces = truth, reach, 0
        self.shape = synthetic_shape(SCHEME, np.random.default_rng(0)) * 40 + CENTRE

    def run(self, images, squares, shared=None):
        out = []
        for sq in squares:
            self.faces += len(sq.angle)
            seen = np.where(np.abs(angle_difference(self.truth, sq.angle)) < self.reach, self.truth, sq.angle)
            out.append(np.stack([apply_affine(rotation_about(CENTRE, a), self.shape) for a in seen]))
        return out


def _stages(truth: float):
    spec = random_cascade(seed=0)[0].spec
    return _ReadsWithin(spec, truth, np.radians(181)), _ReadsWithin(spec, truth, np.radians(60))


@pytest.mark.parametrize("degrees", [0.0, 30.0])
def test_faces_the_second_stage_can_read_keep_their_squares(degrees: float) -> None:
    orient, stage = _stages(np.radians(degrees))
    square = Squares(CENTRE[None], np.array([90.0]), np.zeros(1))
    points = Cascade([orient, stage]).run([np.zeros((200, 200, 3), np.uint8)], [square])[0]
    assert orient.faces == 1  # never turned: 30 degrees is under orient_deg (60)
    roll = float(np.degrees(eye_line_roll(points, SCHEME))[0])
    assert roll == pytest.approx(degrees, abs=1e-6)
    assert stage.faces == (1 if degrees < 15 else 2)  # the second stage de-rotates as before


@pytest.mark.parametrize("degrees", [90.0, 180.0, -135.0])
def test_an_orientation_stage_turns_the_square_for_strongly_rolled_faces(degrees: float) -> None:
    orient, stage = _stages(np.radians(degrees))
    square = Squares(CENTRE[None], np.array([90.0]), np.zeros(1))
    points = Cascade([orient, stage]).run([np.zeros((200, 200, 3), np.uint8)], [square])[0]
    assert orient.faces == 2  # read once, then once more on the turned square
    assert stage.faces == 1  # the second stage read it at once: its square was already turned
    assert abs(float(np.degrees(angle_difference(eye_line_roll(points, SCHEME)[0], np.radians(degrees))))) < 1e-6


def test_without_an_orientation_stage_a_face_beyond_reach_stays_unread() -> None:
    _, stage = _stages(np.radians(180.0))
    points = Cascade([stage]).run([np.zeros((200, 200, 3), np.uint8)], [Squares(CENTRE[None], np.array([90.0]),
                                                                               np.zeros(1))])[0]
    assert abs(float(np.degrees(eye_line_roll(points, SCHEME))[0])) < 1e-6  # read as upright: wrong



class _Records(_ReadsWithin):
    """`_ReadsWithin` that keeps the squares it was given."""

    def run(self, images, squares, shared=None):
        self.given = list(squares)
        return super().run(images, squares, shared)


@pytest.mark.parametrize("seen, turned", [(183.0, 180.0), (-96.0, -90.0), (130.0, 130.0)])
def test_an_orientation_stage_turns_by_quarter_turns_when_they_leave_little_roll(seen: float, turned: float) -> None:
    """A photo turned by 90 or 180 degrees gets the upright photo's crops whatever the small
    error of the orientation estimate; a face rolled far from any quarter turn is turned onto
    its own roll and box instead."""
    orient = _ReadsWithin(random_cascade(seed=0)[0].spec, np.radians(seen), np.radians(181))
    stage = _Records(orient.spec, np.radians(seen), np.radians(60))
    square = Squares(CENTRE[None] + 3.0, np.array([90.0]), np.zeros(1))
    Cascade([orient, stage]).run([np.zeros((200, 200, 3), np.uint8)], [square])
    given = stage.given[0]
    assert float(np.degrees(angle_difference(given.angle[0], np.radians(turned)))) == pytest.approx(0.0, abs=1e-9)
    snapped = seen != turned
    np.testing.assert_allclose(given.center, square.center) if snapped else \
        np.testing.assert_allclose(given.center, CENTRE[None], atol=15.0)
    assert bool(given.side[0] == 90.0 * (1 + stage.spec.box_margin)) is snapped  # the same square, turned


def test_the_error_column_blends_the_head_with_the_stages_disagreement() -> None:
    final = np.zeros((1, 3, 3))
    final[0, :, 2] = 2.0  # the head expects 2 px everywhere
    box = np.zeros((1, 3, 2))
    box[0, 1] = [3.0, 4.0]  # stage 1 read point 1 5 px away
    blended = with_disagreement(final, box)
    np.testing.assert_allclose(blended[0, :, 2], [2.0 * (1 - DISAGREEMENT_SHARE),
                                                  2.0 * (1 - DISAGREEMENT_SHARE) + 5.0 * DISAGREEMENT_SHARE,
                                                  2.0 * (1 - DISAGREEMENT_SHARE)])
    np.testing.assert_array_equal(blended[..., :2], final[..., :2])
    assert with_disagreement(final, None) is final  # no box stage before it: the head's own figure
    assert with_disagreement(final[..., :2], box).shape == (1, 3, 2)  # no error head: nothing to blend


def test_an_upright_face_is_cropped_once_for_the_orientation_stage_and_stage_1() -> None:
    """The orientation stage and stage 1 share a crop contract: a face the first leaves
    unturned reaches the second in the crop already taken."""
    stages = [Stage(s.spec, TorchBackend(s)) for s in random_cascade(seed=0)]
    orient = Stage(stages[0].spec, stages[0].backend)
    calls = []
    for stage in (orient, stages[0]):
        crops = stage.crops
        stage.crops = lambda image, squares, crops=crops: calls.append(1) or crops(image, squares)
    Cascade([orient, *stages], derotate_deg=None).run([np.zeros((200, 200, 3), np.uint8)],
                                                      [Squares(CENTRE[None], np.array([90.0]), np.zeros(1))])
    assert len(calls) == 1


def test_a_marked_orientation_stage_hands_its_turned_square_to_the_next_stage() -> None:
    """With ``spec.orientation`` the first stage only settles the square (here half a turn):
    the stage after it, the anchor, starts from that square, and alone is the fast path."""
    spec = random_cascade(seed=0)[0].spec
    orient = _ReadsWithin(replace(spec, orientation=True), np.radians(180.0), np.radians(181))
    anchor = _Records(spec, np.radians(180.0), np.radians(60))
    square = Squares(CENTRE[None] + 3.0, np.array([90.0]), np.zeros(1))
    assert orientation_stages([orient, anchor]) == 1 and without_orientation([orient, anchor]) == [anchor]
    Cascade([orient, anchor]).run([np.zeros((200, 200, 3), np.uint8)], [square])
    given = anchor.given[0]
    np.testing.assert_allclose(given.center, square.center)
    assert float(np.degrees(angle_difference(given.angle[0], np.pi))) == pytest.approx(0.0, abs=1e-9)


def test_unmarked_cascades_keep_their_positional_orientation_stages() -> None:
    box, aligned = (Stage(s.spec, None) for s in random_cascade(seed=0))
    assert orientation_stages([box, box, aligned]) == 1  # the box stages before the last box stage
    assert orientation_stages([box, aligned]) == 0
    marked = Stage(replace(box.spec, orientation=True), None)
    with pytest.raises(ValueError, match="orientation stages must lead"):
        Cascade([box, marked, aligned])
    with pytest.raises(ValueError, match="orientation stage crops from boxes"):
        replace(aligned.spec, orientation=True)


class _Aligned(Stage):
    """An aligned stage that returns the box stage's shape, upright in whatever square it got; records them."""

    def __init__(self, spec, shape) -> None:
        super().__init__(spec, backend=None)
        self.shape, self.given = shape, []

    def run(self, images, squares, shared=None):
        self.given += list(squares)
        return [np.stack([apply_affine(rotation_about(CENTRE, a), self.shape) for a in sq.angle])
                if len(sq.angle) else np.zeros((0, *self.shape.shape)) for sq in squares]


@pytest.mark.parametrize("degrees, stage1_runs", [(5.0, False), (30.0, True), (180.0, False)])
def test_faces_a_marked_orientation_stage_finds_upright_skip_stage_1(degrees: float, stage1_runs: bool) -> None:
    """Upright in its (possibly quarter-turned) square, a face goes from the orientation
    stage straight to stage 2; rolled beyond the de-rotation threshold, it takes stage 1."""
    box, aligned = (s.spec for s in random_cascade(seed=0))
    orient = _ReadsWithin(replace(box, orientation=True), np.radians(degrees), np.radians(181))
    stage1 = _ReadsWithin(box, np.radians(degrees), np.radians(60))
    stage2 = _Aligned(aligned, orient.shape)
    cascade = Cascade([orient, stage1, stage2])
    cascade.run([np.zeros((200, 200, 3), np.uint8)], [Squares(CENTRE[None], np.array([90.0]), np.zeros(1))])
    assert (stage1.faces > 0) is stage1_runs
    assert without_orientation(cascade.stages) == [stage2]


class _AlignedWithError(_Aligned):
    """`_Aligned` with an error column of zeros: what it reports is the blend alone."""

    def run(self, images, squares, shared=None):
        return [np.concatenate([p, np.zeros((*p.shape[:2], 1))], axis=-1) for p in super().run(images, squares)]


def test_faces_known_upright_skip_the_orientation_stage_and_blend_the_given_shapes() -> None:
    """Faces marked upright (e.g. by the detector's keypoints) go straight to stage 2 and
    their given shape is the reading blended in; the others take the orientation stage, in
    their places."""
    box, aligned = (s.spec for s in random_cascade(seed=0))
    aligned = replace(aligned, uncertainty=True)
    orient = _ReadsWithin(replace(box, orientation=True), 0.0, np.radians(181))
    stage1 = _ReadsWithin(box, 0.0, np.radians(60))
    stage2 = _AlignedWithError(aligned, orient.shape)
    cascade = Cascade([orient, stage1, stage2])
    squares = Squares(np.stack([CENTRE, CENTRE]), np.array([90.0, 90.0]), np.zeros(2))
    shapes = np.stack([orient.shape + [3.0, 4.0], np.full_like(orient.shape, np.nan)])
    out = cascade.run([np.zeros((200, 200, 3), np.uint8)], [squares], [np.array([True, False])], [shapes])[0]
    assert orient.faces == 1 and stage1.faces == 0
    np.testing.assert_allclose(out[0, :, 2], KEYPOINT_SHARE * 5.0)  # |(3, 4)| px from the given shape
    np.testing.assert_allclose(out[1, :, 2], 0.0)  # the orientation stage read it where stage 2 did
    np.testing.assert_allclose(out[:, :, :2], np.stack([orient.shape] * 2))
    cascade.run([np.zeros((200, 200, 3), np.uint8)], [squares], [np.array([True, True])], [shapes])
    assert orient.faces == 1  # every face known upright: the orientation stage does not run
