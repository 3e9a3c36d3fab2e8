"""What averaging several stage 2s would buy: the cascade's last stage averaged with others.

    python benchmarks/stage2_ensemble.py CASCADE OTHER.pt [OTHER.pt ...] [--flip-test] [--json OUT]

Runs CASCADE on 300w-common with ground-truth boxes, its last stage's points replaced by the
mean of that stage and the last stage of every OTHER (cascade or checkpoint files whose last
stage has the same crop contract: aligned CNN-7s trained behind the same stage 1). The
error column, when present, stays CASCADE's. An upper bound for distilling the ensemble into
one network, at K times stage 2's cost. Writes benchmarks/results/recipes/stage2_ensemble.json
(one entry per call, keyed by the models and the flip setting) by default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from steps import DEFAULT_DATA, REPO, require_data
from wingface import Landmarker
from wingface.atomic import write_text_atomic
from wingface.data.datasets import open_dataset
from wingface.evaluation.run import evaluate
from wingface.inference.loading import load_stages
from wingface.inference.stages import Backend, mirror_averaged


def averaged(first: Backend, others: list[Backend]) -> Backend:
    """A backend returning ``first``'s output with its points [N, L, :2] averaged over all."""
    def run(crops: np.ndarray) -> np.ndarray:
        out = first(crops)
        points = np.mean([out[..., :2]] + [other(crops)[..., :2] for other in others], axis=0)
        return np.concatenate([points, out[..., 2:]], axis=-1)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cascade", help="cascade .pt whose last stage is averaged")
    parser.add_argument("others", nargs="+", help="files whose last stage joins the average")
    parser.add_argument("--flip-test", action="store_true", help="also average each network with its mirrored crop")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "recipes" / "stage2_ensemble.json")
    args = parser.parse_args()
    records = open_dataset(require_data(args.data)).read("300w-common").records
    landmarker = Landmarker(args.cascade, detector=None, precision="fp32", flip_test=args.flip_test)
    last = landmarker.cascade.stages[-1]
    others = [load_stages(path)[-1] for path in args.others]
    if any(o.spec.crop != last.spec.crop or o.spec.input_size != last.spec.input_size for o in others):
        parser.error("every other last stage needs the crop mode and input size of the cascade's last stage")
    backends = [mirror_averaged(o.backend, o.spec.scheme) if args.flip_test else o.backend for o in others]
    last.backend = averaged(last.backend, backends)
    result = evaluate(landmarker, records)
    figures = {kind: round(100 * float(result.errors(kind).mean()), 3) for kind in ("inter_ocular", "inter_pupil")}
    entry = {"cascade": args.cascade, "others": args.others, "flip_test": args.flip_test, "faces": len(records),
             "boxes": "gt", "precision": "fp32", **figures}
    table = json.loads(args.json.read_text()) if args.json.exists() else {}
    table[" + ".join([args.cascade, *args.others]) + (" (flip)" if args.flip_test else "")] = entry
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(table, indent=1) + "\n")
    print(f"{len(others) + 1} stage 2s averaged{' with flip test' if args.flip_test else ''}: "
          f"{figures['inter_ocular']:.3f}% inter-ocular, {figures['inter_pupil']:.3f}% inter-pupil")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
