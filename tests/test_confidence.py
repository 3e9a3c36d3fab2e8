"""The error head and the confidences built on it: the head never moves the points, trains
(alone or beside them), exports to ONNX, and every `Face` carries confidences in [0, 1]
that filter, serialise and draw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import wingface.training.trainer as trainer_module
from wingface.bench.predict_speed import random_cascade
from wingface.config import load_config
from wingface.data.images import read_image
from wingface.export import export_onnx
from wingface.inference.drawing import draw_faces
from wingface.inference.landmarker import Landmarker
from wingface.inference.results import Face, confidences
from wingface.losses import laplace_nll
from wingface.models import create_model, load_checkpoint, load_stages, save_cascade, save_checkpoint
from wingface.schemes import get_scheme
from wingface.training.config import TrainConfig
from wingface.training.trainer import Trainer

SCHEME = get_scheme("300w-68")
ASTRONAUT_FACE = [178.0, 70.0, 270.0, 176.0]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(trainer_module.RunLog, "_write", lambda self: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _crops(n: int, size: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 255


@pytest.fixture(scope="module")
def uncertain_cascade(tmp_path_factory) -> Path:
    """The random test cascade with an error head on stage 2 whose errors depend on the pixels."""
    first, second = random_cascade(seed=0)
    second.attach_error_head()
    torch.nn.init.normal_(second.error_head[-1].weight, std=0.05)
    return save_cascade(tmp_path_factory.mktemp("model") / "uncertain.pt", [first, second])


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from importlib import resources

    return read_image(resources.files("wingface") / "assets" / "astronaut.jpg")


# ------------------------------------------------------------------------- the error head


def test_attaching_the_head_changes_no_point_and_adds_an_error_column() -> None:
    model = create_model("cnn6", SCHEME, input_size=32).eval()
    x = _crops(3, 32)
    with torch.inference_mode():
        before = model.predict_with_error(x)
        model.attach_error_head()
        after = model.predict_with_error(x)
    assert before.shape == (3, 68, 2) and after.shape == (3, 68, 3) and model.spec.uncertainty
    assert torch.equal(after[..., :2], before)
    assert torch.allclose(after[..., 2], torch.full((3, 68), 2.0))  # starts at 2 px everywhere


def test_the_error_loss_reaches_only_the_error_head() -> None:
    model = create_model("cnn6", SCHEME, input_size=32)
    model.attach_error_head()
    points, log_error = model(_crops(2, 32), with_error=True)
    laplace_nll(log_error, torch.rand(2, 68) * 5).backward()
    for name, param in model.named_parameters():
        assert (param.grad is not None) == name.startswith("error_head."), name


def test_laplace_nll_is_smallest_at_the_mean_error() -> None:
    distance = torch.tensor([[1.0, 3.0, 2.0, 6.0]])
    scores = {b: float(laplace_nll(torch.full((1, 4), float(np.log(b))), distance)) for b in (1.0, 3.0, 9.0)}
    assert scores[3.0] < scores[1.0] and scores[3.0] < scores[9.0]
    masked = laplace_nll(torch.zeros(1, 4), distance, torch.tensor([[True, False, False, False]]))
    assert float(masked) == pytest.approx(1.0)  # log 1 + 1 / 1 on the one visible point


def test_checkpoint_keeps_the_head(tmp_path: Path) -> None:
    model = create_model("cnn6", SCHEME, input_size=32).eval()
    model.attach_error_head()
    torch.nn.init.normal_(model.error_head[-1].weight, std=0.1)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model)).model.eval()
    x = _crops(2, 32)
    with torch.inference_mode():
        assert loaded.spec.uncertainty and torch.equal(loaded.predict_with_error(x), model.predict_with_error(x))


def test_onnx_export_carries_the_error_column(uncertain_cascade: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    manifest = export_onnx(uncertain_cascade, tmp_path / "onnx")
    torch_faces = Landmarker(uncertain_cascade, detector=None).predict(_face_image(), boxes=[[20, 20, 100, 100]])
    onnx_faces = Landmarker(manifest.parent, detector=None).predict(_face_image(), boxes=[[20, 20, 100, 100]])
    np.testing.assert_allclose(onnx_faces[0].points, torch_faces[0].points, atol=0.05)
    np.testing.assert_allclose(onnx_faces[0].point_confidence, torch_faces[0].point_confidence, atol=1e-3)


def _face_image() -> np.ndarray:
    from wingface.data.synthetic import synthetic_faces

    return synthetic_faces(1, SCHEME, image_size=128, seed=3)[0].image


# ------------------------------------------------------------------------------- training


def _config(cache: Path, out: Path, *extra: str) -> TrainConfig:
    base = ("epochs=1", "batch_size=8", "threads=1", "device=cpu", "model.input_size=32", "pdb.enabled=false",
            "val_fraction=0.2", "precision=fp32")
    return load_config(TrainConfig, None, [f"data={cache}", f"out={out}", *base, *extra])


def test_training_with_the_head_logs_its_figures(synthetic_cache: Path, tmp_path: Path) -> None:
    trainer = Trainer(_config(synthetic_cache, tmp_path / "run", "model.uncertainty=true", "max_steps=3"),
                      progress=False)
    trainer.fit()
    row = trainer.log.rows[-1]
    assert np.isfinite(float(row["val_error_nll"])) and -1 <= float(row["val_error_rho"]) <= 1
    assert load_checkpoint(tmp_path / "run" / "best.pt").model.spec.uncertainty


@pytest.mark.parametrize("arch", ["cnn6", "integral"])  # integral: batch norm, whose statistics must not move
def test_freeze_points_trains_the_head_alone(synthetic_cache: Path, tmp_path: Path, arch: str) -> None:
    base = create_model(arch, SCHEME, input_size=32, **({"width": 0.25} if arch == "integral" else {}))
    init = save_checkpoint(tmp_path / "init.pt", base)
    trainer = Trainer(_config(synthetic_cache, tmp_path / "run", f"model.init={init}", "model.uncertainty=true",
                              "model.freeze_points=true", "max_steps=3"), progress=False)
    trainer.fit()
    trained = trainer.model.state_dict()
    for name, value in base.state_dict().items():
        assert torch.equal(trained[name], value), name
    assert trained["error_head.2.weight"].abs().sum() > 0  # it starts at zero


def test_freeze_points_needs_a_model_and_the_head(synthetic_cache: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="freeze_points.*model.init"):
        Trainer(_config(synthetic_cache, tmp_path / "run", "model.freeze_points=true"), progress=False)


# ---------------------------------------------------------------------------- confidences


def test_confidence_falls_as_the_expected_error_grows() -> None:
    points = np.zeros((68, 2))
    points[36], points[45] = (0.0, 0.0), (100.0, 0.0)  # outer eye corners: D = 100 px
    errors = np.linspace(0.5, 60.0, 68)
    face, per_point = confidences(points, errors, SCHEME)
    assert np.all(np.diff(per_point) < 0) and np.all((per_point > 0) & (per_point < 1))
    assert per_point[0] == pytest.approx(1 - np.exp(-10 / 0.5))  # within 10% of D, under the Laplace model
    assert face == pytest.approx(1 - np.exp(-0.1 / (errors.mean() / 100)))
    worse, _ = confidences(points, errors * 3, SCHEME)
    assert 0 < worse < face < 1
    none, nan_points = confidences(points, None, SCHEME)
    assert np.isnan(none) and np.isnan(nan_points).all()


def test_faces_carry_confidences_and_min_confidence_filters_monotonically(uncertain_cascade: Path,
                                                                          astronaut: np.ndarray) -> None:
    lm = Landmarker(uncertain_cascade, detector=None)
    boxes = [ASTRONAUT_FACE, [0, 0, 60, 60], [100, 200, 300, 400], [250, 10, 400, 160]]
    faces = lm.predict(astronaut, boxes=boxes)
    values = np.array([f.confidence for f in faces])
    assert np.all((values >= 0) & (values <= 1))
    for f in faces:
        assert f.point_confidence.shape == (68,) and np.all((f.point_confidence >= 0) & (f.point_confidence <= 1))
    kept = [len(lm.predict(astronaut, boxes=boxes, min_confidence=t)) for t in (0.0, *np.sort(values), 1.0)]
    assert kept[0] == 4 and kept == sorted(kept, reverse=True)
    threshold = float(np.median(values))
    assert all(f.confidence >= threshold for f in lm.predict(astronaut, boxes=boxes, min_confidence=threshold))
    with pytest.raises(ValueError, match="min_confidence"):
        lm.predict(astronaut, boxes=boxes, min_confidence=1.5)


def test_models_without_a_head_give_nan_and_min_confidence_drops_them(tmp_path: Path, astronaut) -> None:
    lm = Landmarker(save_cascade(tmp_path / "plain.pt", random_cascade(seed=0)), detector=None)
    face = lm.predict(astronaut, boxes=[ASTRONAUT_FACE])[0]
    assert np.isnan(face.confidence) and np.isnan(face.point_confidence).all()
    record = face.to_dict()
    assert record["confidence"] is None and record["point_confidence"] == [None] * 68
    assert lm.predict(astronaut, boxes=[ASTRONAUT_FACE], min_confidence=0.0) == []


def test_to_dict_has_the_confidences(uncertain_cascade: Path, astronaut) -> None:
    face = Landmarker(uncertain_cascade, detector=None).predict(astronaut, boxes=[ASTRONAUT_FACE])[0]
    record = face.to_dict()
    assert record["confidence"] == pytest.approx(face.confidence, abs=1e-4)
    assert len(record["point_confidence"]) == 68 and all(0 <= c <= 1 for c in record["point_confidence"])


def test_low_confidence_points_are_drawn_as_red_rings() -> None:
    image = np.zeros((120, 120, 3), np.uint8)
    points = np.array([[30.0, 30.0], [90.0, 90.0]])
    face = Face(points, np.array([5.0, 5.0, 115.0, 115.0]), 1.0, confidence=0.9,
                point_confidence=np.array([0.95, 0.1]))
    out = draw_faces(image, [face], radius=4, lines=False)
    assert tuple(out[30, 30]) == (0, 255, 0)  # a confident point: a filled green dot
    assert tuple(out[90, 90]) == (0, 0, 0)  # a doubtful one: a ring, hollow ...
    ring = out[84:97, 84:97].reshape(-1, 3)
    assert np.any((ring[:, 0] > 200) & (ring[:, 1] < 100))  # ... and red
    low = draw_faces(image, [Face(points, face.box, 1.0, confidence=0.2)], radius=4, lines=False)
    assert tuple(low[5, 60]) != tuple(out[5, 60])  # a doubtful face's box changes colour


# ---------------------------------------------------------------- scoring and calibration


def test_confidence_scores_rank_and_drop() -> None:
    from wingface.evaluation.run import confidence_scores

    errors = np.linspace(0.01, 0.2, 40)  # the last 21 faces fail (> 10%)
    confidence = 1 - errors  # perfectly informative
    points = np.stack([errors] * 3, axis=1)
    scores = confidence_scores(confidence, errors, 1 - points, points)
    assert scores["face_rank_correlation"] == pytest.approx(1.0)
    assert scores["point_rank_correlation"] > 0.99 and scores["failures"] == int((errors > 0.1).sum())
    five = scores["dropping_least_confident"]["5%"]
    assert five["failures_removed"] == pytest.approx(2 / scores["failures"])  # 2 of 40 dropped, both failures
    assert five["nme"] < scores["dropping_least_confident"]["0%"]["nme"]
    blind = confidence_scores(np.full(40, 0.5), errors, np.full((40, 3), 0.5), points)
    assert np.isnan(blind["face_rank_correlation"]) and np.isnan(blind["point_rank_correlation"])


def test_rescaling_the_head_scales_every_expected_error() -> None:
    from wingface.evaluation.calibration import rescale_error_head

    model = create_model("cnn6", SCHEME, input_size=32).eval()
    model.attach_error_head()
    torch.nn.init.normal_(model.error_head[-1].weight, std=0.1)
    x = _crops(2, 32)
    with torch.inference_mode():
        before = model.predict_with_error(x)
        rescale_error_head(model, 0.25)
        after = model.predict_with_error(x)
    assert torch.equal(after[..., :2], before[..., :2])
    torch.testing.assert_close(after[..., 2], before[..., 2] * 0.25)
    with pytest.raises(ValueError, match="scale"):
        rescale_error_head(model, 0.0)
    with pytest.raises(ValueError, match="no error head"):
        rescale_error_head(create_model("cnn6", SCHEME, input_size=32), 2.0)


def test_the_blend_scale_calibrates_the_blend() -> None:
    from wingface.evaluation.calibration import blend_scale

    from wingface.inference.cascade import DISAGREEMENT_SHARE

    rng = np.random.default_rng(0)
    observed, predicted, spread = (rng.uniform(0.5, 4.0, 200) for _ in range(3))
    k = blend_scale(observed, predicted, spread)
    share = DISAGREEMENT_SHARE
    assert np.mean(observed / ((1 - share) * k * predicted + share * spread)) == pytest.approx(1.0, rel=1e-9)
    assert blend_scale(observed, predicted, np.zeros_like(spread)) == pytest.approx(
        np.mean(observed / predicted) / (1 - share))  # no disagreement: the mean ratio, for the head's share
    with pytest.raises(ValueError, match="disagreement"):
        blend_scale(observed, predicted, observed * 10)


def test_calibrate_cli_matches_the_observed_errors(uncertain_cascade: Path, synthetic_cache: Path,
                                                   tmp_path: Path) -> None:
    import json

    from wingface.cli.main import main
    from wingface.data.cache import load_cache
    from wingface.evaluation.calibration import error_scale
    from wingface.inference.cascade import Cascade
    from wingface.inference.stages import Stage
    from wingface.inference.torch_backend import TorchBackend
    from wingface.training.pipeline import split_train_val

    out = tmp_path / "calibrated.pt"
    assert main(["cascade", "calibrate", str(uncertain_cascade), "--data", str(synthetic_cache), "--out", str(out),
                 "--json", str(tmp_path / "cal.json")]) == 0
    assert json.loads((tmp_path / "cal.json").read_text())["faces"] > 0
    cache = load_cache(synthetic_cache)
    _, val = split_train_val(len(cache), 0.1, 0)
    models = [m.model for m in load_stages(out)]
    again = error_scale(Cascade([Stage(m.spec, TorchBackend(m)) for m in models]),
                        [cache.images[i] for i in val], [cache.points[i] for i in val])
    assert again["scale"] == pytest.approx(1.0, rel=1e-3)  # calibrated: mean(observed / expected) = 1


def test_calibrate_against_a_twin_takes_the_twins_errors(uncertain_cascade: Path, synthetic_cache: Path,
                                                         tmp_path: Path) -> None:
    import json

    from wingface.cli.main import main

    def calibrate(name: str, *twin: str) -> dict:
        out = tmp_path / f"{name}.json"
        assert main(["cascade", "calibrate", str(uncertain_cascade), "--data", str(synthetic_cache), *twin,
                     "--out", str(tmp_path / f"{name}.pt"), "--json", str(out)]) == 0
        return json.loads(out.read_text())

    own = calibrate("own")
    assert own["twin"] is None
    assert calibrate("same", "--twin", str(uncertain_cascade)) == {**own, "twin": str(uncertain_cascade)}
    other = save_cascade(tmp_path / "other.pt", random_cascade(seed=1, weight_scale=0.2))
    twin = calibrate("twin", "--twin", str(other))
    assert twin["observed_px"] != pytest.approx(own["observed_px"])  # the twin's errors stand in
    assert twin["predicted_px"] == pytest.approx(own["predicted_px"])  # the model's own expectations


def test_evaluate_reports_and_plots_the_confidence(uncertain_cascade: Path, synthetic_300w: Path, tmp_path: Path,
                                                   capsys) -> None:
    import json

    from wingface.cli.main import main

    out = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(uncertain_cascade), "--data", str(synthetic_300w), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    scores = report["confidence"]
    assert {"face_rank_correlation", "point_rank_correlation", "failures", "dropping_least_confident"} <= set(scores)
    assert set(scores["dropping_least_confident"]) == {"0%", "5%", "10%", "20%"}
    assert all(0 <= f["confidence"] <= 1 for f in report["per_face"])
    assert out.with_suffix(".confidence.png").is_file()
    assert "confidence: rank correlation with error" in capsys.readouterr().out
