"""Geometry: affine algebra, similarity fitting, the face-crop convention, warping and box checks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from wingface.geometry import (
    angle_difference,
    apply_affine,
    box_center,
    box_from_points,
    box_size,
    check_box,
    clip_box,
    compose_affine,
    crop_matrix,
    face_square,
    fit_similarity,
    invert_affine,
    rotation_about,
    similarity_params,
    square_matrix,
    warp_image,
)

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _random_affines(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 2, 3] well-conditioned general affines (rotation, anisotropic scale, shear, shift)."""
    lin = rng.uniform(-1, 1, (n, 2, 2)) + np.eye(2) * 2.5
    return np.concatenate([lin, rng.uniform(-100, 100, (n, 2, 1))], axis=-1)


def _random_similarities(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """([n, 2, 3] similarities, their scales [n], their angles [n] in radians)."""
    scale = np.exp(rng.uniform(-2, 2, n))
    angle = rng.uniform(-np.pi + 1e-3, np.pi - 1e-3, n)
    m = rotation_about(rng.uniform(-50, 50, (n, 2)), angle, scale)
    m[:, :, 2] += rng.uniform(-30, 30, (n, 2))
    return m, scale, angle


# ----------------------------------------------------------------------------- affine algebra


def test_invert_and_compose_identities() -> None:
    rng = np.random.default_rng(0)
    a, b = _random_affines(rng, 200), _random_affines(rng, 200)
    np.testing.assert_allclose(compose_affine(a, invert_affine(a)), np.broadcast_to(IDENTITY, a.shape), atol=1e-9)
    np.testing.assert_allclose(compose_affine(invert_affine(a), a), np.broadcast_to(IDENTITY, a.shape), atol=1e-9)
    np.testing.assert_allclose(invert_affine(invert_affine(a)), a, atol=1e-9)
    np.testing.assert_allclose(compose_affine(a, IDENTITY), a, atol=1e-12)
    points = rng.uniform(-200, 200, (200, 7, 2))
    # compose(outer, inner) applies inner first
    np.testing.assert_allclose(
        apply_affine(compose_affine(a, b), points), apply_affine(a, apply_affine(b, points)), atol=1e-8
    )


def test_apply_affine_broadcasts_one_matrix_over_a_batch() -> None:
    rng = np.random.default_rng(1)
    m = _random_affines(rng, 1)[0]
    points = rng.uniform(-10, 10, (4, 5, 2))
    expected = np.einsum("ij,nlj->nli", m[:, :2], points) + m[:, 2]
    np.testing.assert_allclose(apply_affine(m, points), expected, atol=1e-12)


def test_rotation_about_is_counter_clockwise_on_screen() -> None:
    m = rotation_about(np.array([10.0, 20.0]), np.pi / 2)
    # y points down: a point to the right of the centre moves up (smaller y).
    np.testing.assert_allclose(apply_affine(m, np.array([[11.0, 20.0]])), [[10.0, 19.0]], atol=1e-12)
    np.testing.assert_allclose(apply_affine(m, np.array([[10.0, 20.0]])), [[10.0, 20.0]], atol=1e-12)


def test_fit_similarity_recovers_known_similarity() -> None:
    rng = np.random.default_rng(2)
    m, scale, angle = _random_similarities(rng, 100)
    source = rng.uniform(-100, 100, (100, 12, 2))
    fitted = fit_similarity(source, apply_affine(m, source))
    np.testing.assert_allclose(fitted, m, atol=1e-8)
    s, a = similarity_params(fitted)
    np.testing.assert_allclose(s, scale, rtol=1e-9)
    np.testing.assert_allclose(a, angle, atol=1e-9)


def test_fit_similarity_ignores_zero_weight_points() -> None:
    rng = np.random.default_rng(3)
    m, _, _ = _random_similarities(rng, 10)
    source = rng.uniform(-100, 100, (10, 12, 2))
    target = apply_affine(m, source)
    target[:, :3] += rng.uniform(50, 80, (10, 3, 2))  # outliers
    weights = np.ones((10, 12))
    weights[:, :3] = 0
    np.testing.assert_allclose(fit_similarity(source, target, weights), m, atol=1e-8)


def test_fit_similarity_is_least_squares_for_noisy_points() -> None:
    rng = np.random.default_rng(4)
    source = rng.uniform(-50, 50, (20, 2))
    target = source * 1.3 + rng.normal(0, 2, (20, 2))
    best = fit_similarity(source, target)
    cost = np.sum((apply_affine(best, source) - target) ** 2)
    for _ in range(20):  # no nearby similarity fits better
        nudged = rotation_about(np.zeros(2), rng.normal(0, 1e-3), np.exp(rng.normal(0, 1e-3)))
        other = compose_affine(nudged, best)
        other[:, 2] += rng.normal(0, 1e-2, 2)
        assert np.sum((apply_affine(other, source) - target) ** 2) >= cost - 1e-9


# ----------------------------------------------------------------------------- boxes


def test_box_helpers() -> None:
    points = np.array([[[1.0, 2.0], [5.0, 9.0], [np.nan, np.nan], [3.0, 4.0]]])
    np.testing.assert_allclose(box_from_points(points), [[1, 2, 5, 9]])
    box = np.array([10.0, 20.0, 50.0, 40.0])
    np.testing.assert_allclose(box_center(box), [30, 30])
    np.testing.assert_allclose(box_size(box), [40, 20])
    np.testing.assert_allclose(clip_box(np.array([-9.0, 5, 300, 90]), 100, 80), [-0.5, 5, 99.5, 79.5])


@pytest.mark.parametrize(
    "box, words",
    [
        ([10, 10, 10, 20], "degenerate"),
        ([10, 10, 20, 10], "degenerate"),
        ([20, 10, 10, 30], "inverted"),
        ([10, 30, 20, 10], "inverted"),
        ([10, np.nan, 20, 30], "finite"),
        ([10, 10, np.inf, 30], "finite"),
        ([10, 10, 20], "4 finite numbers"),
        ("abcd", "4 numbers"),
        ([200, 10, 260, 50], "entirely outside"),
        ([-80, 10, -1, 50], "entirely outside"),
        ([10, 120, 50, 150], "entirely outside"),
        ([10, -60, 50, -0.6], "entirely outside"),
    ],
)
def test_check_box_errors_name_the_box(box, words: str) -> None:
    with pytest.raises(ValueError, match=words) as err:
        check_box(box, image_size=(100, 80), name="boxes[3]")
    assert "boxes[3]" in str(err.value)


@pytest.mark.parametrize("box", [[-30, -20, 40, 30], [90, 70, 150, 120], [-0.5, -0.5, 0, 0], [0, 0, 99, 79]])
def test_check_box_accepts_partly_outside_boxes(box) -> None:
    np.testing.assert_array_equal(check_box(box, image_size=(100, 80)), np.asarray(box, dtype=np.float64))


def test_check_box_without_image_size_only_checks_shape() -> None:
    assert check_box((1000, 1000, 1001, 1001)).dtype == np.float64


# ----------------------------------------------------------------------------- crops


def test_face_square_enlarges_longer_side() -> None:
    center, side = face_square(np.array([[10.0, 20.0, 50.0, 40.0]]), 0.25)
    np.testing.assert_allclose(center, [[30, 30]])
    np.testing.assert_allclose(side, [50])


def test_crop_covers_square_exactly() -> None:
    """The square's outer edges map onto the crop's outer pixel edges (-0.5 and S - 0.5)."""
    rng = np.random.default_rng(5)
    n, size = 300, 64
    center = rng.uniform(-100, 500, (n, 2))
    side = np.exp(rng.uniform(np.log(5), np.log(900), n))
    angle = rng.uniform(-np.pi, np.pi, n)
    m = square_matrix(center, side, size, angle)
    half = side[:, None, None] / 2 * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
    # The square in the image: axis-aligned corners rotated counter-clockwise by `angle`.
    corners = apply_affine(rotation_about(center, angle), center[:, None] + half)
    expected = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [size - 0.5, size - 0.5], [-0.5, size - 0.5]])
    np.testing.assert_allclose(apply_affine(m, corners), np.broadcast_to(expected, (n, 4, 2)), atol=1e-6)
    np.testing.assert_allclose(apply_affine(m, center[:, None]), np.full((n, 1, 2), (size - 1) / 2), atol=1e-6)


def test_crop_round_trip_is_exact() -> None:
    """Image -> crop -> image, for random boxes, sizes, margins and angles: < 0.01 px."""
    rng = np.random.default_rng(6)
    n = 500
    lo = rng.uniform(-50, 1500, (n, 2))
    box = np.concatenate([lo, lo + np.exp(rng.uniform(np.log(2), np.log(1200), (n, 2)))], axis=1)
    sizes = rng.integers(16, 513, n)
    margins = rng.uniform(0, 1, n)
    angles = rng.uniform(-np.pi, np.pi, n)
    points = lo[:, None] + rng.uniform(-100, 1300, (n, 68, 2))
    for i in range(n):
        center, side = face_square(box[i], margins[i])
        to_crop = square_matrix(center, side, int(sizes[i]), angles[i]) if i % 2 else crop_matrix(
            box[i], int(sizes[i]), margins[i])
        crop_points = apply_affine(to_crop, points[i]).astype(np.float32)  # as stored in caches
        back = apply_affine(invert_affine(to_crop), crop_points)
        assert np.abs(back - points[i]).max() < 0.01


def test_crop_matrix_batched_matches_single() -> None:
    rng = np.random.default_rng(7)
    lo = rng.uniform(0, 100, (6, 2))
    box = np.concatenate([lo, lo + rng.uniform(5, 50, (6, 2))], axis=1)
    batched = crop_matrix(box, 32, 0.25)
    assert batched.shape == (6, 2, 3)
    for i in range(6):
        np.testing.assert_allclose(batched[i], crop_matrix(box[i], 32, 0.25))


# ----------------------------------------------------------------------------- warping


def _blob_image(width: int, height: int, point: np.ndarray, sigma: float) -> np.ndarray:
    """RGB uint8 [H, W, 3]: a Gaussian dot of ``sigma`` px at ``point`` (0-based, pixel centres)."""
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]
    dot = np.exp(-((x - point[0]) ** 2 + (y - point[1]) ** 2) / (2 * sigma**2))
    return np.repeat(np.round(dot * 255).astype(np.uint8)[..., None], 3, axis=2)


def _centroid(crop: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (x, y) of channel 0, 0-based pixel centres."""
    weight = crop[..., 0].astype(np.float64)
    ys, xs = np.mgrid[: crop.shape[0], : crop.shape[1]]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


@pytest.mark.parametrize("scale", [2.0, 1.0, 0.6, 0.45, 0.3, 0.1])
@pytest.mark.parametrize("angle", [0.0, 0.4, -2.0])
def test_warp_puts_image_point_at_mapped_crop_pixel(scale: float, angle: float) -> None:
    """A dot at image point p lands at crop pixel apply_affine(M, p), also when the image is
    first area-shrunk (scale < 0.5). The dot is a smooth Gaussian (about 2.5 crop px wide) so
    its centre is measurable to a small fraction of a pixel; a half-pixel slip in the shrink
    would move it by ~0.45 crop px at scale 0.1."""
    rng = np.random.default_rng(int(scale * 100) + int(angle * 10) + 50)
    size = 64
    side = size / scale
    width, height = int(side * 1.1) + int(rng.integers(0, 7)), int(side * 1.05) + int(rng.integers(0, 7))
    center = np.array([width / 2, height / 2]) + rng.uniform(-3, 3, 2)
    point = center + rng.uniform(-0.2, 0.2, 2) * side
    m = square_matrix(center, side, size, angle)
    crop = warp_image(_blob_image(width, height, point, 2.5 / scale), m, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(_centroid(crop), apply_affine(m, point[None])[0], atol=0.1)


@pytest.mark.parametrize("corner", [(0.3, 0.4), (0.02, 0.97)])
def test_warp_shrinks_only_the_footprint_like_the_whole_image(corner) -> None:
    """Shrinking just the region under the crop gives the crop that shrinking the whole image
    (here an exact multiple of the factor) gives, also for a crop hanging off the image."""
    rng = np.random.default_rng(3)
    image = cv2.GaussianBlur(rng.integers(0, 256, (600, 840, 3), dtype=np.uint8), (0, 0), 2)
    m = square_matrix(np.array([840 * corner[0], 600 * corner[1]]), 64 * 6.4, 64, 0.3)  # factor 6
    small = cv2.resize(image, (140, 100), interpolation=cv2.INTER_AREA)
    to_original = np.array([[6.0, 0, 2.5], [0, 6.0, 2.5]])
    expected = cv2.warpAffine(small, compose_affine(m, to_original), (64, 64), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    assert np.abs(warp_image(image, m, 64).astype(int) - expected).max() <= 1


def test_warp_fills_outside_with_border_value() -> None:
    image = np.full((20, 30, 3), 200, np.uint8)
    m = square_matrix(np.array([0.0, 0.0]), 40.0, 40)  # the crop's top-left quarter is off-image
    crop = warp_image(image, m, 40, border_value=7)
    assert (crop[:15, :15] == 7).all()
    assert (crop[25:35, 25:35] == 200).all()


def test_warp_keeps_single_channel_axis() -> None:
    image = np.full((20, 30, 1), 9, np.uint8)
    crop = warp_image(image, square_matrix(np.array([15.0, 10.0]), 10.0, 8), 8)
    assert crop.shape == (8, 8, 1) and (crop == 9).all()


def test_angle_difference_wraps_into_half_turns() -> None:
    a = np.radians([170.0, -170.0, 10.0, 360.0 + 5.0])
    b = np.radians([-170.0, 170.0, -10.0, 0.0])
    np.testing.assert_allclose(np.degrees(angle_difference(a, b)), [-20.0, 20.0, 20.0, 5.0], atol=1e-9)
