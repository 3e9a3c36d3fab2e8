"""ONNX export and the onnxruntime backend: same points as PyTorch, self-describing files, int8."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from wingface.bench.op_profile import quantized_conv_gflop
from wingface.bench.predict_speed import end_to_end, photo_640x480, random_cascade
from wingface.cli.main import main
from wingface.data.synthetic import synthetic_faces
from wingface.export import MANIFEST, calibration_crops, export_onnx
from wingface.geometry import box_from_points
from wingface.inference.landmarker import Landmarker
from wingface.inference.onnx_backend import load_onnx_stages
from wingface.models import flops_per_face, save_cascade


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return random_cascade(seed=1)


@pytest.fixture(scope="module")
def cascade_file(models, tmp_path_factory) -> Path:
    return save_cascade(tmp_path_factory.mktemp("model") / "cascade.pt", models)


@pytest.fixture(scope="module")
def export_dir(models, tmp_path_factory) -> Path:
    return export_onnx(models, tmp_path_factory.mktemp("onnx") / "export").parent


@pytest.fixture(scope="module")
def faces():
    return synthetic_faces(8, image_size=128, seed=2)


def test_manifest_describes_the_stages(export_dir, models):
    manifest = json.loads((export_dir / MANIFEST).read_text())
    assert manifest["format"] == "wingface-onnx" and manifest["quantize"] is None
    assert [s["spec"] for s in manifest["stages"]] == [m.spec.to_dict() for m in models]
    for entry, model in zip(manifest["stages"], models):
        proto = onnx.load(str(export_dir / entry["file"]))
        meta = {p.key: p.value for p in proto.metadata_props}
        assert json.loads(meta["wingface_spec"]) == model.spec.to_dict()
        assert [i.name for i in proto.graph.input] == ["crops"] and [o.name for o in proto.graph.output] == ["points"]


def test_each_stage_matches_pytorch_in_crop_pixels(export_dir, models):
    stages = load_onnx_stages(export_dir, threads=1)
    for stage, model in zip(stages, models):
        assert stage.spec == model.spec
        crops = calibration_crops(model.spec, count=5, seed=7)
        with torch.inference_mode():
            expected = model.predict_pixels(torch.from_numpy(crops)).double().numpy()
        for batch in (crops[:1], crops):  # the batch axis is dynamic
            got = stage.backend(batch)
            assert got.shape == (len(batch), 68, 2)
            np.testing.assert_allclose(got, expected[:len(batch)], atol=0.01)


def test_landmarker_gives_the_same_points_with_both_backends(export_dir, cascade_file, faces):
    images = [f.image for f in faces]
    boxes = [[box_from_points(f.points)] for f in faces]
    by_torch = Landmarker(cascade_file, detector=None).predict_batch(images, boxes)
    by_onnx = Landmarker(export_dir, detector=None, backend="onnx", threads=1).predict_batch(images, boxes)
    by_manifest = Landmarker(export_dir / MANIFEST, detector=None).predict_batch(images, boxes)  # backend by path
    for t, o, m in zip(by_torch, by_onnx, by_manifest):
        assert np.abs(t[0].points - o[0].points).max() < 0.01
        np.testing.assert_allclose(o[0].points, m[0].points, atol=1e-9)


def test_a_single_onnx_file_is_self_describing(export_dir, faces):
    first = sorted(export_dir.glob("stage1-*.onnx"))[0]
    stages = load_onnx_stages(first)
    assert len(stages) == 1 and stages[0].spec.arch == "cnn6"
    lm = Landmarker(first, detector=None, backend="onnx")
    assert lm.predict(faces[0].image, boxes=[box_from_points(faces[0].points)])[0].points.shape == (68, 2)


def test_bad_exports_raise_clear_errors(export_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="ONNX export not found"):
        load_onnx_stages(tmp_path / "nothing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON manifest"):
        load_onnx_stages(bad)
    (bad / MANIFEST).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a wingface ONNX manifest"):
        load_onnx_stages(bad)
    manifest = json.loads((export_dir / MANIFEST).read_text())
    (bad / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(FileNotFoundError, match="stages\\[0\\].*ONNX file not found"):
        load_onnx_stages(bad)
    (bad / manifest["stages"][0]["file"]).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a loadable ONNX model"):
        load_onnx_stages(bad)
    plain = tmp_path / "plain.onnx"
    proto = onnx.load(str(export_dir / manifest["stages"][0]["file"]))
    del proto.metadata_props[:]
    onnx.save(proto, str(plain))
    with pytest.raises(ValueError, match="no 'wingface_spec' metadata"):
        load_onnx_stages(plain)


def test_bad_quantize_mode_suggests(models, tmp_path):
    with pytest.raises(ValueError, match="did you mean 'int8'"):
        export_onnx(models, tmp_path / "x", quantize="int9")


def test_int8_export_runs_close_to_float(models, export_dir, tmp_path):
    manifest_path = export_onnx(models[:1], tmp_path / "int8", quantize="int8", calibration=16)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["quantize"] == "int8"
    graph = onnx.load(str(manifest_path.parent / manifest["stages"][0]["file"])).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    first_conv = next(n for n in graph.node if n.op_type == "Conv")
    assert first_conv.input[1] in {t.name for t in graph.initializer}  # float weights: 3 input channels
    crops = calibration_crops(models[0].spec, count=8, seed=9)
    quantized = load_onnx_stages(manifest_path, threads=1)[0].backend(crops)
    full = load_onnx_stages(export_dir, threads=1)[0].backend(crops)
    assert np.all(np.isfinite(quantized)) and np.abs(quantized - full).max() < 1.0


def test_cli_export(cascade_file, tmp_path, capsys):
    out = tmp_path / "cli-export"
    assert main(["export", str(cascade_file), "--format", "onnx", "--out", str(out)]) == 0
    assert (out / MANIFEST).is_file() and len(list(out.glob("*.onnx"))) == 2
    assert str(out) in capsys.readouterr().out
    assert main(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x")]) == 2
    assert "missing.pt" in capsys.readouterr().err


def test_bench_predict_smoke(tmp_path, capsys):
    """The benchmark runs end to end and reports every path (its numbers are not checked)."""
    out = tmp_path / "bench.json"
    assert main(["bench", "predict", "--seconds", "0.01", "--batch", "1", "2", "--no-whole-program",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    combos = {(r["path"], r["threads"], r["batch"]) for r in result["rows"]}
    threads = {1, result["threads_all"]}
    paths = {r["path"] for r in result["rows"]}
    assert {"torch-fp32", "onnx-fp32", "onnx-int8", "int8-upright"} <= paths
    assert combos == {(p, t, n) for p in paths for t in threads for n in (1, 2)}
    full = [r for r in result["rows"] if r["path"] != "int8-upright"]
    assert all(len(r["stages"]) == len(result["stages"]) for r in full)
    assert all({"crop_ms", "network_ms", "back_mapping_ms"} <= set(r["stages"][0]) for r in result["rows"])
    assert all(r["roofline_ratio"] > 0 for r in result["rows"])
    assert result["default_path"] in paths and result["fastest_path"] == "int8-upright"
    assert result["default_ms_per_face_1thread"] > 0 and result["fastest_ms_per_face_1thread"] > 0
    assert {(r["precision"], r["threads"]) for r in result["rooflines_gflops"]} >= {("fp32", 1), ("int8", 1)}
    assert set(result["detector_ms_per_640x480"]) == {"default", "yunet"}
    ops = result[f"int8_ops_batch2_{result['threads_all']}threads"]
    assert [o["file"] for o in ops] == sorted(o["file"] for o in ops) and len(ops) == len(result["stages"])
    assert all(abs(sum(o["shares"].values()) - 1) < 0.01 and "QLinearConv" in o["shares"] for o in ops)
    assert all(o["int8_conv_gflops"] > 0 and o["int8_conv_roofline_ratio"] > 0 for o in ops)
    if result["random_init"]:
        assert "not installed" in result["model"]


def test_end_to_end_timing_and_a_mediapipe_python_that_cannot_serve(cascade_file):
    """End to end times the landmarker alone without MediaPipe; a Python that cannot run the
    MediaPipe timing server is named in a clear error."""
    landmarker = Landmarker(cascade_file)
    result = end_to_end(landmarker, photo_640x480(), 0.01, None)
    assert result["end_to_end_ms_640x480"] > 0 and result["mediapipe"] is None
    assert result["end_to_end_breakdown"]["detector_ms"] > 0
    with pytest.raises(RuntimeError, match="serve-timing did not start"):
        end_to_end(landmarker, photo_640x480(), 0.01, "/bin/false")


def test_quantized_conv_flops_count_the_int8_convolutions_only(models, tmp_path):
    """The int8 export's quantised convolutions are every conv but the float first one (and
    the CNN-7's FC layers are not convolutions): their FLOPs lie below the network's."""
    export_onnx(models, tmp_path / "int8", quantize="int8")
    for model, path in zip(models, sorted((tmp_path / "int8").glob("*.onnx"))):
        conv = quantized_conv_gflop(path)
        assert 0 < conv < flops_per_face(model) / 1e9
