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
from scipy.optimize import brentq
from scipy.stats import spearmanr

from steps import REPO
from wingface.atomic import write_text_atomic
from wingface.data.cache import load_cache
from wingface.geometry import squares_from_points
from wingface.inference.cascade import Cascade, disagreement
from wingface.inference.results import confidences
from wingface.inference.stages import Stage
from wingface.inference.torch_backend import TorchBackend
from wingface.models import load_stages
from wingface.training.pipeline import split_train_val


def share_scale(observed: np.ndarray, expected: np.ndarray, spread: np.ndarray, share: float) -> float:
    """k with ``mean(observed / ((1 - share) * k * expected + share * spread)) = 1`` (pixels)."""
    def excess(k: float) -> float:
        return float(np.mean(observed / ((1 - share) * k * expected + share * spread))) - 1.0

    return float(brentq(excess, 1e-6, 1e6, xtol=1e-12)) if share < 1 else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cascade")
    parser.add_argument("--data", default=str(REPO / "runs" / "recipes" / "cache-300w-train"))
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "disagreement_share.json")
    args = parser.parse_args()
    cache = load_cache(args.data)
    models = [m.model for m in load_stages(args.cascade, expect_scheme=cache.scheme)]
    _, val = split_train_val(len(cache), 0.1, 0)
    truth = np.stack([cache.points[i] for i in val])
    squares = [squares_from_points(truth[k][None], margin=0.0) for k in range(len(val))]
    finals, box_points = Cascade([Stage(m.spec, TorchBackend(m)) for m in models]).readings(
        [cache.images[i] for i in val], squares)
    out = np.concatenate(finals)
    observed = np.linalg.norm(out[..., :2] - truth, axis=-1)  # [N, L] pixels
    spread = disagreement(out, np.concatenate(box_points))
    right, left = (truth[:, list(s)].mean(1) for s in cache.scheme.inter_ocular)
    nme = observed / np.linalg.norm(left - right, axis=-1)[:, None]  # [N, L] fractions
    rows = {}
    for share in args.shares:
        k = share_scale(observed, out[..., 2], spread, share)
        errors = (1 - share) * k * out[..., 2] + share * spread
        face, point = zip(*(confidences(p, e, cache.scheme) for p, e in zip(out[..., :2], errors)))
        rows[f"{share:g}"] = {"scale": k, "face_rank_correlation": float(spearmanr(-np.array(face), nme.mean(1))[0]),
                              "point_rank_correlation": float(spearmanr(-np.stack(point).ravel(), nme.ravel())[0])}
        print(f"share {share:.2f}: scale {k:.3f}  rho per face {rows[f'{share:g}']['face_rank_correlation']:.3f}  "
              f"per point {rows[f'{share:g}']['point_rank_correlation']:.3f}", flush=True)
    result = {"cascade": args.cascade, "faces": len(val), "protocol": "validation split (seed 0, 10%), gt boxes",
              "shares": rows}
    write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
