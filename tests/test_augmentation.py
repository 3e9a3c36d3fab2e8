"""Batched augmentation: points move exactly with the pixels, eval crops match the geometry
module, randomness is seeded, photometric operations keep shapes and range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wingface.augmentation import AugmentConfig, BatchAugmenter
from wingface.augmentation.photometric import adjust_colour, gaussian_blur, occlude
from wingface.geometry import (
    apply_affine,
    box_from_points,
    crop_matrix,
    face_square,
    rotation_about,
    square_matrix,
    squares_from_alignment,
    squares_from_points,
    warp_image,
)
from wingface.schemes import LandmarkScheme, get_scheme

SOURCE = 256


def grid_points(rows: int, cols: int, spacing: float, count: int | None = None) -> np.ndarray:
    """[count, 2] points on a rows x cols grid centred in the source crop (row-major)."""
    xs = (np.arange(cols) - (cols - 1) / 2) * spacing + (SOURCE - 1) / 2
    ys = (np.arange(rows) - (rows - 1) / 2) * spacing + (SOURCE - 1) / 2
    pts = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    return pts[:count].astype(np.float32)


def grid_scheme(rows: int, cols: int) -> LandmarkScheme:
    """A scheme on a grid whose flip pairs mirror the columns."""
    pairs = tuple((r * cols + c, r * cols + cols - 1 - c) for r in range(rows) for c in range(cols // 2))
    return LandmarkScheme(
        name="grid", num_points=rows * cols, groups={}, flip_pairs=pairs,
        inter_ocular=((0,), (cols - 1,)), inter_pupil=((0,), (cols - 1,)),
    )


def dot_image(points: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 [SOURCE, SOURCE, 3] black image with a Gaussian dot (peak 255) at every point."""
    ys, xs = np.mgrid[0:SOURCE, 0:SOURCE]
    img = np.zeros((SOURCE, SOURCE))
    for x, y in points:
        img += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.repeat(np.round(255 * img.clip(0, 1)).astype(np.uint8)[:, :, None], 3, axis=2)


def smooth_image(seed: int = 0) -> np.ndarray:
    """uint8 [SOURCE, SOURCE, 3] image of low-frequency waves (interpolation is near exact)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:SOURCE, 0:SOURCE] / SOURCE
    chans = [sum(np.sin(2 * np.pi * (rng.uniform(0.5, 2) * xs + rng.uniform(0.5, 2) * ys + rng.uniform()))
                 for _ in range(2)) for _ in range(3)]
    return np.round(127.5 + 60 * np.stack(chans, -1)).astype(np.uint8)


def centroid(image: np.ndarray, at: np.ndarray, radius: int) -> np.ndarray:
    """Intensity-weighted centroid (x, y) of a [S, S] image in a window around ``at``."""
    x0, y0 = np.round(at).astype(int) - radius
    window = image[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1]
    ys, xs = np.mgrid[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1]
    return np.array([(window * xs).sum(), (window * ys).sum()]) / window.sum()


def batch_of(image: np.ndarray, points: np.ndarray, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(np.repeat(image[None], n, axis=0)),
            torch.from_numpy(np.repeat(points[None], n, axis=0)))


@pytest.mark.parametrize(
    "scheme, points, out_size, sigma",
    [
        (get_scheme("300w-68"), grid_points(8, 9, 18.0, count=68), 128, 2.0),
        (grid_scheme(4, 4), grid_points(4, 4, 40.0), 64, 3.0),
    ],
    ids=["300w-68@128", "grid-16@64"],
)
def test_dots_follow_their_points(scheme: LandmarkScheme, points: np.ndarray, out_size: int, sigma: float) -> None:
    images, pts = batch_of(dot_image(points, sigma), points, n=8)
    augment = BatchAugmenter(AugmentConfig().geometry_only(), scheme, out_size)
    batch = augment(images, pts, generator=torch.Generator().manual_seed(3))
    assert batch.flipped.any() and not batch.flipped.all()
    perm = scheme.flip_permutation
    for n in range(len(pts)):
        # A mirrored face reports at index i the mirrored position of source point perm[i].
        source = points[perm] if batch.flipped[n] else points
        np.testing.assert_allclose(batch.points[n].numpy(), apply_affine(batch.matrices[n], source), atol=1e-3)
        grey = batch.images[n].mean(0).numpy()
        inside = np.all((batch.points[n].numpy() > 5) & (batch.points[n].numpy() < out_size - 6), axis=1)
        assert inside.sum() >= len(points) // 3
        for p in batch.points[n].numpy()[inside]:
            assert np.linalg.norm(centroid(grey, p, radius=4) - p) < 0.25  # a half-pixel slip fails


def test_eval_is_the_plain_crop() -> None:
    image, points = smooth_image(), grid_points(8, 9, 18.0, count=68)
    points = points + np.random.default_rng(1).normal(0, 4, points.shape).astype(np.float32)
    for out_size in (64, 128):
        augment = BatchAugmenter(AugmentConfig(), get_scheme("300w-68"), out_size, margin=0.25)
        batch = augment(*batch_of(image, points, n=2), train=False)
        matrix = crop_matrix(box_from_points(points), out_size, 0.25)
        np.testing.assert_allclose(batch.matrices[0], matrix, atol=1e-9)
        np.testing.assert_allclose(batch.points[0].numpy(), apply_affine(matrix, points), atol=1e-3)
        expected = warp_image(image, matrix, out_size).astype(np.float32)
        got = batch.images[0].permute(1, 2, 0).numpy()
        assert np.abs(got - expected).mean() < 1.0 and np.abs(got - expected).max() < 8.0
        assert torch.equal(batch.images[0], batch.images[1])
        assert not batch.flipped.any()


def test_off_config_in_train_mode_equals_eval() -> None:
    image, points = smooth_image(2), grid_points(8, 9, 18.0, count=68)
    augment = BatchAugmenter(AugmentConfig.off(), get_scheme("300w-68"), 64)
    images, pts = batch_of(image, points, n=3)
    train = augment(images, pts, generator=torch.Generator().manual_seed(0))
    evaluation = augment(images, pts, train=False)
    torch.testing.assert_close(train.images, evaluation.images)
    torch.testing.assert_close(train.points, evaluation.points)


@pytest.mark.parametrize("rotated_box", [False, True])
def test_rotated_box_frames_rolled_faces_like_a_detector_box(rotated_box: bool) -> None:
    """With rotated_box, a rolled face's axis-aligned landmark box in the crop always spans the
    crop less its margin (as an upright face's does); without it, rolled faces overflow that."""
    image, points = smooth_image(3), grid_points(8, 9, 18.0, count=68)
    config = AugmentConfig(rotation_deg=180.0, shift=0.0, scale=0.0, flip=0.0, rotated_box=rotated_box).geometry_only()
    out_size, margin = 64, 0.25
    augment = BatchAugmenter(config, get_scheme("300w-68"), out_size, margin=margin)
    images, pts = batch_of(image, points, n=16)
    crop_points = augment(images, pts, generator=torch.Generator().manual_seed(0)).points.numpy()
    longer = (box_from_points(crop_points)[:, 2:] - box_from_points(crop_points)[:, :2]).max(-1)
    framed = np.isclose(longer, out_size / (1 + margin), rtol=1e-4)
    assert framed.all() if rotated_box else not framed.all()


def test_same_seed_same_batch() -> None:
    image, points = smooth_image(3), grid_points(8, 9, 18.0, count=68)
    augment = BatchAugmenter(AugmentConfig(), get_scheme("300w-68"), 64)
    images, pts = batch_of(image, points, n=6)
    first, second, other = (augment(images, pts, generator=torch.Generator().manual_seed(s)) for s in (7, 7, 8))
    assert torch.equal(first.images, second.images) and torch.equal(first.points, second.points)
    assert not torch.equal(first.images, other.images)


def test_photometric_ops_keep_range_and_shape() -> None:
    image, points = smooth_image(4), grid_points(8, 9, 18.0, count=68)
    full = AugmentConfig(blur=1.0, occlusion=1.0, brightness=1.0, contrast=1.0, saturation=1.0, greyscale=0.5)
    augment = BatchAugmenter(full, get_scheme("300w-68"), 64)
    batch = augment(*batch_of(image, points, n=16), generator=torch.Generator().manual_seed(0))
    assert batch.images.shape == (16, 3, 64, 64) and batch.images.dtype == torch.float32
    assert batch.points.shape == (16, 68, 2) and batch.points.dtype == torch.float32
    assert torch.isfinite(batch.images).all()
    assert batch.images.min() >= 0 and batch.images.max() <= 255


def test_visibility_is_permuted_with_flips() -> None:
    scheme = get_scheme("300w-68")
    image, points = smooth_image(5), grid_points(8, 9, 18.0, count=68)
    visible = torch.zeros(8, 68, dtype=torch.bool)
    visible[:, 0:8] = True  # jaw points 0..7, mirrored to 16..9 by a flip
    augment = BatchAugmenter(AugmentConfig().geometry_only(), scheme, 64)
    batch = augment(*batch_of(image, points, n=8), visible, generator=torch.Generator().manual_seed(3))
    perm = torch.as_tensor(scheme.flip_permutation)
    for n in range(8):
        expected = visible[n][perm] if batch.flipped[n] else visible[n]
        assert torch.equal(batch.visible[n], expected)
    assert batch.flipped.any()


def test_blur_keeps_constant_images_and_mean() -> None:
    flat = torch.full((2, 3, 16, 16), 100.0)
    torch.testing.assert_close(gaussian_blur(flat, torch.tensor([0.5, 1.5])), flat)
    noise = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255
    blurred = gaussian_blur(noise, torch.tensor([1.0, 2.0]))
    assert blurred.std() < noise.std()
    impulse = torch.zeros(1, 3, 33, 33)
    impulse[..., 16, 16] = 1.0
    spread = gaussian_blur(impulse, torch.tensor([1.5]))[0, 0]
    offsets = torch.arange(33.0) - 16
    assert abs(float(spread.sum()) - 1) < 1e-5
    assert abs(float((spread.sum(0) * offsets**2).sum()) - 1.5**2) < 0.05 * 1.5**2


def test_colour_identity_grey_and_contrast() -> None:
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 255
    ones, no = torch.ones(3), torch.zeros(3, dtype=torch.bool)
    torch.testing.assert_close(adjust_colour(images, ones, ones, ones, no), images)
    grey = adjust_colour(images, ones, ones, ones, torch.ones(3, dtype=torch.bool))
    torch.testing.assert_close(grey[:, 0], grey[:, 1])
    flat = adjust_colour(images, ones, torch.zeros(3), ones, no)
    assert flat.std(dim=(2, 3)).max() < 1e-3


def test_occlude_paints_the_rectangle() -> None:
    images = torch.zeros(1, 3, 10, 10)
    out = occlude(images, torch.tensor([[2.0, 3.0, 5.0, 4.0]]), torch.full((1, 3, 1, 1), 9.0))
    assert out[0, 0].nonzero().tolist() == [[y, x] for y in (3, 4) for x in (2, 3, 4, 5)]


def test_alignment_squares_undo_a_similarity() -> None:
    reference = grid_points(8, 9, 18.0, count=68) / 4.0  # any frame works
    turn = rotation_about(np.zeros(2), np.array([0.4, -0.7]), np.array([3.0, 5.0]))
    turn[:, :, 2] += [[40.0, 60.0], [90.0, 20.0]]
    points = apply_affine(turn, reference)
    squares = squares_from_alignment(points, reference, margin=0.25)
    crop = square_matrix(squares.center, squares.side, 64, squares.angle)
    ref_center, ref_side = face_square(box_from_points(reference), 0.25)
    expected = apply_affine(square_matrix(ref_center, ref_side, 64), reference)
    np.testing.assert_allclose(apply_affine(crop, points), np.stack([expected] * 2), atol=1e-6)


def test_squares_from_points_is_the_box_square() -> None:
    points = grid_points(8, 9, 18.0, count=68)[None].astype(np.float64)
    points[0, 3] = np.nan
    squares = squares_from_points(points, 0.25)
    center, side = face_square(box_from_points(points), 0.25)
    np.testing.assert_allclose(squares.center, center)
    np.testing.assert_allclose(squares.side, side)
    assert np.all(squares.angle == 0)


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="flip"):
        AugmentConfig(flip=1.5)
    with pytest.raises(ValueError, match="blur_sigma"):
        AugmentConfig(blur_sigma=(2.0, 1.0))
    with pytest.raises(TypeError, match="rotation_deg"):
        AugmentConfig(rotation_deg="30")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="did you mean 'rotation_deg'"):
        AugmentConfig.from_dict({"rotation_degs": 10})
    config = AugmentConfig(blur_sigma=(0.5, 1.0))
    assert AugmentConfig.from_dict(config.to_dict()) == config


def test_bad_inputs_raise() -> None:
    augment = BatchAugmenter(AugmentConfig(), get_scheme("300w-68"), 64)
    points = torch.zeros(2, 68, 2)
    with pytest.raises(ValueError, match="images"):
        augment(torch.zeros(2, 32, 32, 3), points)
    with pytest.raises(ValueError, match="points"):
        augment(torch.zeros(2, 32, 32, 3, dtype=torch.uint8), torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="out_size"):
        BatchAugmenter(AugmentConfig(), get_scheme("300w-68"), 0)


def test_centred_alignment_squares_keep_angle_and_side_and_centre_the_box() -> None:
    reference = grid_points(8, 9, 18.0, count=68) / 4.0
    points = apply_affine(rotation_about(np.zeros(2), np.array([0.5]), np.array([2.0])), reference)
    points[:, :10, 0] += 30.0  # a shape the reference fits off centre (a turned head's far contour)
    plain = squares_from_alignment(points, reference, margin=0.25)
    centred = squares_from_alignment(points, reference, margin=0.25, centred=True)
    np.testing.assert_allclose(centred.side, plain.side)
    np.testing.assert_allclose(centred.angle, plain.angle)
    crop = apply_affine(square_matrix(centred.center, centred.side, 64, centred.angle), points)
    lo, hi = crop.min(axis=1), crop.max(axis=1)
    np.testing.assert_allclose((lo + hi) / 2, [[31.5, 31.5]], atol=1e-6)  # the box sits mid-crop
    assert not np.allclose(centred.center, plain.center)
