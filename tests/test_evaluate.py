"""`wingface evaluate`: the JSON report, the CED plot, both box protocols, bad images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import SYNTHETIC_TEST
from wingface.cli.main import main
from wingface.data.datasets import open_dataset
from wingface.evaluation.run import evaluate, face_labels
from wingface.inference.cascade import Cascade
from wingface.inference.landmarker import Landmarker
from wingface.inference.stages import Stage, TorchBackend
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
    from wingface.data.records import FaceRecord

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


def test_rotated_evaluation_runs(synthetic_300w: Path, tmp_path: Path) -> None:
    out = tmp_path / "rot.json"
    assert main(["evaluate", "--model", "mean-shape", "--data", str(synthetic_300w), "--rotate", "30",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["rotate_deg"] == 30.0
