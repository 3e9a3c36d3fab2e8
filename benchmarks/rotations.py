"""Faces at any roll, and how well confidence flags the failures: one table over angles.

    python benchmarks/rotations.py [--model M] [--data ../shared/data/300w-subset] [--out DIR]

For each angle in ANGLES and each box protocol (``gt``: the box of the rotated landmarks;
``detector``: the bundled detector end to end), runs
``wingface evaluate --rotate DEG --boxes B --precision P`` (default fp32) on 300w-common and writes its JSON (with the
pose and confidence sections) to OUT/common_{gt|detector}_rot{DEG}.json, skipped when it
exists. Then writes OUT/rotations.md and OUT/rotations.json: inter-ocular and inter-pupil
NME, FR@10, faces found, and the confidence figures, with each angle's NME relative to
upright.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from steps import DEFAULT_DATA, REPO, require_data, step

from wingface.atomic import write_text_atomic

ANGLES = (0, 45, 90, 135, 180, -90)
PROTOCOLS = ("gt", "detector")


def evaluate_all(model: str | None, data: str, out: Path, precision: str = "fp32") -> dict[tuple[str, int], dict]:
    """Every (protocol, angle) report at ``precision``, evaluated where missing."""
    reports = {}
    for boxes in PROTOCOLS:
        for angle in ANGLES:
            path = out / f"common_{boxes}_rot{angle}.json"
            model_args = ["--model", model] if model else []
            step(f"{boxes} boxes, {angle} degrees", path,
                 ["evaluate", *model_args, "--data", data, "--split", "300w-common", "--boxes", boxes,
                  "--rotate", str(angle), "--precision", precision, "--json", str(path)])
            reports[boxes, angle] = json.loads(path.read_text())
    return reports


def summary_rows(reports: dict[tuple[str, int], dict]) -> list[dict]:
    """One row per (protocol, angle): NMEs in %, FR@10 in %, faces found, confidence figures."""
    rows = []
    for (boxes, angle), r in reports.items():
        upright = reports[boxes, 0]["nme_inter_ocular"]
        conf = r.get("confidence") or {}
        drop = conf.get("dropping_least_confident", {}).get("5%", {})
        rows.append({
            "boxes": boxes, "angle": angle, "faces": r["faces"], "missed": r["missed"],
            "nme_inter_ocular": r["nme_inter_ocular"], "nme_inter_pupil": r["nme_inter_pupil"], "fr_10": r["fr_10"],
            "vs_upright": None if r["nme_inter_ocular"] is None else r["nme_inter_ocular"] / upright - 1,
            "face_rank_correlation": conf.get("face_rank_correlation"),
            "point_rank_correlation": conf.get("point_rank_correlation"),
            "failures": conf.get("failures"), "failures_removed_by_5pct": drop.get("failures_removed"),
        })
    return rows


def markdown(rows: list[dict]) -> str:
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    lines = ["| boxes | angle | faces found | IO % | vs upright | IP % | FR@10 % | conf. rank corr. (face / point) "
             "| failures | removed by dropping 5% least confident |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['boxes']} | {r['angle']} | {r['faces']} of {r['faces'] + r['missed']} "
                     f"| {num(r['nme_inter_ocular'], '.3f')} | {num(r['vs_upright'], '+.1%')} "
                     f"| {num(r['nme_inter_pupil'], '.3f')} | {num(r['fr_10'], '.2f')} "
                     f"| {num(r['face_rank_correlation'], '.3f')} / {num(r['point_rank_correlation'], '.3f')} "
                     f"| {num(r['failures'], 'd')} | {num(r['failures_removed_by_5pct'], '.0%')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model to evaluate (default: the shipped one)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "rotation")
    parser.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16", "int8"),
                        help="network arithmetic (default fp32: the model's own accuracy; auto: the default path)")
    args = parser.parse_args()
    data = str(require_data(args.data))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(evaluate_all(args.model, data, args.out, args.precision))
    write_text_atomic(args.out / "rotations.json", json.dumps(rows, indent=1) + "\n")
    table = markdown(rows)
    write_text_atomic(args.out / "rotations.md", table)
    print(table)


if __name__ == "__main__":
    main()
