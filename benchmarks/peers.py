"""wingface beside dlib's 68-point shape predictor and the mean shape, on the same 300w-common faces.

    pip install -e '.[peers]'          # dlib-bin + face-recognition-models (ships dlib's model offline)
    python benchmarks/peers.py [--data ../shared/data/300w-subset] [--fit-faces 600]

Protocols:
- ``gt``: every system gets the ground-truth landmark box. dlib's predictor expects boxes
  from its own HOG detector, so the landmark box is first mapped into that convention with
  an offset and scale fitted on 300w-train (median over the faces dlib's detector finds).
- ``detector``: end to end, each system with its own detector; faces a detector misses are
  counted. dlib is also compared with wingface on exactly the faces dlib found.
Plus dlib's ms per face (predictor only, one thread) and per 640x480 image (detector).

Each result is a JSON under benchmarks/results/peers/ and is skipped when it exists
(delete it to redo). wingface's own figures are read from benchmarks/results/shipped/
(python benchmarks/shipped_model.py) and the mean shape from mean_shape_common.json.
dlib's model was trained on iBUG 300-W (research use only), like the shipped wingface model.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from steps import DEFAULT_DATA, REPO, require_data
from tqdm import tqdm

from wingface.atomic import write_text_atomic
from wingface.data.datasets import open_dataset
from wingface.data.images import read_image
from wingface.detection import pairwise_iou
from wingface.evaluation.plots import plot_ced
from wingface.evaluation.run import MIN_DETECTION_IOU, evaluate
from wingface.geometry import box_center, box_from_points, box_size
from wingface.inference.results import Face
from wingface.schemes import get_scheme

RESULTS = REPO / "benchmarks" / "results"


def load_dlib():
    """(dlib module, predictor path) or exit naming the extra to install."""
    try:
        import dlib
        import face_recognition_models
    except ImportError as err:
        raise SystemExit(f"dlib peer not installed ({err}): pip install -e '.[peers]'") from None
    return dlib, face_recognition_models.pose_predictor_model_location()


@dataclass(frozen=True)
class DlibBoxFit:
    """Landmark box -> dlib detector box: centre offset (dx, dy) and side, in landmark-box sides."""

    dx: float
    dy: float
    scale: float

    def to_dlib(self, box: np.ndarray) -> tuple[int, int, int, int]:
        """A landmark box [4] (x0, y0, x1, y1) -> dlib's (left, top, right, bottom) in whole pixels."""
        side = float(box_size(box[None]).max())
        cx, cy = box_center(box[None])[0] + side * np.array([self.dx, self.dy])
        half = side * self.scale / 2
        return round(cx - half), round(cy - half), round(cx + half), round(cy + half)


class DlibLandmarker:
    """dlib's HOG detector and 68-point predictor behind wingface's `predict_batch` interface."""

    def __init__(self, fit: DlibBoxFit | None = None, upsample: int = 1) -> None:
        dlib, model = load_dlib()
        self.dlib, self.fit, self.upsample = dlib, fit, upsample
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(model)
        self.scheme = get_scheme("300w-68")

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """dlib's detections as float boxes [4] (x0, y0, x1, y1)."""
        return [np.array([r.left(), r.top(), r.right(), r.bottom()], float) for r in self.detector(image, self.upsample)]

    def points(self, image: np.ndarray, rect: Sequence[int]) -> np.ndarray:
        """dlib's 68 points, float64 [68, 2] image pixels, for RGB uint8 ``image`` and a dlib-convention box."""
        shape = self.predictor(image, self.dlib.rectangle(*map(int, rect)))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float64)

    def predict_batch(self, images: Sequence[np.ndarray], boxes=None) -> list[list[Face]]:
        """Faces per image: dlib's detections, or one per given landmark box (mapped with ``fit``)."""
        out = []
        for i, image in enumerate(images):
            if boxes is None:
                out.append([Face(self.points(image, b), b, 1.0, scheme=self.scheme) for b in self.detect(image)])
            else:
                out.append([Face(self.points(image, self.fit.to_dlib(np.asarray(b, float))), np.asarray(b, float), 1.0,
                                 scheme=self.scheme) for b in boxes[i]])
        return out


def cached(path: Path, compute: Callable[[], dict]) -> dict:
    """Read ``path`` when it exists, else compute, write atomically and return."""
    if path.exists():
        print(f"[skip] {path.name} exists", flush=True)
        return json.loads(path.read_text())
    print(f"[run ] {path.name}", flush=True)
    result = compute()
    write_text_atomic(path, json.dumps(result, indent=1))
    return result


def fit_box(records, faces: int) -> dict:
    """Median offset/scale from landmark boxes to dlib's detections on evenly spaced train faces."""
    dlib = DlibLandmarker()
    pick = np.linspace(0, len(records) - 1, min(faces, len(records))).round().astype(int)
    dx, dy, scale = [], [], []
    for i in tqdm(pick, desc="fit dlib boxes", unit="face", disable=None):
        truth = box_from_points(records[i].points)
        found = dlib.detect(read_image(records[i].image_path))
        if not found:
            continue
        iou = pairwise_iou(truth[None], np.stack(found))[0]
        if iou.max() < MIN_DETECTION_IOU:
            continue
        det, side = found[int(iou.argmax())], float(box_size(truth[None]).max())
        (cx, cy), (tx, ty) = box_center(det[None])[0], box_center(truth[None])[0]
        dx.append((cx - tx) / side)
        dy.append((cy - ty) / side)
        scale.append(float(box_size(det[None]).max()) / side)
    return {"faces": len(pick), "found": len(dx), "dx": float(np.median(dx)), "dy": float(np.median(dy)),
            "scale": float(np.median(scale)), "dx_std": float(np.std(dx)), "dy_std": float(np.std(dy)),
            "scale_std": float(np.std(scale))}


def evaluate_dlib(records, boxes: str, fit: DlibBoxFit, label: str) -> dict:
    """wingface's evaluation report for dlib under box protocol ``boxes`` (gt or detector)."""
    return {"label": label, "boxes": boxes, **evaluate(DlibLandmarker(fit), records, boxes=boxes).report()}


def time_dlib(records, fit: DlibBoxFit, faces: int = 200) -> dict:
    """ms per face of the predictor (one thread; dlib does not thread it) and per 640x480 detection."""
    import cv2

    dlib = DlibLandmarker(fit)
    images = [read_image(r.image_path) for r in records[:faces]]
    rects = [fit.to_dlib(box_from_points(r.points)) for r in records[:faces]]
    for image, rect in zip(images[:10], rects[:10]):
        dlib.points(image, rect)
    start = time.perf_counter()
    for image, rect in zip(images, rects):
        dlib.points(image, rect)
    predictor_ms = (time.perf_counter() - start) / len(images) * 1e3
    frame = cv2.resize(images[0], (640, 480))
    dlib.detect(frame)
    start = time.perf_counter()
    for _ in range(10):
        dlib.detect(frame)
    return {"predictor_ms_per_face": round(predictor_ms, 3), "faces": len(images),
            "detector_ms_per_640x480": round((time.perf_counter() - start) / 10 * 1e3, 1), "upsample": dlib.upsample}


def face_key(face: dict) -> tuple[str, str]:
    """(subset, file name) of a per-face report row: reports may spell the data root differently."""
    return face["subset"], Path(face["image"]).name


def same_faces(report: dict, keys: set[tuple[str, str]]) -> dict:
    """Mean inter-ocular / inter-pupil NME % of a report's faces whose `face_key` is in ``keys``."""
    rows = [f for f in report["per_face"] if face_key(f) in keys]
    return {"faces": len(rows), "nme_inter_ocular": float(np.mean([f["nme_inter_ocular"] for f in rows])),
            "nme_inter_pupil": float(np.mean([f["nme_inter_pupil"] for f in rows]))}


def summarise(out: Path, reports: dict[str, dict], timing: dict, fit: dict) -> None:
    """peers.json, peers.md and the one CED plot with every system."""
    dlib_found = {face_key(f) for f in reports["dlib, dlib detector"]["per_face"]}
    rows = []
    for label, rep in reports.items():
        rows.append({"system": label, "faces": rep["faces"], "missed": rep.get("missed", 0),
                     "nme_inter_ocular": round(rep["nme_inter_ocular"], 3), "nme_inter_pupil": round(rep["nme_inter_pupil"], 3),
                     "fr_10": round(rep["fr_10"], 2), "auc_10": round(rep["auc_10"], 4),
                     "on_dlib_found_faces": {k: round(v, 3) if isinstance(v, float) else v
                                             for k, v in same_faces(rep, dlib_found).items()}})
    write_text_atomic(out / "peers.json", json.dumps({"split": "300w-common", "dlib_box_fit": fit, "dlib_timing": timing,
                                                      "rows": rows}, indent=1))
    lines = ["| system | faces scored (missed) | inter-ocular % | inter-pupil % | FR@10 % | AUC@10 | on dlib's found faces: IO / IP % |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        same = r["on_dlib_found_faces"]
        lines.append(f"| {r['system']} | {r['faces']} ({r['missed']}) | {r['nme_inter_ocular']:.3f} | {r['nme_inter_pupil']:.3f} | "
                     f"{r['fr_10']:.2f} | {r['auc_10']:.4f} | {same['nme_inter_ocular']:.3f} / {same['nme_inter_pupil']:.3f} ({same['faces']}) |")
    write_text_atomic(out / "peers.md", "\n".join(lines) + "\n")
    curves = {label: [f["nme_inter_ocular"] / 100 for f in rep["per_face"]] for label, rep in reports.items()}
    plot_ced(curves, out / "ced_peers.png", title="300w-common, inter-ocular NME")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--fit-faces", type=int, default=600, help="train faces the dlib box fit uses")
    parser.add_argument("--out", type=Path, default=RESULTS / "peers")
    args = parser.parse_args()
    reader = open_dataset(require_data(args.data))
    load_dlib()
    args.out.mkdir(parents=True, exist_ok=True)
    fit = cached(args.out / "dlib_box_fit.json", lambda: fit_box(reader.read("300w-train").records, args.fit_faces))
    box_fit = DlibBoxFit(fit["dx"], fit["dy"], fit["scale"])
    common = reader.read("300w-common").records
    dlib_gt = cached(args.out / "dlib_gt.json", lambda: evaluate_dlib(common, "gt", box_fit, "dlib, gt box"))
    dlib_e2e = cached(args.out / "dlib_detector.json", lambda: evaluate_dlib(common, "detector", box_fit, "dlib, dlib detector"))
    timing = cached(args.out / "dlib_timing.json", lambda: time_dlib(common, box_fit))
    shipped = RESULTS / "shipped"
    reports = {"mean shape, gt box": json.loads((RESULTS / "mean_shape_common.json").read_text()),
               "dlib, gt box": dlib_gt, "dlib, dlib detector": dlib_e2e,
               "wingface CNN-6/7, gt box": json.loads((shipped / "common_gt.json").read_text()),
               "wingface CNN-6/7, bundled detector": json.loads((shipped / "common_detector.json").read_text())}
    summarise(args.out, reports, timing, fit)


if __name__ == "__main__":
    main()
