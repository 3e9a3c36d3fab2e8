"""Synthetic faces: determinism, bounds, symmetry, pose behaviour, rendering and the 300-W writer."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from wingface.data.synthetic import (
    render_face,
    supported_schemes,
    synthetic_faces,
    synthetic_shape,
    write_synthetic_300w,
)
from wingface.schemes import get_scheme


def _shape(name: str, seed: int = 0, **pose: float) -> np.ndarray:
    return synthetic_shape(name, np.random.default_rng(seed), **pose)


def test_same_seed_same_faces_and_other_seed_differs():
    a = synthetic_faces(3, image_size=48, seed=5)
    b = synthetic_faces(3, image_size=48, seed=5)
    c = synthetic_faces(3, image_size=48, seed=6)
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa.image, fb.image)
        np.testing.assert_array_equal(fa.points, fb.points)
        assert (fa.yaw, fa.pitch, fa.roll) == (fb.yaw, fb.pitch, fb.roll)
    assert not np.array_equal(a[0].points, c[0].points)


@pytest.mark.parametrize("name", supported_schemes())
def test_faces_have_the_scheme_layout_and_stay_inside_the_image(name):
    scheme = get_scheme(name)
    faces = synthetic_faces(25, scheme, image_size=(64, 48), seed=1)
    for face in faces:
        assert face.image.shape == (48, 64, 3) and face.image.dtype == np.uint8
        assert face.points.shape == (scheme.num_points, 2) and face.points.dtype == np.float32
        assert face.points.min() >= 0
        assert np.all(face.points.max(0) <= [63, 47])
        assert abs(face.yaw) <= 60 and abs(face.roll) <= 30


@pytest.mark.parametrize("name", supported_schemes())
def test_frontal_shape_is_its_own_mirror(name):
    scheme = get_scheme(name)
    for seed in range(3):
        shape = _shape(name, seed, pitch=10.0, expression=0.5)
        assert shape.shape == (scheme.num_points, 2)
        np.testing.assert_allclose(scheme.mirror(shape, 1.0), shape, atol=1e-9)


def test_unit_frame_is_centred_and_about_one_wide():
    shape = _shape("300w-68")
    np.testing.assert_allclose((shape.min(0) + shape.max(0)) / 2, 0, atol=1e-12)
    assert 0.9 < np.ptp(shape[:, 0]) < 1.1


def test_yaw_turns_the_face_and_compresses_the_far_half():
    scheme = get_scheme("300w-68")
    turned = _shape("300w-68", yaw=40.0)
    assert not np.allclose(scheme.mirror(turned, 1.0), turned, atol=1e-3)
    nose_tip = turned[30, 0]
    eye_mid = (turned[39, 0] + turned[42, 0]) / 2
    assert nose_tip > eye_mid  # positive yaw moves the nose toward +x
    near, far = nose_tip - turned[0, 0], turned[16, 0] - nose_tip
    assert far < 0.6 * near
    far_eye, near_eye = np.ptp(turned[42:48, 0]), np.ptp(turned[36:42, 0])
    assert far_eye < near_eye
    # The model is symmetric: the opposite yaw gives the mirror image.
    np.testing.assert_allclose(scheme.mirror(_shape("300w-68", yaw=-40.0), 1.0), turned, atol=1e-9)


def test_roll_rotates_counter_clockwise_on_screen():
    upright, rolled = _shape("300w-68"), _shape("300w-68", roll=30.0)
    eyes = rolled[45] - rolled[36]
    assert np.allclose(np.degrees(np.arctan2(-eyes[1], eyes[0])), 30.0, atol=1.0)
    assert np.isclose(np.linalg.norm(upright[45] - upright[36]), np.linalg.norm(eyes))


def test_expression_opens_the_mouth():
    closed, open_ = _shape("300w-68", expression=0.0), _shape("300w-68", expression=1.0)
    assert abs(closed[66, 1] - closed[62, 1]) < 1e-6
    assert open_[66, 1] - open_[62, 1] > 0.1


def test_wflw_layout_resamples_the_68_point_contours():
    s68, s98 = _shape("300w-68", 3), _shape("wflw-98", 3)
    offset = s98[0] - s68[0]  # the two are centred on slightly different boxes
    np.testing.assert_allclose(s98[0:33:2] - offset, s68[0:17], atol=1e-9)
    np.testing.assert_allclose(s98[[60, 64, 68, 72]] - offset, s68[[36, 39, 42, 45]], atol=1e-9)
    np.testing.assert_allclose(s98[76:96] - offset, s68[48:68], atol=1e-9)
    np.testing.assert_allclose(s98[96] - offset, s68[36:42].mean(0), atol=1e-9)


def test_unsupported_schemes_and_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="not supported"):
        synthetic_shape("cofw-29", np.random.default_rng(0))
    fake = dataclasses.replace(get_scheme("aflw-19"), name="wflw-98")
    with pytest.raises(ValueError, match="19 points"):
        synthetic_faces(1, fake)
    with pytest.raises(ValueError, match="expression"):
        synthetic_shape("300w-68", np.random.default_rng(0), expression=2.0)
    with pytest.raises(ValueError, match="shape_px"):
        render_face(np.zeros((5, 2)), 32, np.random.default_rng(0))
    with pytest.raises(ValueError, match="image_size"):
        synthetic_faces(1, image_size=0)


def test_rendered_structure_sits_on_the_landmarks():
    shape = _shape("300w-68", expression=1.0) * 70 + [64, 64]
    image = render_face(shape, 128, np.random.default_rng(0), background=False, texture=False).astype(int)
    mouth = image[tuple(np.round(shape[[62, 66]].mean(0)[::-1]).astype(int))]
    cheek = image[tuple(np.round((shape[31] + shape[2]) / 2)[::-1].astype(int))]
    outside = image[tuple(np.round(shape[0] - [6, 0])[::-1].astype(int))]
    assert mouth.sum() < cheek.sum() - 60  # dark mouth interior inside the skin
    assert not np.array_equal(cheek, outside)


def test_written_folder_has_300w_layout_and_one_based_pts(tmp_path):
    root = write_synthetic_300w(tmp_path / "w300", n_train=7, n_test=3, seed=2, image_size=40)
    expected = synthetic_faces(10, image_size=40, seed=2)
    folders = ["lfpw/trainset", "helen/trainset", "afw", "lfpw/testset", "helen/testset"]
    written = [sorted((root / f).glob("*.pts")) for f in folders]
    assert sum(map(len, written[:3])) == 7 and sum(map(len, written[3:])) == 3
    for pts_path, face in zip([p for group in written for p in group], expected):
        lines = pts_path.read_text().splitlines()
        assert lines[:3] == ["version: 1", "n_points:  68", "{"] and lines[-1] == "}"
        points = np.array([[float(v) for v in ln.split()] for ln in lines[3:-1]])
        assert points.shape == (68, 2)
        np.testing.assert_allclose(points - 1, face.points, atol=1e-3)
        image = cv2.imread(str(pts_path.with_suffix(".png")))
        np.testing.assert_array_equal(image[..., ::-1], face.image)
