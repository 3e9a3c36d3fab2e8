"""Recipe search for both stages and the data-scaling curve on 300-W, resumably.

    python benchmarks/recipes.py [--data ../shared/data/300w-subset] [--work runs/recipes] [--only NAME ...]

Every row trains with its config plus its overrides (default precision: bf16 where the CPU
has it fast) on 300w-train and is evaluated on 300w-common with ground-truth boxes. Groups:
- ``recipe``: CNN-6 (configs/300w-cnn6.yaml) alone: batch size (learning rate scaled), batch
  norm, learning rate, augmentation and length, each against the 40-epoch baseline;
- ``scaling``: that baseline on 25, 50 and 75% of the training faces (nested subsets,
  `train_fraction`), each for the baseline's number of updates, so that a smaller set is not
  also a shorter schedule; the baseline is the 100% point;
- ``stage2``: CNN-7 (configs/300w-cnn7-stage2.yaml) trained from scratch, evaluated behind
  the shipped stage 1 (split out of the shipped cascade) as a two-stage cascade: weight
  decay, crop jitter and the Wing loss's scale against the former stage 2's first 30 epochs
  (``FORMER_STAGE2``; the winner, ``s2_wd05_w20``, is now configs/300w-cnn7-stage2.yaml);
  Session 9 added dropout and stronger weight decay rows, and the integral (soft-argmax
  heatmap) regressor at full and 0.75 width;
- ``scaling2``: that winner on 25, 50 and 75% of the training faces for its number of updates,
  behind the same shipped stage 1: how much of stage 2's error is data.
A finished row is skipped; a killed one resumes from its last.pt. The table (recipes.md,
recipes.json, with CPU minutes per row) and the scaling plot go to benchmarks/results/recipes/.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from ablations import keep_run, train_seconds
from steps import DEFAULT_DATA, REPO, prepare_cache, require_data, step, train


STAGE1_CONFIG, STAGE2_CONFIG = "configs/300w-cnn6.yaml", "configs/300w-cnn7-stage2.yaml"
# The shipped stage 2's crop jitter (stage 1's measured residual spread, `wingface cascade residuals`).
SHIPPED_JITTER = ("augment.shift=0.0231", "augment.scale=0.0786", "augment.rotation_deg=4.13")
# The stage-2 recipe before session 7 (the rows compare against it; the config now holds the winner).
FORMER_STAGE2 = ("optim.weight_decay=1e-4", "loss.params.w=10", "loss.params.eps=2")


@dataclass(frozen=True)
class Row:
    """One run: ``overrides`` on ``config`` for ``epochs`` epochs."""

    name: str
    group: str
    label: str
    epochs: int
    overrides: tuple[str, ...] = ()
    fraction: float = 1.0  # share of the training faces
    config: str = STAGE1_CONFIG

    def all_overrides(self) -> list[str]:
        extra = [f"train_fraction={self.fraction}"] if self.fraction < 1.0 else []
        return [f"epochs={self.epochs}", *self.overrides, *extra]


BASE_EPOCHS = 40  # a fraction f of the faces trains BASE_EPOCHS / f epochs: the baseline's updates
BASELINE = Row("b64", "recipe", "batch 64, lr 2e-3 (baseline)", BASE_EPOCHS)
STAGE2_EPOCHS = 30  # the same for the stage-2 scaling rows, against the stage-2 recipe's first part
STAGE2_BASELINE = Row("s2_wd05_w20", "stage2", "CNN-7, weight decay 0.05 and Wing w 20, eps 4", STAGE2_EPOCHS,
                      (*SHIPPED_JITTER, "optim.weight_decay=0.05", "loss.params.w=20", "loss.params.eps=4"),
                      config=STAGE2_CONFIG)
ROWS = (
    BASELINE,
    Row("b64_bn", "recipe", "batch 64, lr 2e-3, batch norm", BASE_EPOCHS, ("model.batch_norm=true",)),
    Row("b16", "recipe", "batch 16, lr 1e-3", BASE_EPOCHS, ("batch_size=16", "optim.lr=1e-3")),
    Row("b64_lr4e-3", "recipe", "batch 64, lr 4e-3", BASE_EPOCHS, ("optim.lr=4e-3",)),
    Row("b64_aug", "recipe", "batch 64, wider box jitter (shift 0.15, scale 0.25)", BASE_EPOCHS,
        ("augment.shift=0.15", "augment.scale=0.25")),
    Row("b64_e800", "recipe", "batch 64, lr 2e-3, 800 epochs (the paper's length)", 800),
    *(Row(f"scale{round(f * 100)}", "scaling", f"{round(f * 100)}% of the training faces", round(BASE_EPOCHS / f),
          fraction=f) for f in (0.25, 0.5, 0.75)),
    Row("s2_base", "stage2", "CNN-7, the former stage 2's first 30 epochs (batch 64, lr 2e-3)", 30,
        (*SHIPPED_JITTER, *FORMER_STAGE2), config=STAGE2_CONFIG),
    Row("s2_wd05", "stage2", "CNN-7, weight decay 0.05 (former: 1e-4)", 30,
        (*SHIPPED_JITTER, *FORMER_STAGE2, "optim.weight_decay=0.05"), config=STAGE2_CONFIG),
    Row("s2_jit25", "stage2", "CNN-7, 2.5x the crop jitter (shift 0.06, scale 0.2, 10 degrees)", 30,
        (*FORMER_STAGE2, "augment.shift=0.06", "augment.scale=0.2", "augment.rotation_deg=10"),
        config=STAGE2_CONFIG),
    Row("s2_jit05", "stage2", "CNN-7, half the crop jitter (shift 0.0115, scale 0.039, 2.1 degrees)", 30,
        (*FORMER_STAGE2, "augment.shift=0.0115", "augment.scale=0.039", "augment.rotation_deg=2.1"),
        config=STAGE2_CONFIG),
    Row("s2_w20", "stage2", "CNN-7, Wing w 20, eps 4 (the 64-px w 10, eps 2 in 128-px units)", 30,
        (*SHIPPED_JITTER, *FORMER_STAGE2, "loss.params.w=20", "loss.params.eps=4"), config=STAGE2_CONFIG),
    STAGE2_BASELINE,
    Row("s2_in160", "stage2", "CNN-7 at 160 px input (1.56x the FLOPs)", STAGE2_EPOCHS,
        (*SHIPPED_JITTER, "model.input_size=160"), config=STAGE2_CONFIG),
    Row("s2_wide150", "stage2", "CNN-7 with 1.5x the channels (2.25x the FLOPs)", STAGE2_EPOCHS,
        (*SHIPPED_JITTER, "model.width=1.5"), config=STAGE2_CONFIG),
    Row("s2_drop30", "stage2", "CNN-7, dropout 0.3 before both FC layers", STAGE2_EPOCHS,
        (*SHIPPED_JITTER, "model.dropout=0.3"), config=STAGE2_CONFIG),
    Row("s2_wd20", "stage2", "CNN-7, weight decay 0.2 (the config: 0.05)", STAGE2_EPOCHS,
        (*SHIPPED_JITTER, "optim.weight_decay=0.2"), config=STAGE2_CONFIG),
    Row("s2_integral", "stage2", "integral regression (encoder-decoder, soft-argmax heatmaps, 0.79 GFLOP)",
        STAGE2_EPOCHS, (*SHIPPED_JITTER, "model.arch=integral"), config=STAGE2_CONFIG),
    Row("s2_integral_w75", "stage2", "integral regression, 0.75x the channels (0.45 GFLOP)", STAGE2_EPOCHS,
        (*SHIPPED_JITTER, "model.arch=integral", "model.width=0.75"), config=STAGE2_CONFIG),
    *(Row(f"s2_scale{round(f * 100)}", "scaling2", f"CNN-7, {round(f * 100)}% of the training faces",
          round(STAGE2_EPOCHS / f), SHIPPED_JITTER, fraction=f, config=STAGE2_CONFIG) for f in (0.25, 0.5, 0.75)),
)


EVALUATED = "recipe and scaling rows: CNN-6 alone; stage2 and scaling2 rows: the shipped stage 1, then the row's CNN-7"


def shipped_stage1(work: Path) -> Path:
    """The shipped cascade's stage 1 (its second network) as a checkpoint in ``work``, split out once."""
    out = work / "shipped_stage1.pt"
    if not out.exists():
        from wingface.inference.landmarker import default_model_path
        from wingface.models.checkpoint import load_stages, save_checkpoint

        stage = load_stages(default_model_path())[1]
        save_checkpoint(out, stage.model, stage.extra)
    return out


def evaluated_model(row: Row, work: Path) -> Path:
    """What a row's score is of: its network alone (stage 1), or behind the shipped stage 1."""
    best = work / row.name / "best.pt"
    if row.config != STAGE2_CONFIG:
        return best
    cascade = work / row.name / "cascade.pt"
    step(f"cascade {row.name}", cascade, ["cascade", "build", str(shipped_stage1(work)), str(best),
                                          "--out", str(cascade)])
    return cascade


def evaluate(row: Row, model: Path, data: str, results: Path) -> Path:
    out = results / f"{row.name}.json"
    step(f"evaluate {row.name}", out, ["evaluate", "--model", str(model), "--data", data, "--split", "300w-common",
                                      "--label", row.label, "--json", str(out),
                                      "--ced", str(results / f"{row.name}.ced.png")])
    return out


def summarise(results: Path, rows: list[Row]) -> None:
    """Write recipes.json, recipes.md and scaling.png from the rows with a result."""
    table = []
    for row in rows:
        report = json.loads((results / f"{row.name}.json").read_text())
        table.append({"name": row.name, "group": row.group, "label": row.label, "epochs": row.epochs,
                      "overrides": row.all_overrides(), "fraction": row.fraction,
                      "train_faces": round(1811 * row.fraction),
                      "nme_inter_ocular": round(report["nme_inter_ocular"], 3),
                      "nme_inter_pupil": round(report["nme_inter_pupil"], 3), "fr_10": round(report["fr_10"], 2),
                      "auc_10": round(report["auc_10"], 4),
                      "cpu_minutes": round(train_seconds(results / row.name / "log.csv") / 60, 1)})
    (results / "recipes.json").write_text(json.dumps({"split": "300w-common", "boxes": "gt", "model": EVALUATED,
                                                      "rows": table}, indent=1))
    lines = ["| group | row | epochs | training faces | inter-ocular % | inter-pupil % | FR@10 % | AUC@10 | CPU min |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['group']} | {r['label']} | {r['epochs']} | {r['train_faces']} | {r['nme_inter_ocular']:.3f} | "
              f"{r['nme_inter_pupil']:.3f} | {r['fr_10']:.2f} | {r['auc_10']:.4f} | {r['cpu_minutes']:.1f} |"
              for r in table]
    (results / "recipes.md").write_text("\n".join(lines) + "\n")
    curves = {"CNN-6 alone": ("scaling", BASELINE.name), "CNN-6/7, stage 2 on the subset": ("scaling2", STAGE2_BASELINE.name)}
    curves = {label: [r for r in table if r["group"] == group or r["name"] == base]
              for label, (group, base) in curves.items()}
    if any(len(rows) >= 2 for rows in curves.values()):
        plot_scaling({label: rows for label, rows in curves.items() if len(rows) >= 2}, results / "scaling.png")
    print("\n".join(lines))


def plot_scaling(curves: dict[str, list[dict]], path: Path) -> None:
    """300w-common NME against the number of training faces (log axis), one colour per curve:
    inter-pupil solid, inter-ocular dotted."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    faces = sorted({r["train_faces"] for rows in curves.values() for r in rows})
    for (label, rows), colour in zip(curves.items(), ("C0", "C1")):
        rows = sorted(rows, key=lambda r: r["train_faces"])
        x = [r["train_faces"] for r in rows]
        ax.plot(x, [r["nme_inter_pupil"] for r in rows], "o-", color=colour, label=f"{label}, inter-pupil")
        ax.plot(x, [r["nme_inter_ocular"] for r in rows], "o:", color=colour, label=f"{label}, inter-ocular")
    ax.axhline(3.27, color="grey", ls="--", lw=1, label="paper CNN-6/7, inter-pupil (3,148 faces)")
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xticks(faces, [str(f) for f in faces])
    ax.set_xlabel("training faces (log scale)")
    ax.set_ylabel("300w-common NME, % (gt boxes)")
    ax.set_title("Data scaling at a fixed number of updates")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "recipes")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "recipes")
    parser.add_argument("--only", nargs="*", help="row names to run, in this order (default: all)")
    parser.add_argument("--threads", type=int, help="torch threads per run (default: all cores)")
    args = parser.parse_args()
    data = str(require_data(args.data))
    work, results = args.work, args.results
    results.mkdir(parents=True, exist_ok=True)
    cache = prepare_cache(data, work)
    by_name = {r.name: r for r in ROWS}
    unknown = set(args.only or ()) - set(by_name)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; rows: {', '.join(by_name)}")
    rows = [by_name[n] for n in args.only] if args.only else list(ROWS)
    for i, row in enumerate(rows, 1):
        print(f"=== row {i}/{len(rows)}: {row.label}", flush=True)
        threads = [f"threads={args.threads}"] if args.threads else []
        train(row.name, row.config, work / row.name, [f"data={cache}", *row.all_overrides(), *threads])
        keep_run(work / row.name, results / row.name)
        evaluate(row, evaluated_model(row, work), data, results)
    summarise(results, [r for r in ROWS if (results / f"{r.name}.json").exists()])


if __name__ == "__main__":
    main()
