"""Choose the cascade's disagreement share on validation faces, not on the test set.

    python benchmarks/disagreement_share.py CASCADE [--data CACHE] [--shares 0 0.2 0.4 ...] [--json OUT]

CASCADE is an uncalibrated cascade whose last stage has an error head and whose networks were
all trained without the cache's validation split (seed 0, 10%), e.g. the twin of a shipped
model with its own error head. It runs once on those faces from their landmark boxes, then,
for each share ``s`` of a point's reported error taken from the stages' disagreement
(`wingface.inference.cascade.DISAGREEMENT_SHARE`), calibrates the head's scale as `wingface
cascade calibrate` would and reports how well the confidences rank the errors: Spearman's
rho per face (confidence against NME) and per point, as `wingface evaluate` reports them.
Writes benchmarks/results/disagreement_share.json by default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from steps import REPO
from wingface.atomic import write_text_atomic
from wingface.data.cache import load_cache
from wingface.evaluation.calibration import blend_scale, error_readings
from wingface.evaluation.run import confidence_scores
from wingface.inference.cascade import Cascade, blend_errors
from wingface.inference.results import confidences
from wingface.inference.stages import Stage
from wingface.inference.torch_backend import TorchBackend
from wingface.models import load_stages
from wingface.training.pipeline import split_train_val


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cascade")
    parser.add_argument("--data", default=str(REPO / "runs" / "recipes" / "cache-300w-train"))
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "disagreement_share.json")
    args = parser.parse_args()
    if not all(0.0 <= share < 1.0 for share in args.shares):
        parser.error(f"--shares must lie in [0, 1), got {args.shares}")
    cache = load_cache(args.data)
    models = [m.model for m in load_stages(args.cascade, expect_scheme=cache.scheme)]
    _, val = split_train_val(len(cache), 0.1, 0)
    truth = np.stack([cache.points[i] for i in val])
    out, observed, spread = error_readings(Cascade([Stage(m.spec, TorchBackend(m)) for m in models]),
                                           [cache.images[i] for i in val], truth)
    if spread is None:
        parser.error(f"{args.cascade}: no box stage before the last, so there is no disagreement to blend")
    right, left = (truth[:, list(s)].mean(1) for s in cache.scheme.inter_ocular)
    nme = observed / np.linalg.norm(left - right, axis=-1)[:, None]  # [N, L] fractions
    rows = {}
    for share in args.shares:
        k = blend_scale(observed, out[..., 2], spread, share)
        errors = blend_errors(k * out[..., 2], spread, share)
        face, point = zip(*(confidences(p, e, cache.scheme) for p, e in zip(out[..., :2], errors)))
        scores = confidence_scores(np.array(face), nme.mean(1), np.stack(point), nme)
        rows[f"{share:g}"] = {"scale": k, "face_rank_correlation": scores["face_rank_correlation"],
                              "point_rank_correlation": scores["point_rank_correlation"]}
        print(f"share {share:.2f}: scale {k:.3f}  rho per face {scores['face_rank_correlation']:.3f}  "
              f"per point {scores['point_rank_correlation']:.3f}", flush=True)
    result = {"cascade": args.cascade, "faces": len(val), "protocol": "validation split (seed 0, 10%), gt boxes",
              "shares": rows}
    write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
