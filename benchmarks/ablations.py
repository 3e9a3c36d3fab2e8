"""The paper's ablations on 300-W, every row on the same schedule, resumably.

    python benchmarks/ablations.py [--data ../shared/data/300w-subset] [--epochs 15] [--work runs/ablations]

Rows (train on 300w-train, evaluate on 300w-common with ground-truth boxes):
- losses for CNN-6: L2, L1, smooth L1, Wing (w=10, eps=2), Soft Wing;
- PDB off (Wing);
- Wing sensitivity: w in {5, 15} at eps=2, eps in {0.5, 5} at w=10;
- one stage (CNN-6, CNN-7 alone) versus the two-stage CNN-6/7 (stage 2 jittered by
  stage 1's measured residuals);
- PDB off for as many steps as PDB on, and Wing with another seed (run-to-run noise);
- Wing trained under bf16 autocast (``precision=bf16``), which must land within that noise.
Every row uses configs/300w-cnn6.yaml (or the stage-2 config) with ``epochs`` overridden
alike. A finished row is skipped; a killed one resumes from its last.pt. The table, each
run's config and log, and CED plots go to benchmarks/results/ablations/.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from steps import DEFAULT_DATA, REPO, prepare_cache, require_data, step, train, train_stage2


@dataclass(frozen=True)
class Row:
    """One ablation: a CNN-6 config with ``overrides``, in ``group`` of the table.

    ``epochs_scale`` multiplies the common epoch count: PDB makes an epoch 2.2 times longer
    (3,978 samples instead of 1,811), so "PDB off" is also run for the same number of steps.
    """

    name: str
    group: str
    label: str
    overrides: tuple[str, ...] = ()
    epochs_scale: float = 1.0

    def epochs(self, common: int) -> int:
        return max(1, round(common * self.epochs_scale))


WING = Row("cnn6_wing", "loss", "CNN-6, Wing (w=10, eps=2)")
ROWS = (
    Row("cnn6_l2", "loss", "CNN-6, L2", ("loss.name=l2", "loss.params=null")),
    Row("cnn6_l1", "loss", "CNN-6, L1", ("loss.name=l1", "loss.params=null")),
    Row("cnn6_smooth_l1", "loss", "CNN-6, smooth L1", ("loss.name=smooth_l1", "loss.params=null")),
    WING,
    Row("cnn6_soft_wing", "loss", "CNN-6, Soft Wing (2, 20, 0.5)", ("loss.name=soft_wing", "loss.params=null")),
    Row("cnn6_wing_no_pdb", "pdb", "CNN-6, Wing, PDB off (same epochs)", ("pdb.enabled=false",)),
    Row("cnn6_wing_w5", "wing_grid", "Wing w=5, eps=2", ("loss.params.w=5",)),
    Row("cnn6_wing_w15", "wing_grid", "Wing w=15, eps=2", ("loss.params.w=15",)),
    Row("cnn6_wing_eps0.5", "wing_grid", "Wing w=10, eps=0.5", ("loss.params.eps=0.5",)),
    Row("cnn6_wing_eps5", "wing_grid", "Wing w=10, eps=5", ("loss.params.eps=5",)),
    Row("cnn7_wing", "stages", "CNN-7 alone, Wing", ("model.arch=cnn7",)),
    Row("cnn6_wing_no_pdb_steps", "pdb", "CNN-6, Wing, PDB off (same steps)", ("pdb.enabled=false",), 3978 / 1811),
    Row("cnn6_wing_seed1", "noise", "CNN-6, Wing, seed 1 (run-to-run noise)", ("seed=1",)),
    Row("cnn6_wing_bf16", "noise", "CNN-6, Wing, bf16 autocast (precision parity)", ("precision=bf16",)),
)
CASCADE = Row("cnn6_cnn7_wing", "stages", "CNN-6/7 two-stage, Wing")


def evaluate(row: Row, model: Path, data: str, results: Path) -> Path:
    out = results / f"{row.name}.json"
    step(f"evaluate {row.name}", out, ["evaluate", "--model", str(model), "--data", data, "--split", "300w-common",
                                      "--label", row.label, "--json", str(out)])
    return out


def run_cascade(stage1: Path, cache: Path, work: Path, results: Path, epochs: int) -> Path:
    """Stage 2 on stage 1's measured residuals, then the cascade file; returns its path."""
    stage2 = work / "cnn7_stage2"
    train_stage2(stage1, cache, results / "cnn6_wing_residuals.json", stage2, [f"epochs={epochs}"])
    keep_run(stage2, results / "cnn7_stage2")
    cascade = work / "cnn6_cnn7.pt"
    step("cascade", cascade, ["cascade", "build", str(stage1 / "best.pt"), str(stage2 / "best.pt"), "--out", str(cascade)])
    return cascade


def keep_run(run: Path, dest: Path) -> None:
    """Copy a run's config, log and curves (not its weights) next to the results."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "log.csv", "curves.png"):
        if (run / name).exists():
            shutil.copy2(run / name, dest / name)


def summarise(results: Path, rows: list[Row], epochs: int) -> None:
    """Write ablations.json, ablations.md and one CED plot per group."""
    from wingface.evaluation.plots import plot_ced

    table, curves = [], {}
    for row in rows:
        report = json.loads((results / f"{row.name}.json").read_text())
        log = results / (row.name if row is not CASCADE else "cnn7_stage2") / "log.csv"
        table.append({"name": row.name, "group": row.group, "label": row.label, "overrides": list(row.overrides),
                      "epochs": row.epochs(epochs), "nme_inter_ocular": round(report["nme_inter_ocular"], 3),
                      "nme_inter_pupil": round(report["nme_inter_pupil"], 3), "fr_10": round(report["fr_10"], 2),
                      "auc_10": round(report["auc_10"], 4), "train_seconds": train_seconds(log)})
        curves.setdefault(row.group, {})[row.label] = [f["nme_inter_ocular"] / 100 for f in report["per_face"]]
    for group in ("pdb", "wing_grid", "stages", "noise"):  # each comparison drawn against the Wing CNN-6 row
        if group in curves and WING.label in curves.get("loss", {}):
            curves[group] = {WING.label: curves["loss"][WING.label], **curves[group]}
    (results / "ablations.json").write_text(json.dumps({"split": "300w-common", "boxes": "gt", "rows": table}, indent=1))
    lines = ["| group | row | epochs | inter-ocular % | inter-pupil % | FR@10 % | AUC@10 | train s |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['group']} | {r['label']} | {r['epochs']} | {r['nme_inter_ocular']:.3f} | {r['nme_inter_pupil']:.3f} | "
              f"{r['fr_10']:.2f} | {r['auc_10']:.4f} | {r['train_seconds']:.0f} |" for r in table]
    (results / "ablations.md").write_text("\n".join(lines) + "\n")
    for group, group_curves in curves.items():
        plot_ced(group_curves, results / f"ced_{group}.png", title=f"300w-common, {epochs} epochs: {group}")
    print("\n".join(lines))


def train_seconds(log: Path) -> float:
    """Wall time of a run from the last line of its log.csv (0 when absent)."""
    if not log.exists():
        return 0.0
    last = log.read_text().strip().splitlines()[-1].split(",")
    return float(last[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=15, help="the one schedule every row trains for")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "ablations")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "ablations")
    parser.add_argument("--only", nargs="*", help="row names to run (default: all)")
    args = parser.parse_args()
    data = str(require_data(args.data))
    work, results = args.work, args.results
    results.mkdir(parents=True, exist_ok=True)
    cache = prepare_cache(data, work)
    rows = [r for r in (*ROWS, CASCADE) if not args.only or r.name in args.only]
    for i, row in enumerate(rows, 1):
        print(f"=== row {i}/{len(rows)}: {row.label}", flush=True)
        if row is CASCADE:
            model = run_cascade(work / WING.name, cache, work, results, args.epochs)
        else:
            train(row.name, "configs/300w-cnn6.yaml", work / row.name,
                  [f"data={cache}", f"epochs={row.epochs(args.epochs)}", *row.overrides])
            keep_run(work / row.name, results / row.name)
            model = work / row.name / "best.pt"
        evaluate(row, model, data, results)
    # The table always covers every row with a result, whichever rows this run trained.
    summarise(results, [r for r in (*ROWS, CASCADE) if (results / f"{r.name}.json").exists()], args.epochs)


if __name__ == "__main__":
    main()
