"""Landmarks on video: frame-to-frame tracking, One Euro smoothing, annotated video + CSV.

Tracking: each tracked face's raw (unsmoothed) points from the previous frame start its fit
in the next frame (`Landmarker.predict_from_points`: their box, turned by their roll, so
the orientation stage is skipped and a turning head is followed), so the detector runs
only on the first frame, every ``redetect_every`` frames (to pick up new faces) and
whenever a track is lost (the landmark box collapses, jumps in size or leaves the frame, or
the fit's confidence drops below ``min_confidence``). Smoothing: a One Euro filter per face
(Casiez, Roussel and Vogel, CHI 2012) whose speed term is measured in face sizes per second, so one setting suits every face
size. The defaults cut typical jitter (about 0.5% of the face size per frame) about three
times when the face is still, and let the cutoff rise to about 10 Hz at one face size per
second, so moving faces lag by about 1.5% of their size at 30 fps.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import cv2
import numpy as np

from ..atomic import atomic_path
from ..detection import pairwise_iou
from ..geometry import box_from_points, box_size
from .drawing import LOW_CONFIDENCE, draw_faces
from .results import Face, confidence_text

if TYPE_CHECKING:
    from .landmarker import Landmarker

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
# A track whose landmark box changes side by more than this factor in one frame is lost.
MAX_SIZE_JUMP = 1.6
MIN_FACE_SIDE = 8.0  # pixels; smaller landmark boxes count as collapsed
MATCH_IOU = 0.3  # a detection overlapping a track this much is that track's face


@dataclass(frozen=True)
class OneEuroParams:
    """One Euro filter settings.

    Attributes:
        min_cutoff: cutoff frequency (Hz) when still; lower = smoother, more lag.
        beta: how fast the cutoff rises with speed, per (face size / s); higher = less lag.
        d_cutoff: cutoff frequency (Hz) of the speed estimate.
    """

    min_cutoff: float = 1.0
    beta: float = 10.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "beta", "d_cutoff"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name != "beta" and value == 0):
                raise ValueError(f"{name} must be a finite number > 0 (beta >= 0), got {value!r}")


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """The exponential smoothing weight of a first-order low-pass at ``cutoff`` Hz over ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over arrays of any fixed shape (e.g. points [L, 2]).

    Call with each new sample, its time in seconds and the current scale (face size in the
    sample's units): speeds are divided by ``scale`` before they raise the cutoff.
    """

    def __init__(self, params: OneEuroParams = OneEuroParams()) -> None:
        self.params = params
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """The filtered sample, same shape as ``x``."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        p, dt = self.params, t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + smoothing_factor(p.d_cutoff, dt) * (dx - self._dx)
        cutoff = p.min_cutoff + p.beta * np.abs(self._dx) / max(scale, 1e-9)
        self._x = self._x + smoothing_factor(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


@dataclass
class Track:
    """One face followed across frames: raw points [L, 2] (image pixels) and their filter."""

    id: int
    points: np.ndarray
    score: float
    filter: OneEuroFilter | None
    angle: float = 0.0
    confidence: float = float("nan")
    point_confidence: np.ndarray | None = None


class FaceTracker:
    """Follows faces through frames with a `Landmarker` (see the module docstring).

    Args:
        landmarker: a `Landmarker` with a detector.
        redetect_every: run the detector every this many frames (>= 1) to find new faces.
        smoothing: One Euro settings, or None for raw points.
        min_confidence: a followed face whose `Face.confidence` falls below this is dropped
            and looked for again with the detector (models without an error head: never).
    """

    def __init__(self, landmarker: "Landmarker", redetect_every: int = 30,
                 smoothing: OneEuroParams | None = OneEuroParams(), min_confidence: float = LOW_CONFIDENCE) -> None:
        if isinstance(redetect_every, bool) or int(redetect_every) != redetect_every or redetect_every < 1:
            raise ValueError(f"redetect_every must be an integer >= 1, got {redetect_every!r}")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
        self.min_confidence = min_confidence
        if landmarker.detector is None:
            raise ValueError("video tracking needs a Landmarker with a detector")
        self.landmarker = landmarker
        self.redetect_every = int(redetect_every)
        self.smoothing = smoothing
        self.tracks: list[Track] = []
        self._next_id = 0
        self._frame = 0

    def update(self, frame: np.ndarray, t: float) -> list[tuple[int, Face]]:
        """(track id, face with smoothed points) for each face in an RGB uint8 frame at ``t`` s."""
        lost = self._follow(frame)
        if lost or not self.tracks or self._frame % self.redetect_every == 0:
            self._add_new(frame)
        self._frame += 1
        return [(tr.id, self._smoothed(tr, t)) for tr in self.tracks]

    def _follow(self, frame: np.ndarray) -> bool:
        """Move every track to this frame; drop the lost ones; True if any was lost."""
        if not self.tracks:
            return False
        h, w = frame.shape[:2]
        faces = self.landmarker.predict_from_points(frame, [tr.points for tr in self.tracks])
        kept = []
        for tr, face in zip(self.tracks, faces):
            if _plausible(face.points, tr.points, w, h) and not face.confidence < self.min_confidence:
                tr.points, tr.confidence, tr.point_confidence = face.points, face.confidence, face.point_confidence
                kept.append(tr)
        lost = len(kept) < len(self.tracks)
        self.tracks = _dedupe(kept)
        return lost

    def _add_new(self, frame: np.ndarray) -> None:
        """Detect faces and start a track for each one no current track covers."""
        current = [box_from_points(tr.points) for tr in self.tracks]
        for face in self.landmarker.predict(frame):
            box = box_from_points(face.points)
            if current and pairwise_iou(box[None], np.array(current)).max() >= MATCH_IOU:
                continue
            flt = OneEuroFilter(self.smoothing) if self.smoothing is not None else None
            self.tracks.append(Track(self._next_id, face.points, face.score, flt, face.angle,
                                     face.confidence, face.point_confidence))
            current.append(box)
            self._next_id += 1

    def _smoothed(self, track: Track, t: float) -> Face:
        box = box_from_points(track.points)
        points = track.points
        if track.filter is not None:
            points = track.filter(points, t, scale=float(box_size(box).max()))
        return Face(points, box_from_points(points), track.score, track.angle, self.landmarker.scheme,
                    track.confidence, track.point_confidence)


def _plausible(points: np.ndarray, previous: np.ndarray, width: int, height: int) -> bool:
    """Whether new points still describe a face: finite, not collapsed, no size jump, centre in frame."""
    if not np.all(np.isfinite(points)):
        return False
    side, before = box_size(box_from_points(points)).max(), box_size(box_from_points(previous)).max()
    cx, cy = points.mean(0)
    return (side >= MIN_FACE_SIDE and 1 / MAX_SIZE_JUMP <= side / before <= MAX_SIZE_JUMP
            and -0.5 <= cx <= width - 0.5 and -0.5 <= cy <= height - 0.5)


def _dedupe(tracks: list[Track]) -> list[Track]:
    """Tracks that drifted onto the same face: keep the oldest (lowest id)."""
    kept: list[Track] = []
    for tr in sorted(tracks, key=lambda t: t.id):
        box = box_from_points(tr.points)[None]
        if not kept or pairwise_iou(box, np.array([box_from_points(k.points) for k in kept])).max() < 0.5:
            kept.append(tr)
    return kept


@dataclass
class VideoResult:
    """What `process_video` did: frames read, faces written, frames that failed (index, reason)."""

    frames: int = 0
    faces: int = 0
    fps: float = 0.0
    failed_frames: list[tuple[int, str]] = field(default_factory=list)


def open_video(path: str | Path) -> tuple[cv2.VideoCapture, float, int]:
    """(capture, frames per second, frame count or 0 if unknown); ValueError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: not a readable video (OpenCV could not open it)")
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    return cap, fps if math.isfinite(fps) and fps > 0 else 30.0, max(count, 0)


def read_frames(cap: cv2.VideoCapture, count: int, max_failures: int = 10) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, RGB uint8 frame, or None for a frame that failed to decode) until the stream ends.

    Reading goes on past a failed read while the known frame ``count`` is not reached, up to
    ``max_failures`` failures in a row. Failures are reported only when a good frame follows
    them: frame counts from container headers are often a little high, so failures at the
    end are the end of the stream.
    """
    index, pending = 0, []
    while True:
        ok, frame = cap.read()
        if ok:
            yield from ((i, None) for i in pending)
            pending = []
            yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        elif index >= count or len(pending) >= max_failures:
            if pending:
                log.debug("stream ended with %d unreadable frame(s) at %d", len(pending), pending[0])
            return
        else:
            pending.append(index)
        index += 1


@contextmanager
def _video_tmp(path: Path) -> Iterator[Path]:
    """A temporary name beside ``path`` with the same suffix (the writer picks the container
    from it); renamed over ``path`` on success, removed on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def csv_header(num_points: int) -> list[str]:
    """Columns of the per-frame CSV: frame, time_s, face_id, score, confidence, box, then x0, y0,
    x1, y1, ..., then each point's confidence c0, c1, ... (confidences empty without an error head)."""
    points = [c for i in range(num_points) for c in (f"x{i}", f"y{i}")]
    return ["frame", "time_s", "face_id", "score", "confidence", "box_x0", "box_y0", "box_x1", "box_y1", *points,
            *(f"c{i}" for i in range(num_points))]


def process_video(path: str | Path, tracker: FaceTracker, out_video: Path | None, out_csv: Path | None,
                  progress: bool = True) -> VideoResult:
    """Track faces through a video; write an annotated copy (mp4v) and a per-frame CSV.

    Args:
        path: the input video.
        tracker: a fresh `FaceTracker`.
        out_video, out_csv: outputs (None to skip); each appears whole or not at all.
        progress: show a tqdm bar over frames (on a terminal).
    Returns:
        A `VideoResult`; frames that failed to decode are listed, not raised.
    Raises:
        FileNotFoundError / ValueError naming the file when it cannot be opened or no frame decodes.
    """
    from tqdm import tqdm

    cap, fps, count = open_video(path)
    result = VideoResult(fps=fps)
    with ExitStack() as stack:
        stack.callback(cap.release)
        sink = _FrameSink(stack, out_video, out_csv, fps, tracker.landmarker.scheme.num_points)
        frames = tqdm(read_frames(cap, count), total=count or None, unit="frame", desc=Path(path).name,
                      disable=None if progress else True, leave=False)
        for index, frame in frames:
            if frame is None:
                result.failed_frames.append((index, "frame could not be decoded"))
                continue
            faces = tracker.update(frame, index / fps)
            sink.write(index, index / fps, frame, faces)
            result.frames += 1
            result.faces += len(faces)
        if result.frames == 0:
            raise ValueError(f"{path}: no frame could be decoded")
    return result


class _FrameSink:
    """The annotated video and the CSV of one `process_video` call, written to temporary
    names that replace the outputs when the context ``stack`` closes without an error."""

    def __init__(self, stack: ExitStack, out_video: Path | None, out_csv: Path | None, fps: float,
                 num_points: int) -> None:
        self.fps = fps
        self.video_path = stack.enter_context(_video_tmp(Path(out_video))) if out_video else None
        self.video: cv2.VideoWriter | None = None
        self.handle = None
        if out_csv:
            self.handle = stack.enter_context(open(stack.enter_context(atomic_path(out_csv)), "w", newline=""))
            self.csv = csv.writer(self.handle)
            self.csv.writerow(csv_header(num_points))
        stack.callback(self.close)

    def write(self, index: int, t: float, frame: np.ndarray, faces: list[tuple[int, Face]]) -> None:
        if self.video_path is not None:
            if self.video is None:
                self.video = _writer(self.video_path, self.fps, frame.shape)
            self.video.write(cv2.cvtColor(draw_faces(frame, [f for _, f in faces]), cv2.COLOR_RGB2BGR))
        if self.handle is not None:
            self.csv.writerows(_rows(index, t, faces))

    def close(self) -> None:
        if self.video is not None:
            self.video.release()
            self.video = None


def _writer(path: Path, fps: float, shape: Sequence[int]) -> cv2.VideoWriter:
    h, w = shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise ValueError(f"{path}: OpenCV cannot write an mp4v video here")
    return writer


def _rows(index: int, t: float, faces: list[tuple[int, Face]]) -> Iterator[list]:
    for face_id, face in faces:
        yield [index, f"{t:.4f}", face_id, f"{face.score:.4f}", confidence_text(face.confidence),
               *(f"{v:.2f}" for v in face.box), *(f"{v:.3f}" for v in face.points.reshape(-1)),
               *map(confidence_text, face.point_confidence)]
