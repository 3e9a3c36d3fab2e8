"""Tests for wingface.detection: bundled BlazeFace and YuNet, the cascade and the box fit."""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pytest

from wingface.data.images import read_image
from wingface.detection import (
    BlazeFaceDetector,
    BoxFit,
    Detection,
    DetectorCascade,
    FaceDetector,
    YuNetDetector,
    create_detector,
    keypoint_shape,
    pairwise_iou,
)
from wingface.detection.blazeface import blazeface_anchors, decode_blazeface, weighted_nms
from wingface.detection.cascade import (
    DIAGONALS,
    OTHER_ORIENTATION_SCORE,
    diagonal_copy,
    eye_roll,
    map_detection,
    map_turned,
    merge_orientations,
    rot90_to_original,
)
from wingface.geometry import apply_affine, box_center, box_size, invert_affine, rotation_about, square_matrix, warp_image
from wingface.schemes import mean_shape_68

# Hand-checked face box of the bundled astronaut (512 x 512): forehead to chin, ear to ear.
ASTRONAUT_FACE = np.array([178.0, 70.0, 270.0, 176.0])


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    with resources.as_file(resources.files("wingface").joinpath("assets", "astronaut.jpg")) as path:
        return read_image(path)


@pytest.fixture(scope="module")
def detectors() -> dict[str, FaceDetector]:
    return {"blazeface": BlazeFaceDetector(), "yunet": YuNetDetector()}


@pytest.fixture(scope="module")
def cascade() -> DetectorCascade:
    return create_detector("default")


class _BrightestPixel(FaceDetector):
    """Stub: in tall images only, 'finds' a 5-px box around the brightest pixel."""

    name = "stub"
    box_fit = BoxFit(dx=0.0, dy=0.0, scale=1.0, spread=0.0)

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        if rgb.shape[0] <= rgb.shape[1]:
            return []
        y, x = np.unravel_index(np.argmax(rgb.sum(axis=2)), rgb.shape[:2])
        return [Detection([x - 2, y - 2, x + 3, y + 2], 0.9, 0.0, [[x, y]], self.name)]


class _UpsideDownFace(FaceDetector):
    """Stub for a pixel marked in the top-left quadrant: 'finds' a face there (eyes at +-1 px)
    with score 0.9 when the image is upside down (the pixel is in the bottom-right quadrant)
    and, when ``upright_score`` is given, with that score and eyes rolled by pi upright."""

    name = "upside-down"
    box_fit = BoxFit(dx=0.0, dy=0.0, scale=1.0, spread=0.0)

    def __init__(self, upright_score: float | None = None) -> None:
        self.upright_score = upright_score

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        y, x = np.unravel_index(np.argmax(rgb.sum(axis=2)), (h, w))
        box = [x - 2, y - 2, x + 2, y + 2]
        if y >= h / 2 and x >= w / 2:
            return [Detection(box, 0.9, 0.0, [[x - 1, y], [x + 1, y]], self.name)]
        if y < h / 2 and x < w / 2 and self.upright_score is not None:
            return [Detection(box, self.upright_score, 0.0, [[x + 1, y], [x - 1, y]], self.name)]
        return []


@pytest.mark.parametrize("name,keypoints", [("blazeface", 6), ("yunet", 5)])
def test_each_detector_finds_the_astronaut(astronaut, detectors, name, keypoints):
    found = detectors[name].detect(astronaut)
    assert len(found) == 1
    face = found[0]
    assert face.detector == name and face.angle == 0.0 and face.score > 0.8
    assert pairwise_iou(face.box[None], ASTRONAUT_FACE[None])[0, 0] > 0.6
    assert face.keypoints.shape == (keypoints, 2)
    inside = (face.keypoints >= face.box[:2] - 2) & (face.keypoints <= face.box[2:] + 2)
    assert inside.all()


@pytest.mark.parametrize("k", [1, -1])
def test_cascade_finds_quarter_turned_astronaut_with_its_angle(astronaut, cascade, k):
    upright = cascade.detect(astronaut)[0]
    turned = np.rot90(astronaut, k)
    found = cascade.detect(turned)
    assert len(found) == 1
    face = found[0]
    # rot90 by k turns the face by k * 90 degrees counter-clockwise on screen.
    assert face.angle == pytest.approx(k * math.pi / 2)
    to_turned = invert_affine(rot90_to_original(k, astronaut.shape[1], astronaut.shape[0]))
    corners = apply_affine(to_turned, upright.box.reshape(2, 2))
    expected = np.concatenate([corners.min(0), corners.max(0)])
    np.testing.assert_allclose(face.box, expected, atol=1.0)
    # The angle is the crop convention's: a crop at that angle shows the face upright.
    center, side, angle = cascade.landmark_square(face)
    center0, side0, _ = cascade.landmark_square(upright)
    crop = warp_image(turned, square_matrix(center, side, 64, angle), 64).astype(float)
    crop0 = warp_image(astronaut, square_matrix(center0, side0, 64), 64).astype(float)
    assert np.abs(crop - crop0).mean() < 3.0


@pytest.mark.parametrize("k,angle", [(1, -math.pi / 2), (-1, math.pi / 2), (2, math.pi)])
def test_rot90_to_original_maps_pixels_and_angle(k, angle):
    image = np.arange(12).reshape(3, 4)
    turned = np.rot90(image, k)
    matrix = rot90_to_original(k, 4, 3)
    for y in range(turned.shape[0]):
        for x in range(turned.shape[1]):
            ox, oy = apply_affine(matrix, np.array([[x, y]]))[0].round().astype(int)
            assert image[oy, ox] == turned[y, x]
    assert math.atan2(matrix[0, 1], matrix[0, 0]) == pytest.approx(angle)


def test_half_turn_matrix_maps_corners_and_a_marked_pixel_both_ways():
    image = np.zeros((3, 5), dtype=int)
    image[0, 1] = 1
    turned = np.rot90(image, 2)
    matrix = rot90_to_original(2, 5, 3)
    np.testing.assert_allclose(apply_affine(matrix, np.array([[0.0, 0.0], [4.0, 2.0], [4.0, 0.0]])),
                               [[4, 2], [0, 0], [0, 2]])
    y, x = np.argwhere(turned == 1)[0]
    np.testing.assert_allclose(apply_affine(matrix, np.array([[x, y]], float)), [[1, 0]])
    np.testing.assert_array_equal(np.rot90(turned, 2), image)
    np.testing.assert_allclose(apply_affine(invert_affine(matrix), np.array([[1.0, 0.0]])), [[x, y]])
    with pytest.raises(ValueError, match="k"):
        rot90_to_original(3, 5, 3)


@pytest.mark.parametrize("found_at,expected", [(0.0, math.pi), (-math.pi / 2, math.pi / 2), (math.pi / 2, -math.pi / 2)])
def test_map_detection_half_turn_wraps_the_angle(found_at, expected):
    face = Detection([1.0, 2.0, 3.0, 5.0], 0.5, found_at, [[1.0, 2.0]], "stub")
    mapped = map_detection(face, rot90_to_original(2, 10, 8))
    assert mapped.angle == pytest.approx(expected) and -math.pi < mapped.angle <= math.pi
    np.testing.assert_allclose(mapped.box, [6, 2, 8, 5])
    np.testing.assert_allclose(mapped.keypoints, [[8, 5]])


def _face(x: float, score: float, angle: float = 0.0) -> Detection:
    return Detection([x, 0.0, x + 10.0, 10.0], score, angle, None, "stub")


def test_merging_orientations_keeps_the_winner_and_adds_strong_faces_only_others_show():
    """lfpw/testset/image_0138 turned 45 degrees: a turned copy wins with the neighbour's
    face, and the subject's face, found only upright, is added; weak boxes are not."""
    upright = [_face(0.0, 0.80), _face(50.0, 0.70)]
    turned = [_face(51.0, 0.85, math.pi / 2), _face(100.0, OTHER_ORIENTATION_SCORE - 0.01, math.pi / 2)]
    merged = merge_orientations([upright, turned, []])
    assert [(d.box[0], d.score) for d in merged] == [(51.0, 0.85), (100.0, OTHER_ORIENTATION_SCORE - 0.01), (0.0, 0.80)]
    assert merge_orientations([[], []]) == []
    tie = merge_orientations([[_face(0.0, 0.9)], [_face(1.0, 0.9, math.pi)]])
    assert len(tie) == 1 and tie[0].angle == 0.0  # one face; on a tie the earlier orientation


@pytest.mark.parametrize("upright_score", [None, 0.5])
def test_cascade_finds_an_upside_down_face_with_angle_pi(upright_score):
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[5, 10] = 255
    # None: nothing is found upright (the retry); 0.5: found upright with the eyes rolled by
    # pi, the roll check tries the turns and the half turn's higher score wins.
    found = DetectorCascade([_UpsideDownFace(upright_score)]).detect(image)
    assert len(found) == 1
    face = found[0]
    assert face.angle == pytest.approx(math.pi) and face.score == 0.9
    np.testing.assert_allclose(face.box, [8, 3, 12, 7])
    np.testing.assert_allclose(face.keypoints, [[11, 5], [9, 5]])
    assert abs(float(eye_roll(face.keypoints))) == pytest.approx(math.pi)


class _WeakUpright(_UpsideDownFace):
    """`_UpsideDownFace` whose weak upright face has level eyes: only its score says it is wrong."""

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        return [Detection(d.box, d.score, 0.0, d.keypoints[::-1] if d.score != 0.9 else d.keypoints, self.name)
                for d in super()._detect(rgb)]


def test_a_weak_upright_face_loses_to_a_stronger_turned_copy():
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[5, 10] = 255
    assert DetectorCascade([_WeakUpright(0.5)], weak_score=None).detect(image)[0].angle == 0.0  # no roll shown
    found = DetectorCascade([_WeakUpright(0.5)]).detect(image)
    assert found[0].score == 0.9 and found[0].angle == pytest.approx(math.pi)
    assert DetectorCascade([_WeakUpright(0.88)]).detect(image)[0].angle == 0.0  # strong enough: kept


def test_cascade_keeps_the_upright_face_when_no_turn_scores_higher():
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[5, 10] = 255
    found = DetectorCascade([_UpsideDownFace(0.95)]).detect(image)
    assert len(found) == 1 and found[0].angle == 0.0 and found[0].score == 0.95


def test_cascade_retries_turned_copies_when_nothing_is_found_upright():
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[5, 10] = 255
    found = DetectorCascade([_BrightestPixel()]).detect(image)
    assert len(found) == 1
    np.testing.assert_allclose(found[0].keypoints, [[10, 5]])
    assert found[0].angle == pytest.approx(-math.pi / 2)  # the first turn tried, k = 1
    assert found[0].box[0] <= 10 <= found[0].box[2] and found[0].box[1] <= 5 <= found[0].box[3]
    assert DetectorCascade([_BrightestPixel()], rotate_retry=False).detect(image) == []


class _SquareOnly(_BrightestPixel):
    """Stub: 'finds' the brightest pixel only in square images (the diagonal copies)."""

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        if rgb.shape[0] != rgb.shape[1]:
            return []
        y, x = np.unravel_index(np.argmax(rgb.sum(axis=2)), rgb.shape[:2])
        return [Detection([x - 2, y - 2, x + 3, y + 3], 0.9, 0.0, [[x, y]], self.name)]


def test_diagonal_copies_are_tried_last_and_mapped_back():
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[5, 10] = 255
    found = DetectorCascade([_SquareOnly()]).detect(image)
    assert len(found) == 1
    np.testing.assert_allclose(found[0].keypoints, [[10, 5]], atol=1.0)
    assert found[0].angle == pytest.approx(-math.radians(DIAGONALS[0]))  # the first diagonal tried
    assert found[0].box[2] - found[0].box[0] == pytest.approx(5.0)  # its size in the face's own frame
    assert DetectorCascade([_SquareOnly()], rotate_retry=False).detect(image) == []


def test_a_face_found_in_a_diagonal_copy_crops_upright(astronaut, detectors):
    """The crop at the mapped face's landmark square shows the face as the upright crop does."""
    centre = np.array([255.5, 255.5])
    rolled = warp_image(astronaut, rotation_about(centre, math.radians(-45.0)), 512)  # rolled by -45 degrees
    copy, back = diagonal_copy(rolled, 45.0)  # turned back: upright again, in a larger canvas
    face = map_turned(detectors["yunet"].detect(copy)[0], back)
    assert face.angle == pytest.approx(-math.pi / 4, abs=1e-9)
    upright = detectors["yunet"].detect(astronaut)[0]
    center, side, angle = detectors["yunet"].landmark_square(face)
    center0, side0, _ = detectors["yunet"].landmark_square(upright)
    crop = warp_image(rolled, square_matrix(center, side, 64, angle), 64).astype(float)
    unturned = warp_image(rolled, square_matrix(center, side, 64, 0.0), 64).astype(float)
    crop0 = warp_image(astronaut, square_matrix(center0, side0, 64), 64).astype(float)
    assert side == pytest.approx(side0, rel=0.05)
    assert np.abs(crop - crop0).mean() < 0.5 * np.abs(unturned - crop0).mean()


@pytest.mark.parametrize("shape", [(240, 320, 3), (8, 8, 3), (1, 1, 3)])
def test_blank_and_tiny_images_give_no_faces(detectors, cascade, shape):
    blank = np.full(shape, 127, dtype=np.uint8)
    for detector in (*detectors.values(), cascade):
        assert detector.detect(blank) == []


@pytest.mark.parametrize(
    "bad,message",
    [
        ([[0, 1], [2, 3]], "numpy array"),
        (np.zeros((10, 10, 2), np.uint8), "channels"),
        (np.zeros(10, np.uint8), "shape"),
        (np.zeros((10, 10, 3), np.int32), "pixel type"),
        (np.full((10, 10, 3), 2.0), "[0, 1]"),
    ],
)
def test_bad_input_raises_value_error(cascade, bad, message):
    with pytest.raises(ValueError, match=r"image.*" + message.replace("[", r"\[").replace("]", r"\]")):
        cascade.detect(bad)


def test_greyscale_and_rgba_are_accepted(astronaut, detectors):
    rgb = detectors["blazeface"].detect(astronaut)[0]
    rgba = np.concatenate([astronaut, np.full(astronaut.shape[:2] + (1,), 255, np.uint8)], axis=2)
    np.testing.assert_allclose(detectors["blazeface"].detect(rgba)[0].box, rgb.box)
    grey = astronaut.mean(axis=2).round().astype(np.uint8)
    found = detectors["blazeface"].detect(grey)
    assert len(found) == 1 and pairwise_iou(found[0].box[None], rgb.box[None])[0, 0] > 0.8


def test_landmark_square_applies_the_fit(astronaut, detectors, cascade):
    for detector in detectors.values():
        face = detector.detect(astronaut)[0]
        fit = detector.box_fit
        side = box_size(face.box).max()
        center, square_side, angle = detector.landmark_square(face)
        np.testing.assert_allclose(center, box_center(face.box) + side * np.array([fit.dx, fit.dy]))
        assert square_side == pytest.approx(side * fit.scale) and angle == 0.0
        # The cascade uses the fit of the stage that found the face.
        np.testing.assert_allclose(cascade.landmark_square(face)[0], center)


def test_landmark_square_turns_the_offset_with_the_face():
    detector = BlazeFaceDetector()
    fit = detector.box_fit
    face = Detection([0.0, 0.0, 100.0, 100.0], 0.9, math.pi / 2, None, "blazeface")
    center, side, angle = detector.landmark_square(face)
    # Turned 90 degrees counter-clockwise on screen, the face's "down" points right.
    np.testing.assert_allclose(center, [50 + 100 * fit.dy, 50 - 100 * fit.dx], atol=1e-9)
    assert side == pytest.approx(100 * fit.scale) and angle == pytest.approx(math.pi / 2)


def test_fitted_constants_are_plausible():
    for fit in (BlazeFaceDetector.box_fit, YuNetDetector.box_fit):
        assert abs(fit.dx) < 0.05 and 0.0 < fit.dy < 0.2 and 0.7 < fit.scale < 1.1 and 0 < fit.spread < 0.2


def test_blazeface_decoding_and_weighted_nms():
    anchors = blazeface_anchors()
    assert anchors.shape == (896, 2)
    np.testing.assert_allclose(anchors[:2], [[1 / 32, 1 / 32]] * 2)
    np.testing.assert_allclose(anchors[512], [1 / 16, 1 / 16])
    raw = np.zeros((1, 896, 16))
    raw[0, 0, :4] = [12.8, 0.0, 25.6, 12.8]  # shift 0.1 right, size 0.2 x 0.1 (input units)
    boxes, points, scores = decode_blazeface(raw, np.zeros((1, 896)), anchors)
    np.testing.assert_allclose(boxes[0, 0], [1 / 32 + 0.1 - 0.1, 1 / 32 - 0.05, 1 / 32 + 0.2, 1 / 32 + 0.05])
    assert points.shape == (1, 896, 6, 2) and np.allclose(scores, 0.5)
    merged, best, _ = weighted_nms(
        np.array([[0.0, 0, 10, 10], [1.0, 0, 11, 10], [50.0, 50, 60, 60]]),
        np.array([0.6, 0.9, 0.7]), np.zeros((3, 1, 2)), 0.3,
    )
    np.testing.assert_allclose(merged[0], [0.6, 0, 10.6, 10])  # (0.6 * 0 + 0.9 * 1) / 1.5
    np.testing.assert_allclose(best, [0.9, 0.7])


def test_factory_names_and_typos():
    assert [s.name for s in create_detector("yunet-first").stages] == ["yunet", "blazeface"]
    assert [s.name for s in create_detector().stages] == ["blazeface", "yunet"]
    with pytest.raises(ValueError, match="did you mean 'yunet'"):
        create_detector("yunett")
    with pytest.raises(ValueError, match="detectors"):
        DetectorCascade([])


def test_detection_is_immutable():
    face = Detection([1, 2, 3, 4], 0.5)
    assert face.box.dtype == np.float64 and face.keypoints is None
    with pytest.raises(ValueError):
        face.box[0] = 0.0


def test_keypoint_shape_places_the_mean_shape_on_the_keypoints():
    """Keypoints that are the template moved by a similarity give the mean shape moved by it;
    no template, or another number of keypoints, gives None."""
    template = ((-0.2, -0.3), (0.2, -0.3), (0.0, 0.0), (0.0, 0.2))
    fit = BoxFit(dx=0.0, dy=0.0, scale=1.0, spread=0.0, keypoints=template)
    move = rotation_about(np.zeros(2), 0.3) * 150.0
    move[:, 2] = [320.0, 200.0]
    shape = keypoint_shape(apply_affine(move, np.array(template)), fit)
    np.testing.assert_allclose(shape, apply_affine(move, mean_shape_68()), atol=1e-9)
    assert keypoint_shape(np.zeros((3, 2)), fit) is None
    assert keypoint_shape(np.zeros((4, 2)), BoxFit(0.0, 0.0, 1.0, 0.0)) is None


def test_only_blazeface_keypoints_vouch_for_the_landmarks(astronaut, detectors):
    """BlazeFace's keypoints place the mean shape on the astronaut's face; YuNet has no
    template (it reads upside-down faces as upright)."""
    found = detectors["blazeface"].detect(astronaut)[0]
    shape = detectors["blazeface"].keypoint_shape(found)
    assert shape.shape == (68, 2)
    assert (pairwise_iou(np.concatenate([shape.min(0), shape.max(0)])[None], ASTRONAUT_FACE[None]) > 0.6).all()
    assert detectors["yunet"].keypoint_shape(detectors["yunet"].detect(astronaut)[0]) is None
