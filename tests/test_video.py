"""Video: One Euro filter, face tracking, and the annotated video + CSV writer."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from wingface.bench.predict_speed import random_cascade
from wingface.cli.main import main
from wingface.geometry import box_center, box_from_points
from wingface.inference.landmarker import Landmarker
from wingface.inference.results import Face
from wingface.inference.video import (FaceTracker, OneEuroFilter, OneEuroParams, csv_header, process_video,
                                      read_frames)
from wingface.models import save_cascade
from wingface.schemes import get_scheme, mean_shape_68

SCHEME = get_scheme("300w-68")
FPS = 10.0


# ----------------------------------------------------------------------------- One Euro filter


def test_one_euro_passes_the_first_sample_and_holds_a_constant():
    flt = OneEuroFilter()
    x = np.array([[3.0, 4.0], [5.0, 6.0]])
    np.testing.assert_array_equal(flt(x, 0.0), x)
    for k in range(1, 20):
        np.testing.assert_allclose(flt(x, k / 30), x)


def test_one_euro_removes_jitter_but_follows_fast_motion():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30.0
    still = 100 + rng.normal(0, 0.5, t.shape)  # 0.5% jitter on a 100-px face at 30 fps
    flt = OneEuroFilter()
    smoothed = np.array([flt(np.array([v]), ti, scale=100.0)[0] for v, ti in zip(still, t)])
    assert smoothed[30:].std() < 0.5 * still[30:].std()

    ramp = 100 + 100 * t  # one face size per second
    lag = {}
    for beta in (0.0, OneEuroParams().beta):
        flt = OneEuroFilter(OneEuroParams(beta=beta))
        out = np.array([flt(np.array([v]), ti, scale=100.0)[0] for v, ti in zip(ramp, t)])
        lag[beta] = float(np.abs(out - ramp)[150:].mean())
    assert lag[OneEuroParams().beta] < 2.5 < 0.2 * lag[0.0]  # the speed term removes the lag


def test_one_euro_params_are_checked():
    for bad in ({"min_cutoff": 0}, {"beta": -1}, {"d_cutoff": float("nan")}):
        with pytest.raises(ValueError):
            OneEuroParams(**bad)


# ----------------------------------------------------------------------------- tracking


class StubLandmarker:
    """Faces at known places: detection returns them all; given a box, the nearest one
    within the box's size, or a collapsed shape (the track is lost) if none."""

    scheme = SCHEME
    detector = "stub"

    def __init__(self) -> None:
        self.faces: list[np.ndarray] = []
        self.detections = 0

    def predict(self, frame, boxes=None):
        if boxes is None:
            self.detections += 1
            return [Face(p, box_from_points(p), 0.9, 0.0, SCHEME) for p in self.faces]
        out = []
        for box in boxes:
            centre = box_center(np.asarray(box))
            dist = [np.linalg.norm(p.mean(0) - centre) for p in self.faces]
            near = self.faces[int(np.argmin(dist))] if dist and min(dist) < box[2] - box[0] else None
            out.append(Face(near if near is not None else np.tile(centre, (68, 1)), np.asarray(box), 1.0, 0.0, SCHEME))
        return out

    def predict_from_points(self, frame, points):
        return self.predict(frame, boxes=[box_from_points(p) for p in points])


def _face_at(x: float, y: float, size: float = 60.0) -> np.ndarray:
    return mean_shape_68() * size + [x, y]


def test_tracker_keeps_ids_and_detects_only_when_needed():
    stub = StubLandmarker()
    tracker = FaceTracker(stub, redetect_every=5, smoothing=None)
    frame = np.zeros((240, 320, 3), np.uint8)
    ids_per_frame = []
    for k in range(12):
        stub.faces = [_face_at(80 + 3 * k, 100)] + ([_face_at(240, 120)] if k >= 3 else [])
        result = tracker.update(frame, k / FPS)
        ids_per_frame.append(sorted(i for i, _ in result))
        if result:
            np.testing.assert_allclose(result[0][1].points, stub.faces[0])
    assert stub.detections == 3  # frames 0, 5 and 10
    assert ids_per_frame[:5] == [[0]] * 5  # the second face appears at frame 3 ...
    assert ids_per_frame[5:] == [[0, 1]] * 7  # ... and is picked up at the next detection


def test_lost_track_is_dropped_and_redetected_at_once():
    stub = StubLandmarker()
    tracker = FaceTracker(stub, redetect_every=100, smoothing=None)
    frame = np.zeros((240, 320, 3), np.uint8)
    stub.faces = [_face_at(80, 100)]
    assert [i for i, _ in tracker.update(frame, 0.0)] == [0]
    stub.faces = [_face_at(250, 150)]  # jumps away: the tracked box finds nothing
    assert [i for i, _ in tracker.update(frame, 0.1)] == [1]
    assert stub.detections == 2
    stub.faces = []
    assert tracker.update(frame, 0.2) == [] and stub.detections == 3


def test_smoothing_damps_jitter_of_a_still_face():
    stub = StubLandmarker()
    rng = np.random.default_rng(1)
    frame = np.zeros((240, 320, 3), np.uint8)
    raw, smooth = [], []
    tracker = FaceTracker(stub, redetect_every=1000)
    for k in range(40):
        stub.faces = [_face_at(160, 120) + rng.normal(0, 0.3, (68, 2))]  # 0.5% of the face size
        raw.append(stub.faces[0])
        smooth.append(tracker.update(frame, k / 30)[0][1].points)
    assert np.std(np.array(smooth)[10:], axis=0).mean() < 0.5 * np.std(np.array(raw)[10:], axis=0).mean()


def test_tracker_needs_a_detector_and_a_valid_period():
    stub = StubLandmarker()
    with pytest.raises(ValueError, match="redetect_every"):
        FaceTracker(stub, redetect_every=0)
    stub.detector = None
    with pytest.raises(ValueError, match="detector"):
        FaceTracker(stub)


class FakeCapture:
    """A capture whose frame 2 fails to decode."""

    def __init__(self, frames: int) -> None:
        self.frames, self.index = frames, 0

    def read(self):
        k, self.index = self.index, self.index + 1
        if k >= self.frames or k == 2:
            return False, None
        return True, np.full((4, 4, 3), k, np.uint8)


def test_read_frames_reports_a_bad_frame_and_goes_on():
    got = [(i, None if f is None else int(f[0, 0, 0])) for i, f in read_frames(FakeCapture(5), 5)]
    assert got == [(0, 0), (1, 1), (2, None), (3, 3), (4, 4)]
    # A header that promises more frames than the stream holds is not a failure.
    assert [i for i, _ in read_frames(FakeCapture(5), 8)] == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------- real video files


@pytest.fixture(scope="module")
def landmarker(tmp_path_factory) -> Landmarker:
    torch.set_num_threads(1)
    path = save_cascade(tmp_path_factory.mktemp("model") / "cascade.pt", random_cascade(seed=0))
    return Landmarker(path)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """10 frames (MJPG .avi, 256 x 256, 10 fps) of the astronaut drifting and turning slightly."""
    with resources.as_file(resources.files("wingface").joinpath("assets", "astronaut.jpg")) as photo:
        image = cv2.resize(cv2.imread(str(photo)), (256, 256), interpolation=cv2.INTER_AREA)
    path = tmp_path_factory.mktemp("video") / "drift.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (256, 256))
    assert writer.isOpened(), "this OpenCV build cannot write MJPG .avi"
    for k in range(10):
        m = cv2.getRotationMatrix2D((128, 128), 1.0 * k, 1.0)
        m[0, 2] += 2 * k
        writer.write(cv2.warpAffine(image, m, (256, 256), borderMode=cv2.BORDER_REFLECT))
    writer.release()
    return path


def _csv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_process_video_writes_annotated_video_and_csv(landmarker, video, tmp_path):
    out_video, out_csv = tmp_path / "out.mp4", tmp_path / "out.csv"
    result = process_video(video, FaceTracker(landmarker), out_video, out_csv, progress=False)
    assert result.frames == 10 and result.faces == 10 and result.fps == pytest.approx(FPS) and not result.failed_frames
    rows = _csv_rows(out_csv)
    assert rows[0] == csv_header(68) and len(rows) == 11
    assert [int(r[0]) for r in rows[1:]] == list(range(10)) and {r[2] for r in rows[1:]} == {"0"}
    assert float(rows[2][1]) == pytest.approx(0.1)
    cap = cv2.VideoCapture(str(out_video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 10 and cap.read()[1].shape == (256, 256, 3)
    cap.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.mp4"]  # no temporaries left


def test_unreadable_video_leaves_no_output(landmarker, tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video at all" * 10)
    with pytest.raises(ValueError, match="fake.mp4"):
        process_video(fake, FaceTracker(landmarker), tmp_path / "o.mp4", tmp_path / "o.csv", progress=False)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        process_video(tmp_path / "missing.mp4", FaceTracker(landmarker), None, None, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.mp4"]


def test_cli_predict_on_a_video(video, landmarker, tmp_path, capsys):
    model = landmarker.model_path
    out = tmp_path / "out"
    args = ["predict", str(video), "--model", str(model), "--out", str(out), "--no-progress"]
    assert main(args + ["--no-smooth", "--redetect-every", "5"]) == 0
    assert (out / "drift.landmarks.mp4").is_file() and len(_csv_rows(out / "drift.csv")) == 11
    assert "1 video(s) of 10 frame(s)" in capsys.readouterr().out
    assert main(args + ["--detector", "none"]) == 1
    assert "videos need a detector" in capsys.readouterr().err
