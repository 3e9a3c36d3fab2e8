"""Choose `KEYPOINT_SHARE` on validation faces, not on the test set: how much of a point's
reported error comes from its distance to the mean shape placed on the detector's keypoints.

    python benchmarks/keypoint_share.py CASCADE [--data CACHE] [--shares 0 0.05 ...] [--json OUT]

CASCADE is an uncalibrated cascade whose stage 2 and error head were trained without the
cache's validation split (seed 0, 10%), e.g. the shipped model's twin with its own head
(`disagreement_share.py` takes the same). Each validation face's full image goes through the
bundled detector. The faces it vouches for are kept: BlazeFace's score is at least
`WEAK_SCORE` and its keypoints read the face within 15 degrees of upright. Those faces are
read as the default `Landmarker` reads them: stage 2 alone from the detector's square.

Two tables, each giving Spearman's rho per face (confidence against NME) and per point:
- each share with the head's scale fitted as `wingface cascade calibrate` would;
- each share with the shipped scale (``--scale``, benchmarks/results/shipped/error_calibration.json),
  which is what the shipped model runs with; beside it, the mean of observed / reported
  error (1 is calibrated).

Writes benchmarks/results/keypoint_share.json by default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from steps import REPO
from wingface.atomic import write_text_atomic
from wingface.data.cache import load_cache
from wingface.data.images import read_image
from wingface.detection import create_detector, pairwise_iou
from wingface.detection.cascade import WEAK_SCORE
from wingface.evaluation.calibration import blend_scale
from wingface.evaluation.run import MIN_DETECTION_IOU, confidence_scores
from wingface.geometry import Squares, angle_difference, box_from_points
from wingface.inference.cascade import Cascade, blend_errors, eye_line_roll, without_orientation
from wingface.inference.results import confidences
from wingface.inference.stages import Stage
from wingface.inference.torch_backend import TorchBackend
from wingface.models import load_stages
from wingface.training.pipeline import split_train_val

UPRIGHT = np.radians(15.0)  # the shipped cascade's de-rotation limit


def vouched_readings(cascade: Cascade, cache, indices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stage-2 outputs [N, L, 3], keypoint shapes [N, L, 2], true points [N, L, 2]), image
    pixels, for the faces of ``indices`` the bundled detector vouches for."""
    detector, truth_all = create_detector(), cache.image_points()
    outputs, shapes, truths = [], [], []
    for i in indices:
        image, truth = read_image(cache.meta["faces"][i]["image"]), truth_all[i]
        found = detector.detect(image)
        if not found:
            continue
        iou = pairwise_iou(np.stack([d.box for d in found]), box_from_points(truth)[None])[:, 0]
        best = found[int(np.argmax(iou))]
        shape = detector.keypoint_shape(best)
        if iou.max() < MIN_DETECTION_IOU or shape is None or best.score < WEAK_SCORE:
            continue
        if abs(angle_difference(eye_line_roll(shape[None], cache.scheme)[0], best.angle)) > UPRIGHT:
            continue
        centre, side, angle = detector.landmark_square(best)
        finals, _ = cascade.readings([image], [Squares(centre[None], np.array([side]), np.array([angle]))])
        outputs.append(finals[0][0])
        shapes.append(shape)
        truths.append(truth)
    return np.stack(outputs), np.stack(shapes), np.stack(truths)


def scores(out: np.ndarray, errors: np.ndarray, nme: np.ndarray, scheme) -> dict[str, float]:
    face, point = zip(*(confidences(p, e, scheme) for p, e in zip(out[..., :2], errors)))
    s = confidence_scores(np.array(face), nme.mean(1), np.stack(point), nme)
    return {"face_rank_correlation": round(s["face_rank_correlation"], 3),
            "point_rank_correlation": round(s["point_rank_correlation"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cascade")
    parser.add_argument("--data", default=str(REPO / "runs" / "recipes" / "cache-300w-train"))
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3])
    calibration = REPO / "benchmarks" / "results" / "shipped" / "error_calibration.json"
    parser.add_argument("--scale", type=float, default=json.loads(calibration.read_text())["scale"])
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "keypoint_share.json")
    args = parser.parse_args()
    cache = load_cache(args.data)
    models = [m.model for m in load_stages(args.cascade, expect_scheme=cache.scheme)]
    cascade = Cascade(without_orientation([Stage(m.spec, TorchBackend(m)) for m in models]))
    _, val = split_train_val(len(cache), 0.1, 0)
    out, shapes, truths = vouched_readings(cascade, cache, val)
    observed = np.linalg.norm(out[..., :2] - truths, axis=-1)
    right, left = (truths[:, list(s)].mean(1) for s in cache.scheme.inter_ocular)
    nme = observed / np.linalg.norm(left - right, axis=-1)[:, None]
    distance = np.linalg.norm(out[..., :2] - shapes, axis=-1)
    fitted, shipped = {}, {}
    print(f"{len(out)} of {len(val)} validation faces vouched for by the detector")
    for share in args.shares:
        k = blend_scale(observed, out[..., 2], distance, share)
        fitted[f"{share:g}"] = {"scale": round(k, 3), **scores(out, blend_errors(k * out[..., 2], distance, share), nme, cache.scheme)}
        errors = blend_errors(args.scale * out[..., 2], distance, share)
        shipped[f"{share:g}"] = {"observed_over_reported": round(float(np.mean(observed / errors)), 3),
                                 **scores(out, errors, nme, cache.scheme)}
        print(f"share {share:.2f}: fitted scale {k:.3f} {fitted[f'{share:g}']}; shipped scale {shipped[f'{share:g}']}")
    result = {"cascade": args.cascade, "faces": len(out), "validation_faces": len(val), "shipped_scale": args.scale,
              "protocol": "validation split (seed 0, 10%), the bundled detector, faces it vouches for, stage 2 alone",
              "fitted_scale": fitted, "shipped_scale_rows": shipped}
    write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
