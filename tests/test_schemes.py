"""Landmark schemes: mirroring, the built-in flip pairs, scheme files and lookup errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from wingface.data.synthetic import supported_schemes, synthetic_shape
from wingface.schemes import SCHEMES, LandmarkScheme, get_scheme, load_scheme


@pytest.mark.parametrize("name", list(SCHEMES))
def test_mirror_twice_is_identity(name: str) -> None:
    scheme = get_scheme(name)
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 200, (5, scheme.num_points, 2))  # batched [N, L, 2]
    twice = scheme.mirror(scheme.mirror(points, 200), 200)
    np.testing.assert_allclose(twice, points, atol=1e-12)


@pytest.mark.parametrize("name", list(SCHEMES))
def test_flip_permutation_is_an_involution(name: str) -> None:
    perm = get_scheme(name).flip_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(len(perm)))


def test_mirror_uses_pixel_centre_convention() -> None:
    scheme = get_scheme("300w-68")
    points = np.zeros((68, 2))
    points[:, 0] = np.arange(68)
    mirrored = scheme.mirror(points, 100)
    # Pixel 0 and pixel W - 1 swap: x -> W - 1 - x, with the point itself moved by the permutation.
    np.testing.assert_allclose(mirrored[:, 0], 99 - points[scheme.flip_permutation, 0])
    np.testing.assert_allclose(mirrored[:, 1], 0)


@pytest.mark.parametrize("name", supported_schemes())
def test_symmetric_face_mirrors_onto_itself(name: str) -> None:
    scheme = get_scheme(name)
    for seed in range(3):
        shape = synthetic_shape(scheme, np.random.default_rng(seed), pitch=5.0 * seed, expression=0.3 * seed)
        # Unit frame centred on the box: width 1 makes the mirror x -> -x.
        np.testing.assert_allclose(scheme.mirror(shape, 1.0), shape, atol=1e-9)


def test_yawed_face_does_not_mirror_onto_itself() -> None:
    """Guards the test above: a non-symmetric shape must not pass it."""
    scheme = get_scheme("300w-68")
    shape = synthetic_shape(scheme, np.random.default_rng(0), yaw=30.0)
    assert np.abs(scheme.mirror(shape, 1.0) - shape).max() > 0.05


def _scheme_data() -> dict:
    return {
        "name": "tiny-5",
        "num_points": 5,
        "groups": {"eyes": [0, 1], "nose": [2], "mouth": [3, 4]},
        "flip_pairs": [[0, 1], [3, 4]],
        "inter_ocular": [0, 1],
        "inter_pupil": [[0], [1]],
        "names": ["right_eye", "left_eye", "nose", "right_mouth", "left_mouth"],
    }


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_load_scheme_from_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"tiny{suffix}"
    data = _scheme_data()
    path.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
    scheme = load_scheme(path)
    assert scheme.name == "tiny-5" and scheme.num_points == 5
    assert scheme.flip_pairs == ((0, 1), (3, 4))
    assert scheme.inter_ocular == ((0,), (1,))
    assert scheme.groups["mouth"] == (3, 4)
    np.testing.assert_array_equal(scheme.flip_permutation, [1, 0, 2, 4, 3])


@pytest.mark.parametrize("name", list(SCHEMES))
def test_builtin_scheme_dict_round_trip(name: str) -> None:
    scheme = get_scheme(name)
    assert LandmarkScheme.from_dict(json.loads(json.dumps(scheme.to_dict()))) == scheme


@pytest.mark.parametrize(
    "change, words",
    [
        ({"colour": "red"}, ["unknown key", "colour"]),
        ({"flip_pairs": [[0, 7]]}, ["flip_pairs", "7"]),
        ({"groups": {"nose": [5]}}, ["group 'nose'", "5"]),
        ({"inter_ocular": [0, 9]}, ["inter_ocular", "9"]),
        ({"flip_pairs": [[0, 1], [1, 3]]}, ["point 1", "more than one flip pair"]),
        ({"num_points": "five"}, ["five"]),
        ({"names": ["a", "b"]}, ["2 names", "5 points"]),
    ],
)
def test_bad_scheme_file_names_file_and_field(tmp_path: Path, change: dict, words: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**_scheme_data(), **change}))
    with pytest.raises(ValueError) as err:
        load_scheme(path)
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_scheme_file_missing_key(tmp_path: Path) -> None:
    data = _scheme_data()
    del data["flip_pairs"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="missing key.*flip_pairs"):
        load_scheme(path)


@pytest.mark.parametrize("text", ["{not json", "- just\n- a list\n"])
def test_scheme_file_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / ("bad.json" if text.startswith("{") else "bad.yaml")
    path.write_text(text)
    with pytest.raises(ValueError, match="bad"):
        load_scheme(path)


def test_missing_scheme_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_scheme(tmp_path / "nope.yaml")


def test_get_scheme_typo_suggests_name() -> None:
    with pytest.raises(ValueError, match="did you mean '300w-68'"):
        get_scheme("300w-86")
    with pytest.raises(ValueError, match="did you mean 'wflw-98'"):
        get_scheme("wflw98")
