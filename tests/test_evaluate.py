"""`wingface evaluate`: the JSON report, the CED plot, both box protocols, bad images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import SYNTHETIC_TEST
from wingface.cli.main import main
from wingface.data.datasets import open_dataset
from wingface.data.pdb import pose_projection, project_on
from wingface.data.records import FaceRecord
from wingface.data.synthetic import synthetic_shape
from wingface.evaluation.run import POSE_BINS, Evaluation, evaluate, face_labels
from wingface.geometry import apply_affine, rotation_about
from wingface.inference.cascade import Cascade
from wingface.inference.landmarker import Landmarker
from wingface.inference.stages import Stage
from wingface.inference.torch_backend import TorchBackend
from wingface.schemes import get_scheme
from wingface.training.baseline import fit_mean_shape

REQUIRED_KEYS = {"faces", "nme_inter_ocular", "nme_inter_pupil", "fr_10", "auc_10", "per_face", "subsets"}


def _baseline(root: Path) -> Landmarker:
    reader = open_dataset(root)
    train = reader.read("300w-train").records
    model = fit_mean_shape(np.stack([r.points for r in train]), reader.scheme)
    return Landmarker(Cascade([Stage(model.spec, TorchBackend(model))]), detector=None)


def test_mean_shape_report_has_the_paper_figures(synthetic_300w: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "mean.json"
    code = main(["evaluate", "--model", "mean-shape", "--data", str(synthetic_300w), "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert REQUIRED_KEYS <= set(report)
    assert report["faces"] == SYNTHETIC_TEST and report["split"] == "300w-common"
    assert len(report["per_face"]) == SYNTHETIC_TEST
    assert 0 < report["nme_inter_ocular"] < report["nme_inter_pupil"]  # pupils are closer than outer corners
    assert {"helen/testset", "lfpw/testset"} & set(report["subsets"]["inter_ocular"])
    groups = report["groups"]
    assert groups["normaliser"] == "inter_ocular" and {"jaw", "nose", "left_eye", "inner_mouth"} <= set(groups["nme"])
    assert all(value > 0 for value in groups["nme"].values())
    assert out.with_suffix(".ced.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "inter-ocular" in printed and "inter-pupil" in printed and "by landmark group" in printed
    pose = report["pose"]  # bins from the 300w-train split's pose component
    assert pose["component"] == 0 and len(pose["edges"]) == POSE_BINS + 1
    assert sum(b["n"] for b in pose["bins"]) == SYNTHETIC_TEST
    assert "by pose" in printed and printed.count(" - ") >= POSE_BINS


def test_perfect_predictions_score_zero(synthetic_300w: Path) -> None:
    records = open_dataset(synthetic_300w).read("300w-common").records

    class Oracle:
        scheme = open_dataset(synthetic_300w).scheme

        def predict_batch(self, images, boxes):
            return [[type("F", (), {"points": r.points.astype(float), "box": b[0]})()] for r, b in zip(batch, boxes)]

    batch = records
    result = evaluate(Oracle(), records, progress=False, batch_images=len(records))
    assert np.allclose(result.errors("inter_ocular"), 0)
    assert result.report()["fr_10"] == 0 and result.report()["auc_10"] == pytest.approx(1.0)


def test_corrupt_image_is_reported_and_the_rest_evaluated(synthetic_300w_copy: Path, tmp_path: Path) -> None:
    victim = sorted((synthetic_300w_copy / "helen" / "testset").glob("*.png"))[0]
    victim.write_bytes(b"not an image")
    out = tmp_path / "report.json"
    code = main(["evaluate", "--model", "mean-shape", "--data", str(synthetic_300w_copy), "--json", str(out)])
    report = json.loads(out.read_text())
    assert code == 1  # something failed: non-zero, but the report is complete for the rest
    assert report["failed"] == 1 and report["faces"] == SYNTHETIC_TEST - 1
    assert victim.name in report["failed_images"][0]["image"]


def test_detector_protocol_counts_misses(synthetic_300w: Path) -> None:
    lm = _baseline(synthetic_300w)

    class NoFaces:
        def detect(self, image):
            return []

    lm._detector = NoFaces()
    records = open_dataset(synthetic_300w).read("300w-common").records
    result = evaluate(lm, records, boxes="detector", progress=False)
    report = result.report()
    assert report["missed"] == SYNTHETIC_TEST and report["faces"] == 0
    assert len(report["missed_faces"]) == SYNTHETIC_TEST


def test_unknown_box_protocol(synthetic_300w: Path) -> None:
    with pytest.raises(ValueError, match="boxes"):
        evaluate(_baseline(synthetic_300w), [], boxes="oracle")


def test_attribute_flags_become_breakdown_labels() -> None:
    rec = FaceRecord(Path("a.jpg"), np.zeros((68, 2), np.float32), subset="wflw-test",
                     attributes={"pose": 1, "blur": 0, "occluded": np.zeros(68, bool), "index": 3})
    assert face_labels(rec) == ["wflw-test", "pose"]


def test_rotated_images_keep_points_on_their_pixels() -> None:
    from wingface.evaluation.run import rotate_face

    image = np.zeros((40, 60, 3), np.uint8)
    image[10, 20] = 255
    rotated, points = rotate_face(image, np.array([[20.0, 10.0]], np.float32), 30.0)
    y, x = np.unravel_index(rotated[..., 0].astype(float).argmax(), rotated.shape[:2])
    assert abs(x - points[0, 0]) <= 1 and abs(y - points[0, 1]) <= 1
    assert rotated.shape[0] >= 40 and rotated.shape[1] >= 60


@pytest.mark.parametrize("k", [1, 2, -1])
def test_quarter_and_half_turns_match_rot90_and_round_trip(k: int) -> None:
    from wingface.evaluation.run import rotate_face

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)
    points = np.array([[3.0, 4.0], [40.0, 25.0], [17.5, 9.25]], np.float32)
    rotated, moved = rotate_face(image, points, 90.0 * k)
    np.testing.assert_array_equal(rotated, np.rot90(image, k))  # exact: quarter turns move whole pixels
    back, again = rotate_face(rotated, moved, -90.0 * k)
    np.testing.assert_array_equal(back, image)
    np.testing.assert_allclose(again, points, atol=1e-4)


def test_rotated_evaluation_runs(synthetic_300w: Path, tmp_path: Path) -> None:
    out = tmp_path / "rot.json"
    assert main(["evaluate", "--model", "mean-shape", "--data", str(synthetic_300w), "--rotate", "30",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["rotate_deg"] == 30.0


def _posed_shapes(yaws, seed: int, scale: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([synthetic_shape("300w-68", rng, yaw=y, jitter=0.01) * scale + 200 for y in yaws])


def test_projecting_the_training_shapes_gives_back_their_projections() -> None:
    train = _posed_shapes(np.linspace(-50, 50, 40), seed=1)
    train[3, 10] = np.nan  # a missing point sits at the reference's position, as in the PCA
    analysis = pose_projection(train, get_scheme("300w-68"))
    np.testing.assert_allclose(project_on(analysis, train), analysis.projections, atol=1e-12)
    # Alignment removes position, scale and roll: a moved copy projects the same.
    moved = apply_affine(rotation_about(np.zeros(2), 0.4, 1.7), train[:5]) + [30.0, -12.0]  # NaN stays NaN
    np.testing.assert_allclose(project_on(analysis, moved), analysis.projections[:5], atol=1e-9)
    with pytest.raises(ValueError, match="shapes"):
        project_on(analysis, train[:, :60])


def _evaluation(yaws) -> Evaluation:
    scheme = get_scheme("300w-68")
    points = _posed_shapes(yaws, seed=2).astype(np.float32)
    records = [FaceRecord(Path(f"face{i}.png"), p, subset="test") for i, p in enumerate(points)]
    noise = np.random.default_rng(3).normal(0, 1.0, points.shape)
    return Evaluation(scheme, records, list(points + noise))


def test_pose_breakdown_bins_every_face_at_training_quintiles() -> None:
    analysis = pose_projection(_posed_shapes(np.linspace(-40, 40, 50), seed=1), get_scheme("300w-68"))
    yaws = [0.0, 2.0, -5.0, 15.0, -25.0, 35.0, 60.0, -70.0]  # 60 and 70 lie beyond the training range
    result = _evaluation(yaws)
    report = result.report(analysis, split="test")
    assert json.loads(json.dumps(report, allow_nan=False))["pose"] == report["pose"]
    pose = report["pose"]
    assert pose["component"] == analysis.index
    edges = np.array(pose["edges"])
    assert len(edges) == POSE_BINS + 1 and edges[0] == 0.0 and np.all(np.diff(edges) > 0)
    assert edges[-1] == pytest.approx(np.abs(analysis.projections).max())
    # Quintiles: each bin holds a fifth of the training faces.
    train_bins = np.searchsorted(edges[1:-1], np.abs(analysis.projections), side="right")
    assert np.bincount(train_bins, minlength=POSE_BINS).tolist() == [10] * POSE_BINS
    bins = pose["bins"]
    assert [b["range"] for b in bins] == [[lo, hi] for lo, hi in zip(pose["edges"], pose["edges"][1:])]
    assert sum(b["n"] for b in bins) == len(yaws) == report["faces"]
    assert bins[0]["n"] >= 1 and bins[-1]["n"] >= 2  # frontal faces first; the extreme yaws last
    for b in bins:
        assert set(b) == {"range", "n", "nme_inter_ocular", "nme_inter_pupil", "fr_10"}
        assert (b["nme_inter_ocular"] is None) == (b["n"] == 0)
    # The per-bin NMEs are the per-face errors of the faces in each bin.
    total = sum(b["n"] * b["nme_inter_ocular"] for b in bins if b["n"])
    assert total / len(yaws) == pytest.approx(report["nme_inter_ocular"])


def test_report_without_pose_analysis_has_no_pose_section(capsys) -> None:
    from wingface.cli.evaluate import _print_table

    result = _evaluation([0.0, 20.0])
    report = result.report(label="x", split="test", boxes="gt")
    assert report["pose"] is None
    _print_table(report)
    assert "by pose" not in capsys.readouterr().out
    analysis = pose_projection(_posed_shapes(np.linspace(-40, 40, 20), seed=1), get_scheme("300w-68"))
    _print_table(result.report(analysis, label="x", split="test", boxes="gt"))
    printed = capsys.readouterr().out
    assert "by pose (|projection| on PC 1" in printed and printed.count("       -") >= 3  # empty bins
