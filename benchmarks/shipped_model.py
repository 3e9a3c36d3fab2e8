"""Reproduce the shipped CNN-6/7 cascade end to end, resumably, and evaluate it.

    python benchmarks/shipped_model.py [--data ../shared/data/300w-subset] [--work runs/shipped]

Steps (each skipped when its output exists; a killed training step resumes from last.pt):
1. prepare the 300w-train cache;
2. train stage 1 (configs/300w-cnn6.yaml);
3. measure stage 1's residuals in the aligned frame (stage-2 crop jitter);
4. train stage 2 (configs/300w-cnn7-stage2.yaml with the measured jitter);
5. refine stage 2: 80 more epochs from its best weights with batch 16 (4x the updates per
   epoch; the first 30 epochs left the network underfitting, train NME ~= test NME);
6. build the half-precision cascade file;
7. evaluate on 300w-common: gt boxes, detector boxes, and gt boxes at 30 and 60 degrees.
Results go to WORK/results/*.json; the model to WORK/wingface-300w-cnn6-cnn7.pt.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from steps import DEFAULT_DATA, REPO, require_data, step, train, train_stage2

STAGE2_REFINEMENT = ["epochs=80", "batch_size=16", "optim.lr=1e-3"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "shipped")
    args = parser.parse_args()
    args.data = str(require_data(args.data))
    work, results = args.work, args.work / "results"
    results.mkdir(parents=True, exist_ok=True)
    cache = work / "cache-300w-train"
    step("prepare", cache / "meta.json", ["prepare", args.data, "--split", "300w-train", "--out", str(cache)])
    stage1, stage2 = work / "stage1-cnn6", work / "stage2-cnn7"
    train("stage 1", "configs/300w-cnn6.yaml", stage1, [f"data={cache}"])
    jitter = train_stage2(stage1, cache, results / "stage1_residuals.json", stage2, [])
    refined = work / "stage2-cnn7-refined"
    train("stage 2 refinement", "configs/300w-cnn7-stage2.yaml", refined,
          [f"data={cache}", f"model.init={stage2 / 'best.pt'}", *STAGE2_REFINEMENT, *jitter])
    cascade = work / "wingface-300w-cnn6-cnn7.pt"
    step("cascade", cascade, ["cascade", "build", str(stage1 / "best.pt"), str(refined / "best.pt"), "--half",
                              "--out", str(cascade)])
    for name, extra in [("gt", []), ("detector", ["--boxes", "detector"]), ("gt_rot30", ["--rotate", "30"]),
                        ("gt_rot60", ["--rotate", "60"]), ("stage1_gt", ["--model", str(stage1 / "best.pt")])]:
        out = results / f"common_{name}.json"
        model = [] if "--model" in extra else ["--model", str(cascade)]
        step(f"evaluate {name}", out, ["evaluate", *model, "--data", args.data, "--split", "300w-common",
                                       *extra, "--json", str(out)])


if __name__ == "__main__":
    main()
