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

MediaPipe face mesh (end to end, its own detector) joins on the 9 points whose correspondence
with the 68-point scheme is well defined (eye corners 36/39/42/45, nose 30/31/35, mouth
corners 48/54). It lives in a virtual environment of its own; its points and timing come from
benchmarks/mediapipe_peer.py (see its docstring for the one-command setup):

    .venv-mediapipe/bin/python benchmarks/mediapipe_peer.py --skip-timing   # -> peers/mediapipe_common.json
    python benchmarks/peers.py                                               # scores all systems on those 9 points

wingface and dlib are scored on the same 9 points (their per-point predictions are cached in
peers/{wingface,dlib}_points_{gt,detector}.json). MediaPipe's jaw and brow contours follow
other definitions than iBUG's, so they are not scored. Without mediapipe_common.json the
9-point table is left out.

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
from wingface.evaluation.metrics import nme, normaliser
from wingface.evaluation.metrics import summarise as summarise_errors
from wingface.evaluation.plots import plot_ced
from wingface.evaluation.run import MIN_DETECTION_IOU, evaluate
from wingface.geometry import box_center, box_from_points, box_size
from wingface.inference.results import Face
from wingface.schemes import get_scheme

RESULTS = REPO / "benchmarks" / "results"
MEDIAPIPE_RUN = ".venv-mediapipe/bin/python benchmarks/mediapipe_peer.py"


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


def point_predictions(landmarker, records, boxes: str, points: list[int], label: str) -> dict:
    """A system's predictions of the iBUG ``points`` on every face it scores (box protocol
    ``boxes``), plus its 68-point inter-ocular NME % as a check against its full report."""
    ev = evaluate(landmarker, records, boxes=boxes)
    return {"label": label, "boxes": boxes, "ibug_points": points, "missed": ev.missed,
            "nme_inter_ocular_68": float(100 * ev.errors("inter_ocular").mean()),
            "faces": [{"image": Path(r.image_path).name, "subset": r.subset, "points": np.round(p[points], 3).tolist()}
                      for r, p in zip(ev.records, ev.predictions)]}


def keyed_points(result: dict, points: list[int], source: str) -> dict[tuple[str, str], np.ndarray]:
    """``{face_key: [len(points), 2]}`` of a cached `point_predictions` result."""
    if result["ibug_points"] != points:
        raise SystemExit(f"{source} has points {result['ibug_points']}, not {points}: delete it to redo")
    return {face_key(f): np.asarray(f["points"], np.float64) for f in result["faces"]}


def mediapipe_points(result: dict, mapping: str) -> dict[tuple[str, str], np.ndarray]:
    """``{face_key: [9, 2]}`` of MediaPipe's found faces under one of its vertex ``mapping``s."""
    column = {v: i for i, v in enumerate(result["mesh_vertices"])}
    take = [column[result["mappings"][mapping][str(k)]] for k in result["ibug_points"]]
    return {face_key(f): np.asarray(f["points"], np.float64)[take] for f in result["faces"] if f["found"]}


def score_points(predicted: dict[tuple[str, str], np.ndarray], truth: dict[tuple[str, str], np.ndarray],
                 points: list[int], keys: set[tuple[str, str]] | None = None) -> dict:
    """NME % over ``points`` only, normalised by the full ground truth's inter-ocular (36-45) and
    inter-pupil distances, with FR@10 / AUC@10 (inter-ocular), on the predicted faces (or ``keys``)."""
    chosen = sorted(predicted if keys is None else keys)
    target = np.stack([truth[k] for k in chosen]).astype(np.float64)
    pred = np.stack([predicted[k] for k in chosen])
    scheme = get_scheme("300w-68")
    io, ip = normaliser(target, scheme, "inter_ocular"), normaliser(target, scheme, "inter_pupil")
    e_io, e_ip = nme(pred, target[:, points], io), nme(pred, target[:, points], ip)
    s_io, s_ip = summarise_errors(e_io), summarise_errors(e_ip)
    per_point = 100 * np.mean(np.linalg.norm(pred - target[:, points], axis=-1) / io[:, None], axis=0)
    return {"faces": len(chosen), "nme_inter_ocular": s_io["nme"], "nme_inter_pupil": s_ip["nme"],
            "fr_10": s_io["fr@10"], "auc_10": s_io["auc@10"], "inter_pupil_fr_10": s_ip["fr@10"],
            "per_point_inter_ocular": {str(k): round(float(v), 3) for k, v in zip(points, per_point)},
            "errors_inter_ocular": e_io}


def _rounded(scores: dict) -> dict:
    """`score_points` figures rounded as the 68-point rows are (NME 3, FR 2, AUC 4 decimals)."""
    places = {"nme_inter_ocular": 3, "nme_inter_pupil": 3, "fr_10": 2, "inter_pupil_fr_10": 2, "auc_10": 4}
    return {k: round(v, places[k]) if k in places else v for k, v in scores.items()}


def nine_points(out: Path, records, box_fit: DlibBoxFit) -> dict | None:
    """MediaPipe, wingface and dlib on MediaPipe's 9 well-defined points (None without
    mediapipe_common.json): every system on its own faces and on the faces all of them found."""
    mp_path = out / "mediapipe_common.json"
    if not mp_path.exists():
        print(f"[skip] 9-point table: {mp_path.name} missing (run {MEDIAPIPE_RUN} in its own venv)", flush=True)
        return None
    mp = json.loads(mp_path.read_text())
    points = mp["ibug_points"]
    truth = {(r.subset, Path(r.image_path).name): r.points for r in records}
    from wingface.inference.landmarker import Landmarker

    runs = {}
    for name, label, make in [("wingface", "wingface", lambda: Landmarker(precision="fp32")), ("dlib", "dlib", lambda: DlibLandmarker(box_fit))]:
        for boxes, what in [("gt", "gt box"), ("detector", "bundled detector" if name == "wingface" else "dlib detector")]:
            path = out / f"{name}_points_{boxes}.json"
            result = cached(path, lambda: point_predictions(make(), records, boxes, points, f"{label}, {what}"))
            runs[f"{label}, {what} (9 points)"] = (keyed_points(result, points, path.name), len(result["missed"]),
                                                   result["nme_inter_ocular_68"])
    systems = {f"{mp['system']}, table vertices": (mediapipe_points(mp, "table"), len(mp["missed"]), None)}
    if mp["mappings"]["train_picked"] != mp["mappings"]["table"]:
        systems[f"{mp['system']}, train-picked vertices"] = (mediapipe_points(mp, "train_picked"), len(mp["missed"]), None)
    systems.update(runs)
    common = set.intersection(*(set(pred) for pred, _, _ in systems.values()))
    rows, curves = [], {}
    for label, (pred, missed, nme68) in systems.items():
        own, shared = score_points(pred, truth, points), score_points(pred, truth, points, common)
        curves[label.replace(mp["system"], "MediaPipe").replace(" (9 points)", "")] = own.pop("errors_inter_ocular")
        shared.pop("errors_inter_ocular")
        rows.append({"system": label, "missed": missed, **_rounded(own), "nme_inter_ocular_68_points": nme68 and round(nme68, 3),
                     "on_faces_all_found": _rounded({k: v for k, v in shared.items() if k != "per_point_inter_ocular"})})
    plot_ced(curves, out / "ced_peers_9points.png", title="300w-common, 9 points, inter-ocular NME")
    return {"ibug_points": points, "mediapipe_mappings": mp["mappings"], "mapping_source": mp["mapping_source"],
            "not_scored": mp["not_scored"], "faces_all_found": len(common), "mediapipe_timing": mp.get("timing"),
            "rows": rows}


def face_key(face: dict) -> tuple[str, str]:
    """(subset, file name) of a per-face report row: reports may spell the data root differently."""
    return face["subset"], Path(face["image"]).name


def same_faces(report: dict, keys: set[tuple[str, str]]) -> dict:
    """Mean inter-ocular / inter-pupil NME % of a report's faces whose `face_key` is in ``keys``."""
    rows = [f for f in report["per_face"] if face_key(f) in keys]
    return {"faces": len(rows), "nme_inter_ocular": float(np.mean([f["nme_inter_ocular"] for f in rows])),
            "nme_inter_pupil": float(np.mean([f["nme_inter_pupil"] for f in rows]))}


def speed_lines(dlib_timing: dict, mediapipe_timing: dict | None) -> list[str]:
    """The speed table of peers.md: MediaPipe (measured by mediapipe_peer.py), dlib, and wingface's
    single-thread figures from bench_predict.json."""
    lines = ["| system | ms | what |", "|---|---|---|"]
    if mediapipe_timing:
        lines.append(f"| MediaPipe face mesh | {mediapipe_timing['ms_per_640x480_image']} | per 640x480 image, detector + mesh, "
                     f"one core, median of {mediapipe_timing['runs']} |")
    else:
        lines.append(f"| MediaPipe face mesh | not measured | run `{MEDIAPIPE_RUN} --timing-only`, then this script |")
    lines.append(f"| dlib | {dlib_timing['predictor_ms_per_face']} + {dlib_timing['detector_ms_per_640x480']} | "
                 "predictor per face (one thread) + HOG detector per 640x480 image |")
    bench = RESULTS / "bench_predict.json"
    if bench.exists():
        b = json.loads(bench.read_text())
        if "end_to_end_ms_640x480" in b:
            lines.append(f"| wingface | {b['end_to_end_ms_640x480']} | per 640x480 image, bundled detector + "
                         f"the default path (int8), one core (bench_predict.json; MediaPipe in the same run: "
                         f"{(b.get('mediapipe') or {}).get('ms_per_640x480_image', 'not measured')}) |")
    return lines


def nine_point_lines(nine: dict) -> list[str]:
    """The 9-point table of peers.md and its notes."""
    lines = [f"On the 9 points whose correspondence with the 68-point scheme is well defined "
             f"({', '.join(map(str, nine['ibug_points']))}); NME over those points, normalised by the full ground "
             f"truth's inter-ocular (36-45) or inter-pupil distance. Not scored: {nine['not_scored']}.", "",
             f"| system | faces scored (missed) | inter-ocular % | inter-pupil % | FR@10 % | AUC@10 | "
             f"on the {nine['faces_all_found']} faces all found: IO / IP % |", "|---|---|---|---|---|---|---|"]
    for r in nine["rows"]:
        same = r["on_faces_all_found"]
        lines.append(f"| {r['system']} | {r['faces']} ({r['missed']}) | {r['nme_inter_ocular']:.3f} | {r['nme_inter_pupil']:.3f} | "
                     f"{r['fr_10']:.2f} | {r['auc_10']:.4f} | {same['nme_inter_ocular']:.3f} / {same['nme_inter_pupil']:.3f} |")
    maps = nine["mediapipe_mappings"]
    changed = {k: v for k, v in maps["train_picked"].items() if maps["table"][k] != v}
    lines += ["", f"MediaPipe vertices: {nine['mapping_source']}. Table: "
              + ", ".join(f"{k}->{v}" for k, v in maps["table"].items())
              + (". Train-picked (300w-train only) replaces " + ", ".join(f"{k}->{maps['table'][k]} by {v}" for k, v in changed.items())
                 if changed else "") + "."]
    return lines


def summarise(out: Path, reports: dict[str, dict], timing: dict, fit: dict, nine: dict | None = None) -> None:
    """peers.json, peers.md and the CED plot with every system (68 points), the 9-point comparison
    with MediaPipe when ``nine`` is given (`nine_points`), and the speed table."""
    dlib_found = {face_key(f) for f in reports["dlib, dlib detector"]["per_face"]}
    rows = []
    for label, rep in reports.items():
        rows.append({"system": label, "faces": rep["faces"], "missed": rep.get("missed", 0),
                     "nme_inter_ocular": round(rep["nme_inter_ocular"], 3), "nme_inter_pupil": round(rep["nme_inter_pupil"], 3),
                     "fr_10": round(rep["fr_10"], 2), "auc_10": round(rep["auc_10"], 4),
                     "on_dlib_found_faces": {k: round(v, 3) if isinstance(v, float) else v
                                             for k, v in same_faces(rep, dlib_found).items()}})
    write_text_atomic(out / "peers.json", json.dumps({"split": "300w-common", "dlib_box_fit": fit, "dlib_timing": timing,
                                                      "rows": rows, "nine_points": nine}, indent=1))
    lines = ["| system | faces scored (missed) | inter-ocular % | inter-pupil % | FR@10 % | AUC@10 | on dlib's found faces: IO / IP % |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        same = r["on_dlib_found_faces"]
        lines.append(f"| {r['system']} | {r['faces']} ({r['missed']}) | {r['nme_inter_ocular']:.3f} | {r['nme_inter_pupil']:.3f} | "
                     f"{r['fr_10']:.2f} | {r['auc_10']:.4f} | {same['nme_inter_ocular']:.3f} / {same['nme_inter_pupil']:.3f} ({same['faces']}) |")
    if nine is not None:
        lines += ["", *nine_point_lines(nine)]
    lines += ["", *speed_lines(timing, nine["mediapipe_timing"] if nine else None)]
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
               "wingface, gt box": json.loads((shipped / "common_gt.json").read_text()),
               "wingface, bundled detector": json.loads((shipped / "common_detector.json").read_text())}
    summarise(args.out, reports, timing, fit, nine_points(args.out, common, box_fit))


if __name__ == "__main__":
    main()
