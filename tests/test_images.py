"""Image reading and normalisation: every input becomes RGB uint8 [H, W, 3]."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from wingface.data.images import read_image, to_rgb_uint8

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (7, 9, 3), dtype=np.uint8)


def _write(path: Path, image: np.ndarray) -> Path:
    """Write with OpenCV, which expects BGR(A) channel order."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), image)
    return path


def _check_rgb(image: np.ndarray, shape: tuple[int, int]) -> None:
    assert image.dtype == np.uint8
    assert image.shape == (*shape, 3)
    assert image.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff"])
def test_read_rgb_keeps_channel_order(tmp_path: Path, suffix: str) -> None:
    image = read_image(_write(tmp_path / f"rgb{suffix}", RGB))
    _check_rgb(image, (7, 9))
    np.testing.assert_array_equal(image, RGB)


def test_read_jpeg_is_rgb(tmp_path: Path) -> None:
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 220
    image = read_image(_write(tmp_path / "red.jpg", red))
    _check_rgb(image, (16, 16))
    assert image[..., 0].mean() > 200 and image[..., 2].mean() < 30


@pytest.mark.parametrize("suffix", [".png", ".pgm", ".jpg"])
def test_read_greyscale_file(tmp_path: Path, suffix: str) -> None:
    grey = np.tile(np.arange(0, 240, 15, dtype=np.uint8), (8, 1))
    image = read_image(_write(tmp_path / f"grey{suffix}", grey))
    _check_rgb(image, (8, 16))
    np.testing.assert_array_equal(image[..., 0], image[..., 1])
    np.testing.assert_array_equal(image[..., 0], image[..., 2])
    assert np.abs(image[..., 0].astype(int) - grey).max() <= (0 if suffix != ".jpg" else 8)


def test_read_16_bit_file(tmp_path: Path) -> None:
    values = np.arange(256, dtype=np.uint16).reshape(16, 16) * 257  # exact multiples of 1/257
    image = read_image(_write(tmp_path / "deep.png", values))
    _check_rgb(image, (16, 16))
    np.testing.assert_array_equal(image[..., 1], np.arange(256).reshape(16, 16))


def test_read_16_bit_colour_file(tmp_path: Path) -> None:
    deep = RGB.astype(np.uint16) * 257
    image = read_image(_write(tmp_path / "deep_rgb.png", deep))
    np.testing.assert_array_equal(image, RGB)


def test_read_rgba_file_drops_alpha(tmp_path: Path) -> None:
    alpha = RNG.integers(0, 256, (7, 9, 1), dtype=np.uint8)
    image = read_image(_write(tmp_path / "rgba.png", np.concatenate([RGB, alpha], axis=2)))
    _check_rgb(image, (7, 9))
    np.testing.assert_array_equal(image, RGB)


def test_read_float_tiff(tmp_path: Path) -> None:
    values = RNG.uniform(0, 1, (5, 6)).astype(np.float32)
    image = read_image(_write(tmp_path / "float.tiff", values))
    _check_rgb(image, (5, 6))
    np.testing.assert_array_equal(image[..., 2], np.round(values * 255))


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.array([[0, 128, 255]], np.uint8), [[0, 128, 255]]),
        (np.array([[[0], [128], [255]]], np.uint8), [[0, 128, 255]]),
        (np.array([[0, 257 * 100, 65535]], np.uint16), [[0, 100, 255]]),
        (np.array([[0.0, 0.5, 1.0]], np.float64), [[0, 128, 255]]),
        (np.array([[0.0, 0.2, 1.0]], np.float32), [[0, 51, 255]]),
        (np.array([[False, True, True]]), [[0, 255, 255]]),
    ],
)
def test_to_rgb_uint8_greyscale_inputs(array: np.ndarray, expected) -> None:
    image = to_rgb_uint8(array)
    _check_rgb(image, (1, 3))
    for c in range(3):
        np.testing.assert_array_equal(image[..., c], expected)


def test_to_rgb_uint8_colour_inputs() -> None:
    np.testing.assert_array_equal(to_rgb_uint8(RGB), RGB)
    rgba = np.concatenate([RGB, np.zeros((7, 9, 1), np.uint8)], axis=2)
    np.testing.assert_array_equal(to_rgb_uint8(rgba), RGB)
    np.testing.assert_array_equal(to_rgb_uint8(RGB / 255.0), RGB)
    np.testing.assert_array_equal(to_rgb_uint8(RGB.astype(np.uint16) * 257), RGB)
    _check_rgb(to_rgb_uint8(rgba[:, ::-1]), (7, 9))  # non-contiguous input comes back contiguous


@pytest.mark.parametrize(
    "array, words",
    [
        (np.zeros((0, 5), np.uint8), "shape"),
        (np.zeros((4,), np.uint8), "shape"),
        (np.zeros((2, 2, 2, 3), np.uint8), "shape"),
        (np.zeros((4, 4, 2), np.uint8), "channels"),
        (np.zeros((4, 4, 5), np.uint8), "channels"),
        (np.full((4, 4), 1.5), r"\[0, 1\]"),
        (np.full((4, 4), -0.1, np.float32), r"\[0, 1\]"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.zeros((4, 4), np.int64), "pixel type"),
    ],
)
def test_to_rgb_uint8_rejects_bad_arrays(array: np.ndarray, words: str) -> None:
    with pytest.raises(ValueError, match=words) as err:
        to_rgb_uint8(array, name="frame 12")
    assert "frame 12" in str(err.value)


def test_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.jpg"
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        read_image(path)


@pytest.mark.parametrize("content", [b"", b"this is not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_corrupt_or_empty_file_names_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="broken.png"):
        read_image(path)


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=tmp_path.name):
        read_image(tmp_path)
