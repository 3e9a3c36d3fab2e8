"""Fit each bundled detector's `BoxFit` on 300-W train faces and time the detectors.

For every annotated face the detection with the largest IoU to the tight box of its 68
landmarks is matched (other faces may be visible in an image); a face counts as found when
that IoU is at least ``--min-iou``. On the found faces, in units of the detector box side
``max(w, h)``:

    dx, dy = (landmark-box centre - detector-box centre) / side
    scale  = max(w, h) of the landmark box / side

The fit is the median of each; ``spread`` is the RMS of the residual standard deviations of
dx, dy and scale / median - 1. The keypoint template is, per keypoint, the median of its
position in the frame of the mean shape (`wingface.schemes.mean_shape_68`) after the
similarity that best maps the face's 68 landmarks onto that shape. Also reported: how often the default cascade turns an
upright 300-W face by +-90 degrees (should be never), and ms per 640 x 480 image with one
OpenCV thread and with the default number.

Usage:  python benchmarks/fit_detector_boxes.py [--data DIR] [--limit N] [--out JSON]
Default: all 2,012 train faces (lfpw/trainset, helen/trainset, afw); about a minute on 2 cores.
The constants go into the detector classes by hand (``box_fit = BoxFit(...)``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from wingface.atomic import write_text_atomic
from wingface.data.images import read_image
from wingface.detection import BlazeFaceDetector, Detection, FaceDetector, YuNetDetector, create_detector, pairwise_iou
from wingface.geometry import apply_affine, box_center, box_from_points, box_size, fit_similarity
from wingface.schemes import mean_shape_68

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "300w-subset"
FOLDERS = ("lfpw/trainset", "helen/trainset", "afw")
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "detector_boxes.json"


def read_pts(path: Path) -> np.ndarray:
    """A 300-W .pts file -> float64 [68, 2], 0-based pixel centres (the file is 1-based)."""
    lines = path.read_text().split("{", 1)[1].split("}", 1)[0].split("\n")
    points = np.array([[float(v) for v in line.split()] for line in lines if line.strip()])
    if points.shape != (68, 2):
        raise ValueError(f"{path}: expected 68 points, got shape {points.shape}")
    return points - 1.0


def list_faces(data: Path, limit: int | None) -> list[tuple[Path, np.ndarray]]:
    """(image path, landmarks [68, 2]) for each face of the train folders, sorted by path.

    With ``limit``, an evenly spaced subset of that many faces (deterministic).
    """
    faces = []
    for folder in FOLDERS:
        for pts in sorted((data / folder).glob("*.pts")):
            faces.append((pts.with_suffix(".jpg"), read_pts(pts)))
    if not faces:
        raise FileNotFoundError(f"no .pts files under {data} in {', '.join(FOLDERS)}")
    if limit is not None and limit < len(faces):
        faces = [faces[i] for i in np.linspace(0, len(faces) - 1, limit).round().astype(int)]
    return faces


def match(detector: FaceDetector, image: np.ndarray, truth: np.ndarray) -> tuple[Detection | None, float]:
    """The detection with the largest IoU to the landmark box ``truth``, and that IoU."""
    found = detector.detect(image)
    if not found:
        return None, 0.0
    iou = pairwise_iou(truth[None], np.stack([d.box for d in found]))[0]
    best = int(np.argmax(iou))
    return found[best], float(iou[best])


def keypoint_template(detections: list[Detection], landmarks: np.ndarray) -> list[list[float]]:
    """Median position [K, 2] of each detector keypoint in the mean shape's frame (see the module)."""
    placed = [apply_affine(fit_similarity(points, mean_shape_68()), d.keypoints) for d, points in zip(detections, landmarks)]
    return np.median(np.stack(placed), axis=0).round(4).tolist()


def fit_boxes(pairs: list[tuple[Detection | None, float]], landmarks: np.ndarray, min_iou: float) -> dict:
    """Recall, median fit, keypoint template, residual spread and IoU statistics of one
    detector's matches."""
    truths = np.stack([box_from_points(p) for p in landmarks])
    ious = np.array([iou for _, iou in pairs])
    found = ious >= min_iou
    boxes = np.stack([d.box for (d, _), ok in zip(pairs, found) if ok])
    side = box_size(boxes).max(axis=1)
    shift = (box_center(truths[found]) - box_center(boxes)) / side[:, None]
    scale = box_size(truths[found]).max(axis=1) / side
    aspect = box_size(boxes)[:, 1] / box_size(boxes)[:, 0]
    med = {"dx": float(np.median(shift[:, 0])), "dy": float(np.median(shift[:, 1])), "scale": float(np.median(scale))}
    residual_std = {"dx": float(shift[:, 0].std()), "dy": float(shift[:, 1].std()), "scale": float((scale / med["scale"] - 1).std())}
    return {
        "faces": len(pairs),
        "found": int(found.sum()),
        "recall": float(found.mean()),
        "fit": {**med, "spread": float(np.sqrt(np.mean(np.square(list(residual_std.values()))))),
                "keypoints": keypoint_template([d for (d, _), ok in zip(pairs, found) if ok], landmarks[found])},
        "residual_std": residual_std,
        "residual_p5_p95": {
            "dx": np.percentile(shift[:, 0] - med["dx"], [5, 95]).round(4).tolist(),
            "dy": np.percentile(shift[:, 1] - med["dy"], [5, 95]).round(4).tolist(),
            "scale": np.percentile(scale / med["scale"] - 1, [5, 95]).round(4).tolist(),
        },
        "box_aspect_h_over_w_median": float(np.median(aspect)),
        "iou_median": float(np.median(ious[found])),
    }


def summarise_cascade(best: list[Detection | None]) -> dict:
    """How the default cascade handled upright faces: stage used and quarter turns taken."""
    found = [d for d in best if d is not None]
    return {
        "faces": len(best),
        "found": len(found),
        "by_stage": {name: sum(d.detector == name for d in found) for name in ("blazeface", "yunet")},
        "turned_90": sum(abs(d.angle) > 0 for d in found),
    }


def time_detector(detector: FaceDetector, image: np.ndarray, runs: int) -> float:
    """Median milliseconds per `detect` call on ``image`` (after one warm-up call)."""
    detector.detect(image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        detector.detect(image)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def timing_image() -> np.ndarray:
    """A 640 x 480 RGB image with the bundled astronaut's face at a typical portrait size."""
    astronaut = read_image(ROOT / "wingface" / "assets" / "astronaut.jpg")
    image = np.full((480, 640, 3), 128, dtype=np.uint8)
    image[:, 80:560] = cv2.resize(astronaut, (480, 480), interpolation=cv2.INTER_AREA)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the 300w-subset folder")
    parser.add_argument("--limit", type=int, default=None, help="use an evenly spaced subset of N faces")
    parser.add_argument("--min-iou", type=float, default=0.3, help="IoU with the landmark box that counts as found")
    parser.add_argument("--runs", type=int, default=50, help="timed calls per detector and thread setting")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    faces = list_faces(args.data, args.limit)
    landmarks = np.stack([points for _, points in faces])
    print(f"{len(faces)} faces from {', '.join(FOLDERS)} under {args.data}")

    detectors = {"blazeface": BlazeFaceDetector(), "yunet": YuNetDetector()}
    cascade = create_detector("default")
    pairs: dict[str, list] = {name: [] for name in detectors}
    cascade_best = []
    for path, points in faces:  # one image in memory at a time
        image = read_image(path)
        for name, detector in detectors.items():
            pairs[name].append(match(detector, image, box_from_points(points)))
        found = cascade.detect(image)
        cascade_best.append(found[0] if found else None)

    results: dict = {
        "data": {"folders": list(FOLDERS), "faces": len(faces), "limit": args.limit, "min_iou": args.min_iou},
        "opencv": cv2.__version__,
        "detectors": {},
    }
    default_threads = cv2.getNumThreads()
    image = timing_image()
    for name, detector in detectors.items():
        stats = fit_boxes(pairs[name], landmarks, args.min_iou)
        timing = {}
        for threads in (1, default_threads):
            cv2.setNumThreads(threads)
            timing[f"threads_{threads}"] = round(time_detector(detector, image, args.runs), 2)
        cv2.setNumThreads(default_threads)
        stats["ms_per_640x480"] = timing
        results["detectors"][name] = stats
        fit = stats["fit"]
        print(
            f"{name:10s} recall {stats['recall']:.4f} ({stats['found']}/{stats['faces']})  "
            f"dx {fit['dx']:+.4f} dy {fit['dy']:+.4f} scale {fit['scale']:.4f} spread {fit['spread']:.4f}  "
            f"h/w {stats['box_aspect_h_over_w_median']:.3f}  ms {timing}"
        )
        print(f"{'':10s} residual std {stats['residual_std']}  p5/p95 {stats['residual_p5_p95']}")
        print(f"{'':10s} keypoints {fit['keypoints']}")
    results["default_cascade"] = summarise_cascade(cascade_best)
    print(f"default cascade: {results['default_cascade']}")
    write_text_atomic(args.out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
