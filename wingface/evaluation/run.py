"""Evaluate a model on a dataset split as papers report it, under two box protocols.

- ``gt``: the axis-aligned box of the ground-truth landmarks, passed unchanged (the model
  adds its own margin).
- ``detector``: end to end with the bundled face detector; the detection that overlaps the
  annotated face best is scored. Faces the detector misses are counted and listed, never
  silently dropped: the summary says how many there were, and the NME is over the rest.

With a training split's `PoseAnalysis` the report also breaks the NME down by pose: the
test faces' ground-truth shapes are projected on the training faces' pose component (PDB's)
and binned at the quintiles of the training faces' |projection|.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ..data.images import read_image, to_rgb_uint8
from ..data.pdb import PoseAnalysis, project_on
from ..data.records import FaceRecord
from ..detection.base import pairwise_iou
from ..geometry import apply_affine, box_from_points, rotation_about
from ..inference.landmarker import Landmarker
from ..schemes import LandmarkScheme
from .metrics import DEFAULT_NORMALISERS, breakdown, group_nme, nme, normaliser, summarise

log = logging.getLogger(__name__)

BOX_PROTOCOLS = ("gt", "detector")
MIN_DETECTION_IOU = 0.3  # a detection must overlap the landmark box this much to count as the face
POSE_BINS = 5  # pose breakdown: quintiles of the training faces' |projection|


@dataclass
class Evaluation:
    """Per-face errors (fractions) and bookkeeping of one evaluation run."""

    scheme: LandmarkScheme
    records: list[FaceRecord] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    point_confidences: list[np.ndarray] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def _scoring(self, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Targets [N, L, 2], visibility [N, L] and normalisers [N] (pixels) of the scored faces."""
        target = np.stack([r.points for r in self.records]).astype(np.float64)
        visible = np.stack([np.ones(len(r.points), bool) if r.visible is None else r.visible for r in self.records])
        # The box normaliser uses the dataset's face boxes where it has them (AFLW), else landmark boxes.
        boxes = np.stack([r.box if r.box is not None else box_from_points(r.points) for r in self.records])
        return target, visible, normaliser(target, self.scheme, kind, boxes=boxes)

    def errors(self, kind: str) -> np.ndarray:
        """Per-face NME (fraction) with normaliser ``kind`` for the faces that were scored."""
        if not self.records:
            return np.zeros(0)
        target, visible, norm = self._scoring(kind)
        return nme(np.stack(self.predictions), target, norm, visible)

    def group_errors(self, kind: str) -> dict[str, float]:
        """NME in % of each of the scheme's landmark groups (jaw, eyes, ...) with normaliser ``kind``."""
        if not self.records or not self.scheme.groups:
            return {}
        target, visible, norm = self._scoring(kind)
        return group_nme(np.stack(self.predictions), target, norm, self.scheme.groups, visible)

    def report(self, pose: PoseAnalysis | None = None, **info: Any) -> dict[str, Any]:
        """The JSON-ready summary: headline NMEs in %, FR in %, AUC, per-face errors, per-subset and
        per-landmark-group breakdowns, and with ``pose`` (the training split's analysis) the
        per-pose-bin breakdown of `_pose_breakdown` (else ``"pose"`` is None)."""
        io, ip = self.errors("inter_ocular"), self.errors("inter_pupil")
        s_io, s_ip = _summary(io), _summary(ip)
        subsets = [face_labels(r) for r in self.records]
        group_kind = DEFAULT_NORMALISERS.get(self.scheme.name, ("inter_ocular",))[0]
        return {
            **info,
            "faces": len(self.records),
            "missed": len(self.missed),
            "failed": len(self.failed),
            "nme_inter_ocular": s_io["nme"], "nme_inter_pupil": s_ip["nme"], "nme_box": _summary(self.errors("box"))["nme"],
            "fr_10": s_io["fr@10"], "auc_10": s_io["auc@10"], "fr_8": s_io["fr@8"], "auc_8": s_io["auc@8"],
            "inter_pupil": {"fr_10": s_ip["fr@10"], "auc_10": s_ip["auc@10"], "fr_8": s_ip["fr@8"], "auc_8": s_ip["auc@8"]},
            "subsets": {"inter_ocular": breakdown(io, subsets) if len(io) else {},
                        "inter_pupil": breakdown(ip, subsets) if len(ip) else {}},
            "groups": {"normaliser": group_kind, "nme": self.group_errors(group_kind)},
            "pose": None if pose is None else self._pose_breakdown(pose, io, ip),
            "confidence": self._confidence_scores(io),
            "missed_faces": self.missed,
            "failed_images": [{"image": i, "error": e} for i, e in self.failed],
            "per_face": [
                {"image": str(r.image_path), "subset": r.subset, "nme_inter_ocular": round(100 * a, 4),
                 "nme_inter_pupil": round(100 * b, 4), "confidence": None if not np.isfinite(c) else round(c, 4)}
                for r, a, b, c in zip(self.records, io, ip, self.confidences)
            ],
        }

    def _confidence_scores(self, io: np.ndarray) -> dict[str, Any] | None:
        """How well the confidences predict the errors (None without confidences): see
        `confidence_scores`; point errors are inter-ocular fractions."""
        conf = np.asarray(self.confidences, dtype=np.float64)
        if not len(conf) or not np.all(np.isfinite(conf)):
            return None
        target, _, norm = self._scoring("inter_ocular")
        point_errors = np.linalg.norm(np.stack(self.predictions) - target, axis=-1) / norm[:, None]
        return confidence_scores(conf, io, np.stack(self.point_confidences), point_errors)

    def _pose_breakdown(self, analysis: PoseAnalysis, io: np.ndarray, ip: np.ndarray) -> dict[str, Any]:
        """NME in % (inter-ocular ``io`` and inter-pupil ``ip``, per-face fractions [N]) and FR@10 in %
        of the scored faces per pose bin of their ground truth:
        ``{"component": 0-based index, "edges": [POSE_BINS + 1], "bins": [...]}``, each bin
        ``{"range": [lo, hi], "n", "nme_inter_ocular", "nme_inter_pupil", "fr_10"}`` (None when empty).

        Edges are |projection| (the analysis' unit-RMS frame): 0, the training faces'
        quintiles, their maximum; the last bin also takes test faces beyond that maximum.
        """
        edges = pose_edges(analysis)
        size = np.abs(project_on(analysis, np.stack([r.points for r in self.records]))) if self.records else np.zeros(0)
        which = np.searchsorted(edges[1:-1], size, side="right")
        bins = []
        for k in range(POSE_BINS):
            in_bin = which == k
            s_io, s_ip = _summary(io[in_bin]), _summary(ip[in_bin])
            bins.append({"range": [float(edges[k]), float(edges[k + 1])], "n": int(in_bin.sum()),
                         "nme_inter_ocular": s_io["nme"], "nme_inter_pupil": s_ip["nme"], "fr_10": s_io["fr@10"]})
        return {"component": analysis.index, "edges": edges.tolist(), "bins": bins}


def confidence_scores(confidence: np.ndarray, errors: np.ndarray, point_confidence: np.ndarray,
                      point_errors: np.ndarray, failure: float = 0.1) -> dict[str, Any]:
    """Whether low confidence flags large errors.

    Args:
        confidence: [N] face confidences; errors: [N] their NME (fractions).
        point_confidence, point_errors: [N, L] the same per point.
        failure: NME above which a face is a failure.
    Returns:
        ``face_rank_correlation`` (Spearman of -confidence with NME; 1 is perfect),
        ``point_rank_correlation`` (the same over all points), ``failures`` (count), and per
        share dropped (0, 5, 10, 20% least confident faces) the NME % and FR % of the rest and
        the share of the failures removed.
    """
    order = np.argsort(confidence, kind="stable")  # least confident first
    failed = errors > failure
    dropped = {}
    for share in (0.0, 0.05, 0.10, 0.20):
        cut = int(round(share * len(errors)))
        rest, gone = order[cut:], order[:cut]
        dropped[f"{round(100 * share)}%"] = {
            "nme": float(100 * errors[rest].mean()), "fr_10": float(100 * failed[rest].mean()),
            "failures_removed": float(failed[gone].sum() / failed.sum()) if failed.any() else None,
        }
    return {
        "face_rank_correlation": _rank_correlation(-confidence, errors),
        "point_rank_correlation": _rank_correlation(-point_confidence.ravel(), point_errors.ravel()),
        "failures": int(failed.sum()),
        "dropping_least_confident": dropped,
    }


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two [N] arrays; NaN when either is constant (no ranking to compare)."""
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b)[0])


def pose_edges(analysis: PoseAnalysis) -> np.ndarray:
    """[POSE_BINS + 1] |projection| bin edges from the analysed (training) faces: 0, the
    quintiles of their |projection| and its maximum."""
    edges = np.quantile(np.abs(analysis.projections), np.linspace(0.0, 1.0, POSE_BINS + 1))
    edges[0] = 0.0
    return edges


def _summary(errors: np.ndarray) -> dict[str, float | None]:
    """`summarise`, or None for every figure when no face was scored (e.g. the detector found none)."""
    if len(errors):
        return summarise(errors)
    return {k: None for k in ("nme", "fr@10", "auc@10", "fr@8", "auc@8")}


def face_labels(record: FaceRecord) -> list[str]:
    """Breakdown labels of a face: its subset, plus every true scalar attribute flag (e.g. WFLW's
    ``pose``, ``occlusion``); array attributes such as COFW's per-point occlusion are not labels."""
    flags = [k for k, v in record.attributes.items()
             if isinstance(v, (bool, int, np.bool_, np.integer)) and k != "index" and bool(v)]
    return [record.subset or "all", *flags]


def _match_detection(faces, gt_box: np.ndarray):
    if not faces:
        return None
    iou = pairwise_iou(np.stack([f.box for f in faces]), gt_box[None])[:, 0]
    best = int(np.argmax(iou))
    return faces[best] if iou[best] >= MIN_DETECTION_IOU else None


def rotate_face(image: np.ndarray, points: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate an image (counter-clockwise on screen) onto a canvas large enough to keep all of
    it, and its points [L, 2] with it; returns (image, points)."""
    h, w = image.shape[:2]
    angle = np.radians(degrees)
    cos, sin = abs(np.cos(angle)), abs(np.sin(angle))
    # The tolerance keeps cos(90 deg) = 6e-17 from adding a pixel to a quarter turn's canvas.
    out_w, out_h = (int(np.ceil(v - 1e-6)) for v in (w * cos + h * sin, w * sin + h * cos))
    m = rotation_about(np.array([(w - 1) / 2, (h - 1) / 2]), angle)
    m[:, 2] += [(out_w - w) / 2, (out_h - h) / 2]
    rotated = cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return rotated, apply_affine(m, points).astype(np.float32)


def evaluate(landmarker: Landmarker, records: Sequence[FaceRecord], *, boxes: str = "gt",
             progress: bool = True, batch_images: int = 16, rotate_deg: float = 0.0) -> Evaluation:
    """Run ``landmarker`` on every record and collect its errors.

    ``rotate_deg`` rotates every test image and its annotation first (robustness to in-plane
    rotation; with ``gt`` boxes the box is that of the rotated landmarks). Unreadable images
    are listed in ``failed`` and the rest are still evaluated.
    """
    if boxes not in BOX_PROTOCOLS:
        raise ValueError(f"boxes must be one of {BOX_PROTOCOLS}, got {boxes!r}")
    result = Evaluation(landmarker.scheme)
    bar = tqdm(total=len(records), desc=f"evaluate ({boxes} boxes)", unit="face", disable=None if progress else True)
    for start in range(0, len(records), batch_images):
        chunk = records[start:start + batch_images]
        images, kept = [], []
        for rec in chunk:
            try:
                image = to_rgb_uint8(rec.image, rec.name) if rec.image is not None else read_image(rec.image_path)
                if rotate_deg:
                    image, points = rotate_face(image, rec.points, rotate_deg)
                    rec = replace(rec, points=points)
                images.append(image)
                kept.append(rec)
            except (ValueError, OSError) as err:
                log.warning("skipping %s: %s", rec.name, err)
                result.failed.append((rec.name, str(err)))
        gt_boxes = [box_from_points(r.points) for r in kept]
        if boxes == "gt":
            found = landmarker.predict_batch(images, [[b] for b in gt_boxes])
            faces = [f[0] for f in found]
        else:
            found = landmarker.predict_batch(images)
            faces = [_match_detection(f, b) for f, b in zip(found, gt_boxes)]
        for rec, face in zip(kept, faces):
            if face is None:
                result.missed.append(rec.name)
            else:
                result.records.append(rec)
                result.predictions.append(face.points)
                # Duck-typed faces (peers such as dlib, test oracles) may carry no confidence.
                result.confidences.append(getattr(face, "confidence", np.nan))
                result.point_confidences.append(getattr(face, "point_confidence", np.full(len(face.points), np.nan)))
        bar.update(len(chunk))
    bar.close()
    return result


def write_report(report: dict[str, Any], json_path: str | Path | None, ced_path: str | Path | None,
                 errors: np.ndarray, label: str, confidence_path: str | Path | None = None,
                 confidence: Sequence[float] = ()) -> None:
    """Write the JSON report, the CED plot and (given finite confidences) the confidence-versus-
    error plot, all atomically."""
    import json

    from ..atomic import write_text_atomic
    from .plots import plot_ced, plot_confidence

    if json_path:
        write_text_atomic(json_path, json.dumps(report, indent=1))
    title = f"{report.get('split', '')} ({report.get('boxes', '')} boxes)"
    if ced_path and len(errors):
        plot_ced({label: errors}, ced_path, title=f"CED, {title}")
    if confidence_path and len(errors) and np.all(np.isfinite(confidence)):
        plot_confidence(np.asarray(confidence), errors, confidence_path, title=f"{label}, {title}")
