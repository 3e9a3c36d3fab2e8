"""Evaluate a model on a dataset split as papers report it, under two box protocols.

- ``gt``: the axis-aligned box of the ground-truth landmarks, passed unchanged (the model
  adds its own margin).
- ``detector``: end to end with the bundled face detector; the detection that overlaps the
  annotated face best is scored. Faces the detector misses are counted and listed, never
  silently dropped: the summary says how many there were, and the NME is over the rest.
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
from ..data.records import FaceRecord
from ..detection.base import pairwise_iou
from ..geometry import apply_affine, box_from_points, rotation_about
from ..inference.landmarker import Landmarker
from ..schemes import LandmarkScheme
from .metrics import DEFAULT_NORMALISERS, breakdown, group_nme, nme, normaliser, summarise

log = logging.getLogger(__name__)

BOX_PROTOCOLS = ("gt", "detector")
MIN_DETECTION_IOU = 0.3  # a detection must overlap the landmark box this much to count as the face


@dataclass
class Evaluation:
    """Per-face errors (fractions) and bookkeeping of one evaluation run."""

    scheme: LandmarkScheme
    records: list[FaceRecord] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)
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

    def report(self, **info: Any) -> dict[str, Any]:
        """The JSON-ready summary: headline NMEs in %, FR in %, AUC, per-face errors, per-subset and
        per-landmark-group breakdowns."""
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
            "missed_faces": self.missed,
            "failed_images": [{"image": i, "error": e} for i, e in self.failed],
            "per_face": [
                {"image": str(r.image_path), "subset": r.subset, "nme_inter_ocular": round(100 * a, 4),
                 "nme_inter_pupil": round(100 * b, 4)} for r, a, b in zip(self.records, io, ip)
            ],
        }


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
    out_w, out_h = int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos))
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
        bar.update(len(chunk))
    bar.close()
    return result


def write_report(report: dict[str, Any], json_path: str | Path | None, ced_path: str | Path | None,
                 errors: np.ndarray, label: str) -> None:
    """Write the JSON report and the CED plot (both atomically)."""
    import json

    from ..atomic import write_text_atomic
    from .plots import plot_ced

    if json_path:
        write_text_atomic(json_path, json.dumps(report, indent=1))
    if ced_path and len(errors):
        plot_ced({label: errors}, ced_path, title=f"CED, {report.get('split', '')} ({report.get('boxes', '')} boxes)")
