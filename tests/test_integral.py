"""Tests for the integral (soft-argmax) regressor: readout geometry, error head, precision, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wingface.models import create_model, load_checkpoint, save_checkpoint
from wingface.schemes import get_scheme

IBUG = get_scheme("300w-68")


def _model(**kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("integral", IBUG, input_size=64, width=0.25, **kwargs).eval()


def _images(n: int, size: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 255


def test_a_peaked_map_reads_out_its_cell_centre_in_crop_pixels() -> None:
    model = _model()
    cells = model.moment_basis.shape[0]  # 64 px input -> 16 x 16 maps of 4 px cells
    assert cells == 16 * 16
    prob = torch.zeros(1, 68, cells)
    prob[0, :, 5 * 16 + 11] = 1.0  # row 5 (y), column 11 (x)
    points = model.moments(prob)[..., :2]
    torch.testing.assert_close(points[0, 0], torch.tensor([11 * 4 + 1.5, 5 * 4 + 1.5]))


def test_untrained_points_start_mid_crop_and_mean_shape_is_ignored() -> None:
    model = _model()
    model.set_mean_shape(np.full((68, 2), 3.0))
    with torch.no_grad():
        points = model.predict_pixels(_images(2))
    np.testing.assert_allclose(points.numpy(), 31.5, atol=0.5)


def test_error_head_reads_detached_spreads_and_round_trips(tmp_path) -> None:
    model = _model()
    model.attach_error_head()
    points, log_error = model.train()(_images(2), with_error=True)
    assert points.shape == (2, 68, 2) and log_error.shape == (2, 68)
    log_error.sum().backward()  # the error head's loss must not move the points' weights
    assert model.heatmaps.weight.grad is None or not model.heatmaps.weight.grad.any()
    model.eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model, {}))
    x = _images(3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.predict_with_error(x), model.predict_with_error(x))
        assert (model.predict_with_error(x)[..., 2] > 0).all()


def test_bf16_autocast_keeps_the_readout_in_float32() -> None:
    model = _model()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(_images(2))
    assert out.dtype == torch.float32
    with torch.no_grad():
        np.testing.assert_allclose(out.numpy(), model(_images(2)).numpy(), atol=0.05)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_export_matches_torch(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    model = _model()
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (_images(2),), str(path), dynamo=False, input_names=["image"],
                      output_names=["points"], dynamic_axes={"image": {0: "n"}, "points": {0: "n"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _images(3)
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_input_size_must_divide_into_the_encoder_levels() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        create_model("integral", IBUG, input_size=80)
