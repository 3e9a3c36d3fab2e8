"""`wingface predict` on images, folders, globs and box files, and `wingface demo`."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from wingface.bench.predict_speed import random_cascade
from wingface.cli.main import main
from wingface.inference.landmarker import Landmarker
from wingface.models import save_cascade

FACE_BOX = [89.0, 35.0, 135.0, 88.0]  # the astronaut's face in the 256-px copy


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return save_cascade(tmp_path_factory.mktemp("model") / "cascade.pt", random_cascade(seed=0))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """The bundled astronaut at 256 x 256, BGR (as cv2 writes it)."""
    with resources.as_file(resources.files("wingface").joinpath("assets", "astronaut.jpg")) as path:
        return cv2.resize(cv2.imread(str(path)), (256, 256), interpolation=cv2.INTER_AREA)


@pytest.fixture
def folder(tmp_path, photo) -> Path:
    """photos/a.jpg, photos/b.png, photos/sub/a.jpg, photos/sub/broken.jpg, photos/notes.txt."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    cv2.imwrite(str(root / "a.jpg"), photo)
    cv2.imwrite(str(root / "b.png"), np.ascontiguousarray(photo[:, ::-1]))
    cv2.imwrite(str(root / "sub" / "a.jpg"), photo)
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff truncated jpeg")
    (root / "notes.txt").write_text("not an image")
    return root


def _run(*args: str) -> int:
    return main(["predict", *args, "--no-progress"])


def test_folder_outputs_and_a_named_failure(folder, model, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(str(folder), "--model", str(model), "--out", str(out), "--csv", "--draw") == 1
    captured = capsys.readouterr()
    assert "sub/broken.jpg" in captured.err and "not a readable image" in captured.err and "1 failed" in captured.err
    assert "3 image(s) with 3 face(s)" in captured.out
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["a.json", "a.landmarks.png", "b.json", "b.landmarks.png", "landmarks.csv",
                     "sub/a.json", "sub/a.landmarks.png"]
    record = json.loads((out / "a.json").read_text())
    assert record["image"] == str(folder / "a.jpg") and (record["width"], record["height"]) == (256, 256)
    assert len(record["faces"]) == 1 and len(record["faces"][0]["points"]) == 68
    with open(out / "landmarks.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:10] == ["image", "face", "score", "confidence", "box_x0", "box_y0", "box_x1", "box_y1", "x0", "y0"]
    assert rows[0][-1] == "c67" and len(rows[0]) == 8 + 136 + 68 and [r[0] for r in rows[1:]] == ["a.jpg", "b.png", "sub/a.jpg"]
    assert cv2.imread(str(out / "a.landmarks.png")).shape == (256, 256, 3)


def test_results_match_the_api(folder, model, tmp_path):
    out = tmp_path / "out"
    _run(str(folder / "a.jpg"), "--model", str(model), "--out", str(out))
    faces = Landmarker(model).predict(folder / "a.jpg")
    record = json.loads((out / "a.json").read_text())
    np.testing.assert_allclose(record["faces"][0]["points"], faces[0].points, atol=1e-3)


def test_strict_stops_at_the_first_failure(folder, model, tmp_path, capsys):
    assert _run(str(folder / "sub"), "--model", str(model), "--out", str(tmp_path / "o"), "--strict") == 2
    assert "broken.jpg" in capsys.readouterr().err


def test_glob_missing_paths_and_name_collisions(folder, model, tmp_path, photo, capsys):
    cv2.imwrite(str(folder / "a.png"), photo)
    out = tmp_path / "out"
    code = _run(str(folder / "a.*"), str(folder / "sub" / "a.jpg"), str(tmp_path / "nope.jpg"),
                str(tmp_path / "*.none"), "--model", str(model), "--out", str(out))
    assert code == 1
    err = capsys.readouterr().err
    assert "nope.jpg: no such file or folder" in err and "no file matches" in err
    assert sorted(p.name for p in out.glob("*.json")) == ["a-2.json", "a-3.json", "a.json"]
    images = {json.loads(p.read_text())["image"] for p in out.glob("*.json")}
    assert images == {str(folder / "a.jpg"), str(folder / "a.png"), str(folder / "sub" / "a.jpg")}


def test_boxes_file(folder, model, tmp_path, capsys):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.jpg": [FACE_BOX, [10, 10, 60, 70]], "sub/a.jpg": [], "typo.jpg": [FACE_BOX]}))
    out = tmp_path / "out"
    code = _run(str(folder), "--boxes", str(boxes), "--detector", "none", "--model", str(model), "--out", str(out))
    assert code == 1  # b.png has no boxes and there is no detector; sub/broken.jpg is broken
    captured = capsys.readouterr()
    assert "b.png: no boxes for it" in captured.err and "typo.jpg" in captured.err  # unused keys are warned about
    faces = json.loads((out / "a.json").read_text())["faces"]
    assert [f["box"] for f in faces] == [FACE_BOX, [10, 10, 60, 70]] and faces[0]["score"] == 1.0
    assert json.loads((out / "sub" / "a.json").read_text())["faces"] == []


def test_bad_boxes_files(folder, model, tmp_path, capsys):
    boxes = tmp_path / "boxes.json"
    for text, message in [("[1, 2]", "JSON object"), ("{oops", "not valid JSON"),
                          ('{"a.jpg": [[1, 2, 3]]}', "'a.jpg'")]:
        boxes.write_text(text)
        assert _run(str(folder / "a.jpg"), "--boxes", str(boxes), "--model", str(model),
                    "--out", str(tmp_path / "o")) == 2
        assert message in capsys.readouterr().err
    boxes.write_text(json.dumps({"a.jpg": [[100, 100, 90, 120]]}))  # inverted: the item fails, by name
    assert _run(str(folder / "a.jpg"), str(folder / "b.png"), "--boxes", str(boxes), "--model", str(model),
                "--out", str(tmp_path / "o")) == 1
    err = capsys.readouterr().err
    assert "a.jpg" in err and "degenerate or inverted" in err and (tmp_path / "o" / "b.json").is_file()


def test_unwritable_outputs(folder, model, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _run(str(folder / "a.jpg"), "--model", str(model), "--out", str(blocker)) == 2
    assert "cannot write there" in capsys.readouterr().err
    out = tmp_path / "out"
    (out / "a.json").mkdir(parents=True)  # a folder where a.json must go
    assert _run(str(folder / "a.jpg"), str(folder / "b.png"), "--model", str(model), "--out", str(out)) == 1
    assert "a.jpg" in capsys.readouterr().err and (out / "b.json").is_file()


def test_nothing_to_do_and_bad_options(tmp_path, model, capsys):
    assert _run(str(tmp_path / "missing"), "--model", str(model)) == 2
    assert "no image or video to process" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "x.jpg", "--detector", "yunett"])
    assert "did you mean 'yunet'" in capsys.readouterr().err


def test_onnx_backend_through_the_cli(folder, model, tmp_path):
    export = tmp_path / "export"
    assert main(["export", str(model), "--out", str(export)]) == 0
    out_t, out_o = tmp_path / "t", tmp_path / "o"
    _run(str(folder / "a.jpg"), "--model", str(model), "--out", str(out_t))
    _run(str(folder / "a.jpg"), "--model", str(export), "--out", str(out_o))  # onnx: chosen by the path
    pt = json.loads((out_t / "a.json").read_text())["faces"][0]["points"]
    po = json.loads((out_o / "a.json").read_text())["faces"][0]["points"]
    assert np.abs(np.array(pt) - np.array(po)).max() < 0.01


def test_demo(model, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--model", str(model), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 face(s), 68 landmarks" in printed and str(out / "astronaut.landmarks.png") in printed
    assert len(json.loads((out / "astronaut.json").read_text())["faces"]) == 1



def test_demo_without_the_shipped_model_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import wingface.inference.landmarker as module

    monkeypatch.setattr(module, "default_model_path", lambda precision="fp32": tmp_path / "absent.pt")
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 2
    assert "shipped model is not installed" in capsys.readouterr().err


def test_flip_test_flag_matches_the_api(folder, model, tmp_path):
    out = tmp_path / "out"
    assert _run(str(folder / "a.jpg"), "--model", str(model), "--out", str(out), "--flip-test") == 0
    faces = Landmarker(model, flip_test=True).predict(folder / "a.jpg")
    written = json.loads((out / "a.json").read_text())["faces"]
    np.testing.assert_allclose(written[0]["points"], faces[0].points, atol=1e-3)
