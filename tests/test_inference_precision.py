"""Inference precision: fp32, bf16, int8 and auto give the same landmarks within a stated
tolerance, the default path runs on onnxruntime without importing torch, and impossible
requests fail clearly."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

from wingface.bench.predict_speed import ASTRONAUT_FACE, random_cascade
from wingface.cli.main import main
from wingface.inference.landmarker import Landmarker, default_model_path
from wingface.inference.torch_backend import TorchBackend

# Points of any precision stay within this many pixels of fp32 on the bundled photo, whose
# outer-eye-corner distance is 58 px (1.5 px: 2.6% of it). Measured on the shipped model:
# bf16 0.04 px mean, 0.11 px max; int8 0.28 px mean, 0.79 px max.
TOLERANCE_PX = 1.5
SHIPPED = default_model_path().is_file() and default_model_path("int8").is_dir()
needs_shipped = pytest.mark.skipif(not SHIPPED, reason="the shipped model and its int8 export are not installed")


def photo_path():
    return resources.files("wingface").joinpath("assets", "astronaut.jpg")


@pytest.fixture(scope="module")
def fp32_points():
    return Landmarker(precision="fp32", detector=None).predict(str(photo_path()), [ASTRONAUT_FACE])[0].points


@needs_shipped
@pytest.mark.parametrize("precision", ["bf16", "int8", "auto"])
def test_every_precision_stays_close_to_fp32(precision, fp32_points):
    landmarker = Landmarker(precision=precision, detector=None)
    points = landmarker.predict(str(photo_path()), [ASTRONAUT_FACE])[0].points
    error = np.linalg.norm(points - fp32_points, axis=-1)
    assert error.mean() < TOLERANCE_PX / 2 and error.max() < 3 * TOLERANCE_PX
    assert landmarker.precision in ("fp32", "bf16", "int8")


@needs_shipped
def test_auto_runs_the_shipped_int8_export_and_fp32_the_pt_file():
    assert Landmarker(detector=None).precision == "int8"
    assert Landmarker(detector=None).model_path == default_model_path("int8")
    fp32 = Landmarker(precision="fp32", detector=None)
    assert fp32.precision == "fp32" and fp32.model_path == default_model_path()
    assert Landmarker(backend="torch", detector=None).precision == "fp32"


@needs_shipped
def test_the_default_path_never_imports_torch():
    script = ("import sys; from wingface import Landmarker; lm = Landmarker(threads=1); "
              f"faces = lm.predict({str(photo_path())!r}); "
              "import json; print(json.dumps([len(faces), lm.precision, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [1, "int8", False]


@needs_shipped
def test_skipping_the_orientation_stage_keeps_upright_results():
    """An upright face goes from the orientation stage straight to stage 2: the fast mode,
    stage 2 alone, reads it the same."""
    full = Landmarker(precision="int8", detector=None)
    fast = Landmarker(precision="int8", detector=None, orientation=False)
    assert [s.spec.arch for s in fast.cascade.stages] == ["integral"] and len(full.cascade.stages) == 3
    a = full.predict(str(photo_path()), [ASTRONAUT_FACE])[0].points
    b = fast.predict(str(photo_path()), [ASTRONAUT_FACE])[0].points
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_bf16_falls_back_to_fp32_with_one_log_line(monkeypatch, caplog):
    import wingface.models.precision as precision

    monkeypatch.setattr(precision.torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(precision.torch.cpu, "_is_amx_tile_supported", lambda: False)
    with caplog.at_level(logging.WARNING, logger="wingface.models.precision"):
        backend = TorchBackend(random_cascade()[0], precision="bf16")
    assert backend.precision == "fp32"
    assert len([r for r in caplog.records if "no native bfloat16" in r.getMessage()]) == 1


def test_bf16_on_pytorch_matches_fp32_on_random_networks():
    model = random_cascade()[0]
    crops = np.random.default_rng(0).uniform(0, 255, (4, 3, 64, 64)).astype(np.float32)
    fp32 = TorchBackend(model)(crops)
    bf16 = TorchBackend(model, precision="bf16")(crops)
    np.testing.assert_allclose(bf16, fp32, atol=TOLERANCE_PX)


def test_impossible_precisions_say_how(tmp_path):
    from wingface.models import save_cascade

    pt = tmp_path / "cascade.pt"
    save_cascade(pt, random_cascade())
    with pytest.raises(ValueError, match="wingface export .* --quantize int8"):
        Landmarker(pt, precision="int8", detector=None)
    with pytest.raises(ValueError, match="precision"):
        Landmarker(pt, precision="fp16", detector=None)
    from wingface.export import export_onnx

    export_onnx(random_cascade(), tmp_path / "float")
    with pytest.raises(ValueError, match="fp32 ONNX export cannot run at precision 'int8'"):
        Landmarker(tmp_path / "float", precision="int8", detector=None)
    assert Landmarker(tmp_path / "float", precision="fp32", detector=None).precision == "fp32"


@needs_shipped
@pytest.mark.parametrize("flags", [["--precision", "bf16"], ["--precision", "int8", "--no-orientation"]])
def test_cli_predict_takes_a_precision(tmp_path, flags):
    assert main(["predict", str(photo_path()), "--out", str(tmp_path), "--threads", "1", *flags]) == 0
    assert list(tmp_path.iterdir())
