"""Every dataset reader on tiny fixtures written in the real native format."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import scipy.io
import yaml

from wingface.data.datasets import READERS, open_dataset
from wingface.data.readers.aflw import AflwReader
from wingface.data.readers.coco import CocoFormatError, CocoReader, parse_coco
from wingface.data.readers.cofw import CofwReader, load_mat_variables
from wingface.data.readers.custom import CustomFormatError, CustomReader
from wingface.data.readers.w300 import W300Reader
from wingface.data.readers.wflw import ATTRIBUTES, WflwReader, parse_wflw_line
from wingface.schemes import LandmarkScheme, get_scheme

REAL_300W = Path("/work/shared/data/300w-subset")
RNG = np.random.default_rng(0)


def write_image(path: Path, width: int = 40, height: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))
    return path


def random_points(num: int, seed: int) -> np.ndarray:
    """float32 [num, 2] with 3 decimals, so text round trips are exact after float32 rounding."""
    return np.round(np.random.default_rng(seed).uniform(2, 28, (num, 2)), 3).astype(np.float32)


def write_mat73(path: Path, variables: dict) -> None:
    """Write variables the way MATLAB's ``save -v7.3`` does: HDF5 behind a 512-byte MAT header,
    arrays transposed, cell arrays as object references into ``#refs#``, ``MATLAB_class`` attributes.
    Lists are N x 1 cell arrays, ``str`` are 1 x n char arrays."""
    classes = {np.dtype(np.uint8): "uint8", np.dtype(np.float64): "double", np.dtype(np.int64): "int64"}
    names = (f"r{i}" for i in itertools.count())
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")

        def put(group, name, value):
            if isinstance(value, list):
                cell = np.empty((1, len(value)), dtype=h5py.ref_dtype)  # MATLAB N x 1 -> HDF5 1 x N
                for i, item in enumerate(value):
                    cell[0, i] = put(refs, next(names), item).ref
                ds, matlab_class = group.create_dataset(name, data=cell), "cell"
            elif isinstance(value, str):
                codes = np.array([ord(c) for c in value], np.uint16).reshape(-1, 1)
                ds, matlab_class = group.create_dataset(name, data=codes), "char"
            else:
                array = np.asarray(value)
                ds, matlab_class = group.create_dataset(name, data=array.T), classes[array.dtype]
            ds.attrs["MATLAB_class"] = np.bytes_(matlab_class)
            return ds

        for name, value in variables.items():
            put(f, name, value)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02" + b"IM")


def cell(items: list) -> np.ndarray:
    """An N x 1 MATLAB cell array for scipy.io.savemat."""
    out = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        out[i, 0] = item
    return out


# ---------------------------------------------------------------- WFLW

def wflw_line(points: np.ndarray, box, flags, image: str) -> str:
    numbers = [f"{v:.3f}" for v in points.ravel()] + [f"{v:.1f}" for v in box] + [str(f) for f in flags]
    return " ".join(numbers + [image])


@pytest.fixture
def wflw_root(tmp_path: Path) -> Path:
    root = tmp_path / "WFLW"
    ann = root / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    ann.mkdir(parents=True)
    write_image(root / "WFLW_images" / "0--Parade" / "a.jpg")
    write_image(root / "WFLW_images" / "1--Handshaking" / "b.jpg")
    train = [
        wflw_line(random_points(98, 1), (1, 2, 30, 28), (0, 0, 0, 0, 0, 0), "0--Parade/a.jpg"),
        wflw_line(random_points(98, 2), (1, 2, 30, 28), (0, 0, 0, 0, 0, 0), "0--Parade/missing.jpg"),
    ]
    test = [
        wflw_line(random_points(98, 3), (3, 4, 33, 29), (1, 0, 0, 0, 0, 0), "0--Parade/a.jpg"),
        wflw_line(random_points(98, 4), (3, 4, 33, 29), (0, 0, 0, 0, 1, 1), "1--Handshaking/b.jpg"),
        "1.0 2.0 not-a-valid-line.jpg",
        "",
    ]
    (ann / "list_98pt_rect_attr_train.txt").write_text("\n".join(train) + "\n")
    (ann / "list_98pt_rect_attr_test.txt").write_text("\n".join(test) + "\n")
    return root


def test_wflw_reads_points_boxes_attributes_and_subsets(wflw_root: Path):
    reader = open_dataset(wflw_root)
    assert isinstance(reader, WflwReader) and reader.scheme.name == "wflw-98"
    assert reader.split_names() == ["wflw-train", "wflw-test"] + [f"wflw-test-{a}" for a in ATTRIBUTES]

    train = reader.read()
    assert len(train) == 1 and len(train.skipped) == 1 and "image not found" in train.skipped[0][1]
    face = train.records[0]
    np.testing.assert_array_equal(face.points, random_points(98, 1))
    assert face.points.dtype == np.float32 and face.points.shape == (98, 2)
    np.testing.assert_array_equal(face.box, np.float32([1, 2, 30, 28]))
    assert face.image_path == wflw_root / "WFLW_images" / "0--Parade" / "a.jpg"
    assert face.subset == "0--Parade"

    test = reader.read("wflw-test")
    assert len(test) == 2 and len(test.skipped) == 1 and "line 3" in test.skipped[0][0]
    assert test.records[0].attributes == dict.fromkeys(ATTRIBUTES, False) | {"pose": True}
    assert [len(reader.read(f"wflw-test-{a}")) for a in ATTRIBUTES] == [1, 0, 0, 0, 1, 1]
    assert reader.read("wflw-test-blur").records[0].image_path.name == "b.jpg"


@pytest.mark.parametrize("where", ["WFLW_annotations", "WFLW_annotations/list_98pt_rect_attr_train_test",
                                   "WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_test.txt"])
def test_wflw_root_may_be_the_annotation_folder_or_a_list_file(wflw_root: Path, where: str):
    reader = open_dataset(wflw_root / where)
    assert isinstance(reader, WflwReader)
    assert len(reader.read("wflw-test")) == 2  # images found next to the annotations


def test_wflw_line_parser_names_the_source():
    with pytest.raises(ValueError, match="list.txt, line 7"):
        parse_wflw_line("1 2 3", "list.txt, line 7")
    good = wflw_line(random_points(98, 5), (0, 0, 9, 9), (0, 1, 0, 0, 0, 0), "x/y.jpg")
    assert parse_wflw_line(good).attributes["expression"] is True
    with pytest.raises(ValueError, match="flags"):
        parse_wflw_line(good.replace(" 0 1 0 0 0 0 ", " 0 2 0 0 0 0 "), "src")


# ---------------------------------------------------------------- COFW

def cofw_content(num: int = 3):
    images = [RNG.integers(0, 255, (30, 40, 3), dtype=np.uint8),
              RNG.integers(0, 255, (25, 35), dtype=np.uint8),
              RNG.integers(0, 255, (20, 20, 3), dtype=np.uint8)][:num]
    xy = [random_points(29, 10 + i) + 1 for i in range(num)]  # 1-based, as in the .mat
    occluded = (np.arange(num * 29).reshape(num, 29) % 4 == 0).astype(np.float64)
    phis = np.array([np.concatenate([p[:, 0], p[:, 1], o]) for p, o in zip(xy, occluded)], dtype=np.float64)
    boxes = np.array([[5, 6, 20, 18]] * num, dtype=np.float64)
    return images, phis, boxes


def check_cofw(reader: CofwReader, images, phis, boxes, split: str, mat: Path):
    result = reader.read(split)
    assert len(result) == len(images) and not result.skipped
    for i, face in enumerate(result.records):
        np.testing.assert_allclose(face.points, np.stack([phis[i, :29], phis[i, 29:58]], 1) - 1, atol=1e-6)
        np.testing.assert_array_equal(face.visible, phis[i, 58:] == 0)
        np.testing.assert_array_equal(face.attributes["occluded"], phis[i, 58:] == 1)
        np.testing.assert_array_equal(face.box, np.float32([4, 5, 24, 23]))
        assert face.attributes["index"] == i and face.image_path == mat
        expected = images[i] if images[i].ndim == 3 else np.repeat(images[i][:, :, None], 3, axis=2)
        np.testing.assert_array_equal(face.image, expected)
        assert face.image.dtype == np.uint8 and face.image.shape[2] == 3


def test_cofw_reads_matlab_v5(tmp_path: Path):
    images, phis, boxes = cofw_content()
    scipy.io.savemat(tmp_path / "COFW_train_color.mat", {"IsTr": cell(images), "phisTr": phis, "bboxesTr": boxes})
    scipy.io.savemat(tmp_path / "COFW_test_color.mat", {"IsT": cell(images[:2]), "phisT": phis[:2], "bboxesT": boxes[:2]})
    reader = open_dataset(tmp_path)
    assert isinstance(reader, CofwReader) and reader.split_names() == ["cofw-train", "cofw-test"]
    check_cofw(reader, images, phis, boxes, "cofw-train", tmp_path / "COFW_train_color.mat")
    check_cofw(reader, images[:2], phis[:2], boxes[:2], "cofw-test", tmp_path / "COFW_test_color.mat")


def test_cofw_reads_matlab_v73(tmp_path: Path):
    images, phis, boxes = cofw_content()
    mat = tmp_path / "COFW_train_color.mat"
    write_mat73(mat, {"IsTr": images, "phisTr": phis, "bboxesTr": boxes})
    assert mat.read_bytes().startswith(b"MATLAB 7.3") and h5py.is_hdf5(mat)
    reader = open_dataset(mat)  # a single file is a dataset too
    assert isinstance(reader, CofwReader) and reader.split_names() == ["cofw-train"]
    check_cofw(reader, images, phis, boxes, "cofw-train", mat)


def test_cofw_bad_files_raise_and_bad_faces_are_skipped(tmp_path: Path):
    (tmp_path / "COFW_test_color.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(ValueError, match="COFW_test_color.mat"):
        open_dataset(tmp_path).read("cofw-test")
    images, phis, boxes = cofw_content()
    phis[1, 60] = 0.5  # an occlusion flag that is neither 0 nor 1
    scipy.io.savemat(tmp_path / "COFW_train_color.mat", {"IsTr": cell(images), "phisTr": phis})
    result = open_dataset(tmp_path).read("cofw-train")
    assert len(result) == 2 and result.skipped[0][0].endswith("[1]") and result.records[0].box is None
    scipy.io.savemat(tmp_path / "COFW_train_color.mat", {"IsTr": cell(images)})
    with pytest.raises(ValueError, match="phisTr"):
        open_dataset(tmp_path).read("cofw-train")


def test_mat_loader_gives_the_same_values_for_v5_and_v73(tmp_path: Path):
    values = {"m": np.arange(6, dtype=np.float64).reshape(2, 3), "names": ["3/a.jpg", "0/b.jpg"],
              "img": [np.arange(24, dtype=np.uint8).reshape(2, 4, 3)]}
    scipy.io.savemat(tmp_path / "v5.mat", {"m": values["m"], "names": cell(values["names"]), "img": cell(values["img"])})
    write_mat73(tmp_path / "v73.mat", values)
    for name in ("v5.mat", "v73.mat"):
        loaded = load_mat_variables(tmp_path / name, ["m", "names", "img", "absent"])
        assert set(loaded) == {"m", "names", "img"}
        np.testing.assert_array_equal(loaded["m"], values["m"])
        assert loaded["names"] == values["names"]
        np.testing.assert_array_equal(loaded["img"][0], values["img"][0])


# ---------------------------------------------------------------- AFLW

def aflw_mat_content():
    points = [random_points(19, 20 + i) for i in range(4)]
    data = np.array([np.concatenate([p[:, 0], p[:, 1]]) for p in points], dtype=np.float64)
    bbox = np.array([[2, 30, 3, 25]] * 4, dtype=np.float64)  # left, right, top, bottom
    mask = np.ones((4, 19))
    mask[3, 5] = 0
    names = ["0/image00002.jpg", "2/image00004.jpg", "3/image00032.jpg", "3/image00035.jpg"]
    order = np.array([[3, 1, 4, 2]], dtype=np.float64)  # 1-based: train rows 2, 0; test rows 3, 1
    return points, {"data": data, "bbox": bbox, "mask_new": mask, "nameList": names, "ra": order}


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_aflw_mat_protocol_splits(tmp_path: Path, monkeypatch, version: str):
    monkeypatch.setattr(AflwReader, "train_count", 2)
    points, content = aflw_mat_content()
    mat = tmp_path / "AFLWinfo_release.mat"
    if version == "v5":
        scipy.io.savemat(mat, content | {"nameList": cell(content["nameList"])})
    else:
        write_mat73(mat, content)
    for name in content["nameList"][:3]:
        write_image(tmp_path / "aflw" / "data" / "flickr" / name)
    reader = open_dataset(tmp_path)
    assert isinstance(reader, AflwReader) and reader.split_names() == ["aflw-train", "aflw-full", "aflw-frontal"]
    train = reader.read("aflw-train")
    assert [f.attributes["index"] for f in train.records] == [2, 0]
    np.testing.assert_array_equal(train.records[0].points, points[2])
    np.testing.assert_array_equal(train.records[0].box, np.float32([2, 3, 30, 25]))
    assert train.records[0].subset == "3" and train.records[0].visible.all()
    full = reader.read("aflw-full")
    assert [f.attributes["index"] for f in full.records] == [1] and "image00035" in full.skipped[0][1]
    frontal = reader.read("aflw-frontal")  # row 3 has an invisible point: only row 1 is frontal
    assert [f.attributes["index"] for f in frontal.records] == [1] and not frontal.skipped


def test_aflw_mat_with_wrong_shapes_names_the_variable(tmp_path: Path):
    _, content = aflw_mat_content()
    content["mask_new"] = np.ones((4, 18))
    scipy.io.savemat(tmp_path / "AFLWinfo_release.mat", content | {"nameList": cell(content["nameList"])})
    with pytest.raises(ValueError, match="mask_new"):
        open_dataset(tmp_path).read()


def coco_doc(points_list, file_names, flags=None, extra=None) -> dict:
    images = [{"id": i + 1, "file_name": n, "width": 40, "height": 30} for i, n in enumerate(file_names)]
    annotations = []
    for i, points in enumerate(points_list):
        v = np.full(len(points), 2) if flags is None else flags[i]
        keypoints = np.concatenate([points, np.asarray(v, np.float64)[:, None]], 1).ravel().tolist()
        ann = {"id": i, "image_id": i + 1, "keypoints": keypoints, "num_keypoints": len(points),
               "bbox": [1.0, 2.0, 20.0, 10.0], "iscrowd": 0, "category_id": 1}
        annotations.append(ann | (extra or {}))
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "face", "keypoints": [], "skeleton": []}]}


def test_aflw_mmpose_json(tmp_path: Path):
    ann = tmp_path / "annotations"
    ann.mkdir()
    write_image(tmp_path / "images" / "flickr" / "0" / "image00002.jpg")
    extra = {"center": [15.0, 14.0], "scale": 0.1, "box_size": 17.5}
    for name, count in (("train", 2), ("test", 1), ("test_frontal", 1)):
        doc = coco_doc([random_points(19, k) for k in range(count)], ["flickr/0/image00002.jpg"] * count, extra=extra)
        (ann / f"face_landmarks_aflw_{name}.json").write_text(json.dumps(doc))
    reader = open_dataset(tmp_path)
    assert isinstance(reader, AflwReader) and reader.split_names() == ["aflw-train", "aflw-full", "aflw-frontal"]
    train = reader.read()
    assert len(train) == 2 and reader.scheme.name == "aflw-19"
    face = train.records[0]
    np.testing.assert_array_equal(face.box, np.float32([5, 4, 25, 24]))  # 200 * 0.1 px square around center
    assert face.attributes == {"box_size": 17.5}
    assert len(reader.read("aflw-frontal")) == 1


# ---------------------------------------------------------------- COCO

@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    ann = tmp_path / "annotations"
    ann.mkdir()
    write_image(tmp_path / "images" / "helen" / "trainset" / "1.jpg")
    write_image(tmp_path / "images" / "ibug" / "2.jpg")
    flags = [np.where(np.arange(68) < 3, 1, 2), np.where(np.arange(68) == 0, 0, 2), np.full(68, 2)]
    doc = coco_doc([random_points(68, 30 + k) for k in range(3)],
                   ["helen/trainset/1.jpg", "ibug/2.jpg", "ibug/missing.jpg"], flags)
    doc["annotations"].append({"id": 9, "image_id": 1, "keypoints": [1.0, 2.0, 2]})  # wrong point count
    (ann / "face_landmarks_300w_train.json").write_text(json.dumps(doc))
    loose = coco_doc([random_points(68, 40)], ["ibug/2.jpg"], [np.ones(68)])  # v = 1 everywhere (MMPose WFLW style)
    (ann / "face_landmarks_300w_valid.json").write_text(json.dumps(loose))
    return tmp_path


def test_coco_reads_keypoints_visibility_and_boxes(coco_root: Path):
    reader = open_dataset(coco_root)
    assert isinstance(reader, CocoReader) and reader.scheme.name == "300w-68"
    assert reader.split_names() == ["face_landmarks_300w_train", "face_landmarks_300w_valid"]
    assert reader.default_train_split == "face_landmarks_300w_train"
    assert reader.default_test_split == "face_landmarks_300w_valid"
    train = reader.read()
    assert len(train) == 2 and len(train.skipped) == 2
    reasons = " ".join(r for _, r in train.skipped)
    assert "expected 68" in reasons and "image not found" in reasons
    first, second = train.records
    np.testing.assert_array_equal(first.points, random_points(68, 30))
    assert first.image_path == coco_root / "images" / "helen" / "trainset" / "1.jpg"
    assert first.subset == "helen/trainset"
    assert not first.visible[:3].any() and first.visible[3:].all()  # file uses v = 2: v = 1 means occluded
    assert not second.visible[0] and second.visible[1:].all()
    np.testing.assert_array_equal(first.box, np.float32([1, 2, 21, 12]))
    loose = reader.read("face_landmarks_300w_valid").records[0]
    assert loose.visible.all()  # no v = 2 in the file: v = 1 means visible


def test_coco_single_file_scheme_choice_and_errors(tmp_path: Path):
    write_image(tmp_path / "images" / "a.jpg")
    path = tmp_path / "cofw_test.json"
    path.write_text(json.dumps(coco_doc([random_points(29, 1)], ["a.jpg"])))
    reader = open_dataset(path)
    assert isinstance(reader, CocoReader) and reader.scheme.name == "cofw-29" and len(reader.read()) == 1
    path.write_text(json.dumps(coco_doc([random_points(7, 1)], ["a.jpg"])))
    with pytest.raises(ValueError, match="7 keypoints"):
        open_dataset(path)
    reader = open_dataset(path, format="coco", scheme=get_scheme("300w-68"))
    assert len(reader.read()) == 0 and "expected 68" in reader.read().skipped[0][1]
    with pytest.raises(CocoFormatError, match="my.json"):
        parse_coco([1, 2], "my.json")


# ---------------------------------------------------------------- custom

SCHEME_YAML = """name: five
num_points: 5
flip_pairs: [[0, 1], [3, 4]]
inter_ocular: [0, 1]
inter_pupil: [0, 1]
"""


@pytest.fixture
def custom_root(tmp_path: Path) -> Path:
    write_image(tmp_path / "faces" / "a.jpg")
    write_image(tmp_path / "faces" / "b.png")
    header = ["image"] + [f"{c}{i}" for i in range(5) for c in "xy"] + [f"v{i}" for i in range(5)]
    header += ["box_x0", "box_y0", "box_x1", "box_y1", "subset"]
    rows = [
        ["faces/a.jpg"] + [f"{v:.3f}" for v in random_points(5, 50).ravel()] + ["1", "0", "1", "1", "1"]
        + ["1", "2", "30", "25", "studio"],
        ["faces/b.png"] + [f"{v:.3f}" for v in random_points(5, 51).ravel()] + ["1"] * 5 + ["1", "2", "3", "4", ""],
        ["faces/b.png"] + ["oops"] * 10 + ["1"] * 5 + ["1", "2", "3", "4", ""],
        ["faces/none.jpg"] + ["1"] * 15 + ["1", "2", "3", "4", ""],
    ]
    (tmp_path / "train.csv").write_text("\n".join(",".join(r) for r in [header] + rows) + "\n")
    items = [{"image": "faces/a.jpg", "points": random_points(5, 52).tolist(), "visible": [True, True, False, 1, 1],
              "box": [0, 0, 10, 10], "attributes": {"source": "phone"}},
             {"image": "faces/b.png", "points": random_points(4, 53).tolist()},
             {"image": "faces/b.png", "points": random_points(5, 54).tolist(), "colour": "red"}]
    (tmp_path / "test.json").write_text(json.dumps(items))
    (tmp_path / "scheme.yaml").write_text(SCHEME_YAML)
    return tmp_path


def test_custom_csv_and_json_with_scheme_file(custom_root: Path):
    reader = open_dataset(custom_root)
    assert isinstance(reader, CustomReader) and reader.scheme.name == "five"
    assert reader.split_names() == ["train", "test"]
    train = reader.read("train")
    assert len(train) == 2 and len(train.skipped) == 2
    assert "line 4" in train.skipped[0][0] and "image not found" in train.skipped[1][1]
    face = train.records[0]
    np.testing.assert_array_equal(face.points, random_points(5, 50))
    np.testing.assert_array_equal(face.visible, [True, False, True, True, True])
    np.testing.assert_array_equal(face.box, np.float32([1, 2, 30, 25]))
    assert face.subset == "studio" and face.image_path == custom_root / "faces" / "a.jpg"
    test = reader.read("test")
    assert len(test) == 1 and [k for k, _ in test.skipped] == [f"{custom_root / 'test.json'}, item {k}" for k in (1, 2)]
    face = test.records[0]
    np.testing.assert_array_equal(face.visible, [True, True, False, True, True])
    assert face.attributes == {"source": "phone"}


def test_custom_scheme_choice(custom_root: Path):
    (custom_root / "scheme.yaml").unlink()
    with pytest.raises(ValueError, match="scheme file"):
        open_dataset(custom_root)
    reader = open_dataset(custom_root, scheme=LandmarkScheme.from_dict(yaml.safe_load(SCHEME_YAML)))
    assert reader.scheme.name == "five" and len(reader.read("train")) == 2
    single = custom_root / "sub" / "faces68.json"
    single.parent.mkdir()
    single.write_text(json.dumps([{"image": "../faces/a.jpg", "points": random_points(68, 1).tolist()}]))
    reader = open_dataset(single)
    assert isinstance(reader, CustomReader) and reader.scheme.name == "300w-68" and len(reader.read()) == 1


def test_custom_bad_header_raises_naming_the_file(tmp_path: Path):
    (tmp_path / "faces.csv").write_text("image,x0,y0,x1,y1,colour\na.jpg,1,2,3,4,red\n")
    (tmp_path / "scheme.yaml").write_text(SCHEME_YAML)
    with pytest.raises(CustomFormatError, match=r"faces\.csv.*colour"):
        open_dataset(tmp_path).read()


# ---------------------------------------------------------------- 300-W

def pts_text(points_1based: np.ndarray) -> str:
    lines = [f"{x:.3f} {y:.3f}" for x, y in points_1based]
    return "version: 1\nn_points:  {}\n{{\n{}\n}}\n".format(len(lines), "\n".join(lines))


def write_face(folder: Path, stem: str, seed: int, image_stem: str | None = None, num: int = 68) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    points = random_points(num, seed)
    (folder / f"{stem}.pts").write_text(pts_text(points + 1))
    if image_stem is not False:
        write_image(folder / f"{image_stem or stem}.jpg")
    return points


@pytest.fixture
def w300_root(tmp_path: Path) -> Path:
    root = tmp_path / "300W"
    write_face(root / "lfpw" / "trainset", "image_0001", 1)
    write_face(root / "helen" / "trainset", "232194_1", 2, image_stem="232194")  # NAME_1.pts shares NAME.jpg
    write_face(root / "afw", "134212_1", 3)
    write_face(root / "afw", "134212_2", 4, image_stem="134212")
    write_face(root / "lfpw" / "testset", "image_0002", 5)
    write_face(root / "helen" / "testset", "296814969_3", 6)
    write_face(root / "ibug", "image_003_1", 7)
    write_face(root / "ibug", "short", 8, num=67)  # 67 points: skipped
    (root / "ibug" / "garbage.pts").write_bytes(b"\x00\xff garbage \x89PNG")
    write_face(root / "ibug", "no_image", 9, image_stem=False)
    write_face(root / "Test" / "01_Indoor", "indoor_001", 10)
    write_face(root / "Test" / "02_Outdoor", "outdoor_001", 11)
    return root


def test_300w_official_layout_splits_and_skips(w300_root: Path):
    reader = open_dataset(w300_root)
    assert isinstance(reader, W300Reader) and reader.scheme.name == "300w-68"
    assert reader.split_names() == ["300w-train", "300w-common", "300w-challenging", "300w-full", "300w-test", "all"]
    counts = {s: len(reader.read(s)) for s in reader.split_names()}
    assert counts == {"300w-train": 4, "300w-common": 2, "300w-challenging": 1, "300w-full": 3, "300w-test": 2,
                      "all": 9}
    train = reader.read("300w-train")
    helen = next(f for f in train.records if f.subset == "helen/trainset")
    assert helen.image_path.name == "232194.jpg"
    np.testing.assert_allclose(helen.points, random_points(68, 2), atol=1e-5)  # 1-based -> 0-based
    challenging = reader.read("300w-challenging")
    reasons = {Path(item).name: reason for item, reason in challenging.skipped}
    assert set(reasons) == {"short.pts", "garbage.pts", "no_image.pts"}
    assert "67 points" in reasons["short.pts"] and "no image" in reasons["no_image.pts"]


def test_empty_folder_is_not_a_dataset(tmp_path: Path):
    with pytest.raises(ValueError, match="no known dataset format"):
        open_dataset(tmp_path)
    with pytest.raises(FileNotFoundError):
        open_dataset(tmp_path / "absent")


def test_every_reader_is_registered_and_specific_formats_come_first():
    order = list(READERS)
    assert set(order) == {"wflw", "cofw", "aflw", "coco", "300w", "custom"}
    assert order.index("300w") > max(order.index(f) for f in ("wflw", "cofw", "aflw", "coco"))
    assert order[-1] == "custom" and order.index("aflw") < order.index("coco")


def test_real_300w_subset():
    if not REAL_300W.is_dir():
        pytest.skip(f"real 300-W subset not found at {REAL_300W}")
    reader = open_dataset(REAL_300W)
    assert isinstance(reader, W300Reader)
    assert reader.split_names() == ["300w-train", "300w-common", "all"]
    common = reader.read("300w-common")
    assert len(common) == 554 and not common.skipped
    assert all(f.points.shape == (68, 2) and f.points.dtype == np.float32 for f in common.records)
