"""Tests for wingface.models: shapes, cost, mean-shape init, checkpoints, the `info` verb."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wingface.cli.main import main
from wingface.models import (
    ARCHITECTURES, ModelSpec, build_model, count_parameters, create_model, flops_per_face,
    load_checkpoint, save_checkpoint,
)
from wingface.schemes import get_scheme

IBUG = get_scheme("300w-68")
WFLW = get_scheme("wflw-98")


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


def _images(n: int, size: int) -> torch.Tensor:
    """[n, 3, size, size] float32 0..255, deterministic."""
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 255


def _small_cnn(**kwargs) -> torch.nn.Module:
    return create_model("cnn6", IBUG, width=0.25, fc_features=64, **kwargs).eval()


@pytest.mark.parametrize("arch, input_size", [("cnn6", None), ("cnn7", None), ("integral", 64), ("resnet18", 64),
                                              ("resnet50", 64)])
def test_output_shape(arch: str, input_size: int | None) -> None:
    model = create_model(arch, WFLW, input_size=input_size).eval()
    size = model.spec.input_size
    assert size == (input_size or ARCHITECTURES[arch].input_size)
    with torch.inference_mode():
        out = model(_images(2, size))
    assert out.shape == (2, 98, 2) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_default_input_sizes_and_batch_norm() -> None:
    assert {k: (v.input_size, v.batch_norm) for k, v in ARCHITECTURES.items()} == {
        "cnn6": (64, False), "cnn7": (128, False), "integral": (128, True), "resnet18": (256, True),
        "resnet50": (256, True), "mean-shape": (64, False),
    }


@pytest.mark.parametrize("arch, gflop, tolerance", [("cnn6", 0.16, 0.10), ("cnn7", 0.7, 0.20)])
def test_paper_cnn_cost(arch: str, gflop: float, tolerance: float) -> None:
    model = create_model(arch, IBUG)
    assert abs(flops_per_face(model) / 1e9 - gflop) <= tolerance * gflop
    assert model.training  # flops_per_face restores the mode


def test_batch_norm_option_and_parameter_count() -> None:
    plain, bn = create_model("cnn6", IBUG), create_model("cnn6", IBUG, batch_norm=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in bn.modules()) == 5
    assert count_parameters(plain) == 3_806_152  # conv + FC weights and biases, 68 points


def test_resnet_requires_batch_norm_and_zero_inits_last_gamma() -> None:
    with pytest.raises(ValueError, match="batch norm"):
        create_model("resnet18", IBUG, batch_norm=False)
    model = create_model("resnet18", IBUG, input_size=64)
    block = model.trunk.layer1[0]
    assert torch.count_nonzero(block.branch[-1].weight) == 0


def test_mean_shape_init_gives_mean_shape() -> None:
    for arch, unit in [("cnn6", "signed"), ("cnn7", "pixel"), ("resnet18", "unit")]:
        model = create_model(arch, IBUG, input_size=64 if arch == "resnet18" else None, output_unit=unit)
        size = model.spec.input_size
        mean = np.random.default_rng(0).uniform(0.2 * size, 0.8 * size, (68, 2)).astype(np.float32)
        model.set_mean_shape(mean)
        with torch.no_grad():
            pred = model.eval().predict_pixels(_images(3, size))
        assert (pred - torch.from_numpy(mean)).abs().max() < 0.5, arch


def test_set_mean_shape_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"\[68, 2\]"):
        _small_cnn().set_mean_shape(np.zeros((98, 2)))


def test_channels_last_and_inference_mode_match() -> None:
    for model in (_small_cnn(), create_model("resnet18", IBUG, input_size=64, width=0.25).eval()):
        x = _images(2, model.spec.input_size)
        with torch.no_grad():
            ref = model(x)
        fast = model.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = fast(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_normalisation_uses_spec_mean_std() -> None:
    model = _small_cnn()
    x = _images(1, 64)
    torch.testing.assert_close(model.normalize(x), (x - 127.5) / 127.5)
    assert "pixel_mean" not in model.state_dict()  # the spec is the one source


def test_forward_features_and_head_compose() -> None:
    model = _small_cnn()
    x = _images(2, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_export_matches_torch(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    model = _small_cnn()
    x = _images(2, 64)
    path = tmp_path / "m.onnx"
    # The legacy exporter needs no onnxscript; dynamic batch checks there is no shape-dependent code.
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["image"],
                      output_names=["points"], dynamic_axes={"image": {0: "n"}, "points": {0: "n"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x3 = _images(3, 64)
    out = session.run(None, {"image": x3.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x3).numpy(), rtol=1e-4, atol=1e-5)


def test_create_model_errors() -> None:
    with pytest.raises(ValueError, match="did you mean 'cnn6'"):
        create_model("cnn-6", IBUG)
    with pytest.raises(ValueError, match="unknown arch_kwargs.*depth"):
        create_model("cnn6", IBUG, depth=3)
    with pytest.raises(ValueError, match="too small"):
        create_model("cnn7", IBUG, input_size=32)
    with pytest.raises(ValueError, match="output unit"):
        create_model("cnn6", IBUG, output_unit="pixels")


def test_spec_round_trip_and_unknown_keys() -> None:
    spec = create_model("cnn6", WFLW, input_size=96, box_margin=0.3, width=0.5).spec
    data = spec.to_dict()
    assert ModelSpec.from_dict(data) == spec
    assert spec.codec.pixels_per_unit == 48 and spec.num_points == 98
    with pytest.raises(ValueError, match="unknown key.*colour"):
        ModelSpec.from_dict({**data, "colour": "rgb"})
    with pytest.raises(ValueError, match="pixel_std"):
        ModelSpec.from_dict({**data, "pixel_std": [1, 0, 1]})
    assert ModelSpec.from_dict({"arch": "cnn6", "scheme": "300w-68", "input_size": 64}).scheme == IBUG


def test_checkpoint_round_trip(tmp_path) -> None:
    model = create_model("cnn6", WFLW, input_size=80, output_unit="unit", box_margin=0.3,
                         batch_norm=True, width=0.25, fc_features=64)
    model.set_mean_shape(np.full((98, 2), 40.0))
    with torch.no_grad():  # make BN running stats non-trivial
        model.train()(_images(4, 80))
    model.eval()
    extra = {"epoch": 7, "metrics": {"nme": 0.0412}, "optimizer": {"state": {0: {"step": torch.tensor(3.0)}}}}
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, extra)
    loaded = load_checkpoint(path, expect_scheme=WFLW)
    assert loaded.spec == model.spec and not loaded.model.training
    assert loaded.extra["metrics"] == {"nme": 0.0412}
    x = _images(2, 80)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x), rtol=0, atol=0)


def test_half_checkpoint_is_smaller_and_close(tmp_path) -> None:
    model = _small_cnn()
    model.set_mean_shape(np.full((68, 2), 31.5))
    full = save_checkpoint(tmp_path / "full.pt", model)
    half = save_checkpoint(tmp_path / "half.pt", model, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_checkpoint(half).model
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = _images(2, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_pixels(x), model.predict_pixels(x), rtol=0, atol=0.05)


def test_checkpoint_errors(tmp_path) -> None:
    model = _small_cnn()
    good = save_checkpoint(tmp_path / "good.pt", model)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.pt.*unreadable"):
        load_checkpoint(truncated)
    with pytest.raises(ValueError, match="was trained for scheme '300w-68' \\(68 points\\), expected 'wflw-98'"):
        load_checkpoint(good, expect_scheme=WFLW)

    payload = torch.load(good, weights_only=True)
    cases = {
        "foreign.pt": ({"state_dict": payload["state_dict"]}, "not a wingface checkpoint"),
        "newer.pt": ({**payload, "version": 99}, "version 99 is newer"),
        "mismatch.pt": ({**payload, "spec": {**payload["spec"], "arch_kwargs": {"width": 0.5}}}, "do not match"),
    }
    for name, (data, message) in cases.items():
        torch.save(data, tmp_path / name)
        with pytest.raises(ValueError, match=f"{name}.*{message}"):
            load_checkpoint(tmp_path / name)


def test_checkpoint_rejects_non_plain_extra_and_keeps_old_file(tmp_path) -> None:
    model = _small_cnn()
    path = save_checkpoint(tmp_path / "m.pt", model, {"epoch": 1})
    with pytest.raises(TypeError, match=r"extra\['nme'\].*float64"):
        save_checkpoint(path, model, {"nme": np.float64(0.1)})
    assert load_checkpoint(path).extra == {"epoch": 1}


def test_build_model_from_spec() -> None:
    spec = _small_cnn().spec
    assert build_model(spec).spec == spec


def test_info_verb(tmp_path, capsys) -> None:
    assert main(["info", "cnn6"]) == 0
    out = capsys.readouterr().out
    assert "cnn6" in out and "300w-68" in out and "0.163" in out
    path = save_checkpoint(tmp_path / "m.pt", _small_cnn(), {"epoch": 12, "metrics": {"nme_io": 0.05}})
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "epoch" in out and "12" in out and "metrics.nme_io" in out and "width" in out
    assert main(["info", "resnet5"]) == 2
    assert "did you mean 'resnet50'" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "nope.pt")]) == 2


def test_info_describes_each_stage_of_a_cascade(tmp_path, capsys) -> None:
    from wingface.cli.main import main
    from wingface.models import save_cascade

    first = create_model("cnn6", IBUG)
    second = create_model("mean-shape", IBUG, crop="aligned", reference=np.zeros((68, 2)) + np.arange(68)[:, None])
    path = save_cascade(tmp_path / "cascade.pt", [first, second])
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "stage 1 of 2" in out and "stage 2 of 2" in out and "aligned" in out


def test_head_dropout_trains_noisy_evaluates_exact_and_round_trips(tmp_path) -> None:
    model = _small_cnn(dropout=0.5)
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.head) == 2
    x = _images(2, 64)
    with torch.no_grad():
        eval_out = model(x)
        assert not torch.equal(model.train()(x), eval_out)  # dropout is active while training
        model.eval()
        loaded = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model, {}))
        assert loaded.spec.arch_kwargs["dropout"] == 0.5
        torch.testing.assert_close(loaded.model(x), eval_out, rtol=0, atol=0)
    assert not any(isinstance(m, torch.nn.Dropout) for m in _small_cnn().head)  # the paper's head by default
    with pytest.raises(ValueError, match="dropout"):
        _small_cnn(dropout=1.0)


def test_with_input_size_moves_an_integral_network_to_another_crop_size() -> None:
    from wingface.models import with_input_size

    model = create_model("integral", get_scheme("300w-68"), input_size=64, width=0.25).eval()
    assert with_input_size(model, 64) is model
    smaller = with_input_size(model, 32).eval()
    assert smaller.spec.input_size == 32 and smaller.moment_basis.shape[0] == 8 * 8
    with torch.no_grad():
        assert smaller.predict_pixels(torch.rand(1, 3, 32, 32) * 255).shape == (1, 68, 2)
    with pytest.raises(ValueError, match="64-px crops only"):
        with_input_size(create_model("cnn6", get_scheme("300w-68")), 32)
