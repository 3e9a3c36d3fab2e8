"""How much of the cascade's error is stage 1's: the last stage fed ground-truth points.

    python benchmarks/stage2_oracle.py [--model PT] [--data ../shared/data/300w-subset] [--json OUT]

For every 300w-common face, the cascade's aligned stages run from the annotated points
(`Landmarker.predict_from_points`: the crop a perfect stage 1 would give). If that NME is
close to the full cascade's (`wingface evaluate`, gt boxes), stage 1 is not what limits
accuracy. Writes benchmarks/results/recipes/stage2_oracle.json by default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from steps import DEFAULT_DATA, REPO, require_data
from wingface import Landmarker
from wingface.data.datasets import open_dataset
from wingface.data.images import read_image
from wingface.evaluation.metrics import nme, normaliser


def oracle_nme(landmarker: Landmarker, records) -> dict[str, float]:
    """Mean inter-ocular and inter-pupil NME (%) of the aligned stages run from the true points."""
    predictions, targets = [], []
    for record in tqdm(records, desc="from true points", unit="face"):
        image = read_image(record.image_path)
        predictions.append(landmarker.predict_from_points(image, [record.points])[0].points)
        targets.append(record.points)
    predictions, targets = np.stack(predictions), np.stack(targets)
    return {kind: round(100 * float(nme(predictions, targets, normaliser(targets, landmarker.scheme, kind)).mean()), 3)
            for kind in ("inter_ocular", "inter_pupil")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="cascade .pt (default: the shipped one)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "recipes" / "stage2_oracle.json")
    args = parser.parse_args()
    records = open_dataset(require_data(args.data)).read("300w-common").records
    landmarker = Landmarker(args.model, detector=None, precision="fp32")
    nme_pct = oracle_nme(landmarker, records)
    report = {"model": args.model or "shipped", "split": "300w-common", "faces": len(records),
              "precision": "fp32", "crops": "aligned from the annotated points", **nme_pct}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"aligned stages from the true points: {nme_pct['inter_ocular']:.3f}% inter-ocular, "
          f"{nme_pct['inter_pupil']:.3f}% inter-pupil")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
