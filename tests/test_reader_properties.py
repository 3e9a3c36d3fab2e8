"""Property tests for the annotation parsers: malformed input only ever raises the parser's
documented ValueError subclass naming the source, and valid generated content round-trips."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from wingface.data.readers.coco import CocoFormatError, parse_coco
from wingface.data.readers.custom import CustomFormatError, CustomReader, parse_custom_csv, parse_custom_json
from wingface.data.readers.w300 import PtsFormatError, W300Reader, parse_pts
from wingface.data.readers.wflw import WflwFormatError, parse_wflw_line

SOURCE = "source-file.txt"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

coordinates = st.floats(-1e4, 1e4, allow_nan=False, width=32)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c,
                                                                                             max_size=4), max_leaves=12)
numeric_tokens = st.sampled_from(["0", "1", "2", "-0", "1.5", "1e3", "nan", "inf", "-inf", "1e999", "x", "", "0x1",
                                  "1_0", "\u0663", "1,5", "--1"]) | st.text(max_size=5)


def truncations(text: str) -> st.SearchStrategy[str]:
    return st.integers(0, len(text)).map(lambda n: text[:n])


def check_error(err: Exception, kind: type) -> None:
    assert type(err) is kind and SOURCE in str(err)


def check_skipped(result) -> None:
    for item, reason in result.skipped:
        assert SOURCE in item and SOURCE in reason


# ---------------------------------------------------------------- 300-W .pts

def pts_text(points: np.ndarray) -> str:
    body = "\n".join(f"{x!r} {y!r}" for x, y in points.tolist())
    return f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n"


point_arrays = st.integers(1, 12).flatmap(lambda n: st.lists(st.tuples(coordinates, coordinates), min_size=n,
                                                             max_size=n)).map(lambda p: np.array(p, np.float64))


@FAST
@given(point_arrays)
def test_pts_round_trips(points):
    parsed = parse_pts(pts_text(points), SOURCE)
    np.testing.assert_array_equal(parsed, (points - 1).astype(np.float32))


@FAST
@given(st.text() | st.binary().map(lambda b: b.decode("latin-1")))
def test_pts_random_text_raises_only_pts_errors(text):
    try:
        parse_pts(text, SOURCE)
    except PtsFormatError as err:
        check_error(err, PtsFormatError)


@FAST
@given(point_arrays.map(pts_text).flatmap(truncations), st.integers(0, 3), numeric_tokens)
def test_pts_truncated_or_with_extra_tokens_raises_only_pts_errors(text, line, token):
    lines = text.splitlines()
    if lines:
        lines[min(line, len(lines) - 1)] += f" {token}"
    for candidate in (text, "\n".join(lines)):
        try:
            parse_pts(candidate, SOURCE, expected_points=3)
        except PtsFormatError as err:
            check_error(err, PtsFormatError)


@FAST
@given(st.binary(max_size=200))
def test_pts_reader_skips_random_bytes(tmp_path, data):
    (tmp_path / "face.pts").write_bytes(data)
    (tmp_path / "face.jpg").write_bytes(b"")
    result = W300Reader(tmp_path).read("all")
    assert len(result.records) + len(result.skipped) == 1


# ---------------------------------------------------------------- WFLW lines

wflw_faces = st.tuples(
    st.lists(st.floats(-50, 500, allow_nan=False, width=32), min_size=196, max_size=196),
    st.tuples(st.floats(0, 10, width=32), st.floats(0, 10, width=32), st.floats(10, 20, width=32),
              st.floats(10, 20, width=32)),
    st.lists(st.integers(0, 1), min_size=6, max_size=6),
    st.from_regex(r"[0-9]{1,2}--[A-Za-z_]{1,8}/[a-z0-9_]{1,10}\.jpg", fullmatch=True),
)


def wflw_line(face) -> str:
    points, box, flags, image = face
    return " ".join([repr(v) for v in points] + [repr(v) for v in box] + [str(f) for f in flags] + [image])


@FAST
@given(wflw_faces)
def test_wflw_line_round_trips(face):
    points, box, flags, image = face
    record = parse_wflw_line(wflw_line(face), SOURCE)
    np.testing.assert_array_equal(record.points, np.float32(points).reshape(98, 2))
    np.testing.assert_array_equal(record.box, np.float32(box))
    assert list(record.attributes.values()) == [bool(f) for f in flags]
    assert record.image_path == Path(image) and record.subset == image.split("/")[0]


@FAST
@given(st.text() | st.lists(numeric_tokens, min_size=200, max_size=210).map(" ".join))
def test_wflw_random_lines_raise_only_wflw_errors(line):
    try:
        parse_wflw_line(line, SOURCE)
    except WflwFormatError as err:
        check_error(err, WflwFormatError)


@FAST
@given(wflw_faces.map(wflw_line), st.data())
def test_wflw_truncated_or_with_extra_tokens_raise_only_wflw_errors(line, data):
    tokens = line.split()
    at = data.draw(st.integers(0, len(tokens)))
    mutated = [data.draw(truncations(line)), " ".join(tokens[:at] + [data.draw(numeric_tokens)] + tokens[at:])]
    for candidate in mutated:
        try:
            parse_wflw_line(candidate, SOURCE)
        except WflwFormatError as err:
            check_error(err, WflwFormatError)


# ---------------------------------------------------------------- custom CSV / JSON

custom_faces = st.integers(1, 6).flatmap(lambda n: st.lists(st.tuples(
    st.from_regex(r"[a-z0-9_/]{1,12}\.(jpg|png)", fullmatch=True),
    st.lists(st.tuples(coordinates, coordinates), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n),
    st.tuples(st.floats(-10, 0, width=32), st.floats(-10, 0, width=32), st.floats(0, 99, width=32),
              st.floats(0, 99, width=32)),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=6),
), min_size=1, max_size=4))


def csv_text(faces) -> str:
    num = len(faces[0][1])
    header = ["image"] + [f"{c}{i}" for i in range(num) for c in "xy"] + [f"v{i}" for i in range(num)]
    rows = [header + ["box_x0", "box_y0", "box_x1", "box_y1", "subset"]]
    for image, points, visible, box, subset in faces:
        rows.append([image] + [repr(c) for p in points for c in p] + [str(int(v)) for v in visible]
                    + [repr(b) for b in box] + [subset])
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def json_text(faces) -> str:
    return json.dumps([{"image": image, "points": [list(p) for p in points], "visible": visible, "box": list(box),
                        "subset": subset} for image, points, visible, box, subset in faces])


def check_round_trip(result, faces) -> None:
    assert not result.skipped and len(result.records) == len(faces)
    for record, (image, points, visible, box, subset) in zip(result.records, faces):
        assert record.image_path == Path(image)
        np.testing.assert_array_equal(record.points, np.float32(points))
        np.testing.assert_array_equal(record.visible, visible)
        np.testing.assert_array_equal(record.box, np.float32(box))


@FAST
@given(custom_faces)
def test_custom_csv_round_trips(faces):
    result = parse_custom_csv(csv_text(faces), SOURCE)
    check_round_trip(result, faces)
    assert [r.subset for r in result.records] == [f[4].strip() for f in faces]


@FAST
@given(custom_faces)
def test_custom_json_round_trips(faces):
    result = parse_custom_json(json_text(faces), SOURCE, expected_points=len(faces[0][1]))
    check_round_trip(result, faces)
    assert [r.subset for r in result.records] == [f[4] for f in faces]


@FAST
@given(st.text() | custom_faces.map(csv_text).flatmap(truncations))
@example("image,x\u0663,y\u0663\na.jpg,1,2\n")  # non-ASCII digits are not point indices
def test_custom_csv_malformed_raises_only_custom_errors(text):
    try:
        check_skipped(parse_custom_csv(text, SOURCE))
    except CustomFormatError as err:
        check_error(err, CustomFormatError)


@FAST
@given(custom_faces.map(csv_text), st.data())
def test_custom_csv_extra_or_changed_cells_are_skipped_rows(text, data):
    lines = text.splitlines()
    row = data.draw(st.integers(1, len(lines) - 1))
    token = data.draw(numeric_tokens.filter(lambda t: not set(t) & set('"\r\n')))
    lines[row] = data.draw(st.sampled_from([lines[row] + ",extra", lines[row].replace(",", ",,", 1),
                                            lines[row].replace(",", f",{token}", 1)]))
    result = parse_custom_csv("\n".join(lines), SOURCE)
    check_skipped(result)
    assert len(result.records) + len(result.skipped) == len(lines) - 1


@FAST
@given(st.text() | json_values.map(json.dumps) | custom_faces.map(json_text).flatmap(truncations)
       | st.lists(st.dictionaries(st.sampled_from(["image", "points", "visible", "box", "subset", "attributes", "x"]),
                                  json_values), max_size=3).map(json.dumps))
def test_custom_json_malformed_raises_only_custom_errors(text):
    try:
        check_skipped(parse_custom_json(text, SOURCE, expected_points=2))
    except CustomFormatError as err:
        check_error(err, CustomFormatError)


@FAST
@given(st.sampled_from([b"", b"[", b"image,x0,y0,x1,y1\n"]), st.binary(max_size=300),
       st.sampled_from(["faces.csv", "faces.json"]))
def test_custom_reader_on_random_bytes_raises_only_custom_errors(tmp_path, prefix, data, name):
    for old in tmp_path.iterdir():
        old.unlink()
    (tmp_path / "scheme.yaml").write_text(
        "name: two\nnum_points: 2\nflip_pairs: []\ninter_ocular: [0, 1]\ninter_pupil: [0, 1]\n")
    (tmp_path / name).write_bytes(prefix + data)
    assume(CustomReader.recognises(tmp_path))
    try:
        result = CustomReader(tmp_path).read()
    except CustomFormatError as err:
        assert name in str(err)
    else:
        assert all(name in item for item, _ in result.skipped)


# ---------------------------------------------------------------- COCO JSON

def keypoints(num: int) -> st.SearchStrategy[list]:
    return st.lists(st.tuples(coordinates, coordinates, st.sampled_from([0, 1, 2])), min_size=num, max_size=num).map(
        lambda t: [float(c) if k < 2 else c for triple in t for k, c in enumerate(triple)])


annotations = st.fixed_dictionaries(
    {"image_id": st.sampled_from([1, 2]) | json_values, "keypoints": keypoints(3) | keypoints(2) | json_values},
    optional={"bbox": st.lists(coordinates, min_size=4, max_size=4) | json_values,
              "center": st.lists(coordinates, min_size=2, max_size=2) | json_values,
              "scale": st.floats(0.01, 5) | json_values, "box_size": coordinates | json_values},
)
coco_docs = st.fixed_dictionaries({
    "images": st.lists(st.fixed_dictionaries({"id": st.sampled_from([1, 2]) | json_values,
                                              "file_name": st.sampled_from(["a/b.jpg", "c.png"]) | json_values}),
                       max_size=3) | json_values,
    "annotations": st.lists(annotations | json_values, max_size=4) | json_values,
})


@FAST
@given(coco_docs | json_values)
@example({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "keypoints": [10 ** 400] * 9}]})
def test_coco_malformed_raises_only_coco_errors(doc):
    try:
        result = parse_coco(doc, SOURCE, expected_points=3)
    except CocoFormatError as err:
        check_error(err, CocoFormatError)
    else:
        check_skipped(result)
        for record in result.records:
            assert record.points.shape == (3, 2) and record.visible.shape == (3,)
            assert record.box is None or (record.box.shape == (4,) and np.all(np.isfinite(record.box)))


@FAST
@given(st.lists(st.tuples(keypoints(4), st.lists(coordinates, min_size=2, max_size=2),
                          st.floats(0, 500, width=32)), min_size=1, max_size=3))
def test_coco_round_trips(faces):
    doc = {"images": [{"id": 7, "file_name": "x/y.jpg"}],
           "annotations": [{"image_id": 7, "keypoints": kp, "bbox": [x, y, w, w]} for kp, (x, y), w in faces]}
    result = parse_coco(doc, SOURCE)
    assert not result.skipped and len(result.records) == len(faces)
    strict = any(kp[2::3].count(2) for kp, _, _ in faces)
    for record, (kp, (x, y), w) in zip(result.records, faces):
        triples = np.array(kp).reshape(-1, 3)
        np.testing.assert_array_equal(record.points, triples[:, :2].astype(np.float32))
        np.testing.assert_array_equal(record.visible, triples[:, 2] == 2 if strict else triples[:, 2] > 0)
        np.testing.assert_allclose(record.box, [x, y, x + w, y + w], rtol=1e-6, atol=1e-3)
        assert record.subset == "x"


@pytest.mark.parametrize("parser", [parse_pts, parse_wflw_line, parse_custom_csv, parse_custom_json])
def test_parsers_name_the_source_on_empty_input(parser):
    with pytest.raises(ValueError, match=SOURCE):
        parser("", SOURCE)
