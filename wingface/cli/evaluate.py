"""`wingface evaluate`: NME (inter-ocular, inter-pupil), FR and AUC of a model on a dataset split,
with a breakdown by pose bin (quintiles of the training split's PDB pose projection)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .options import add_precision_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a model on a dataset split (NME, FR@10%%, AUC@10%%, CED plot)")
    p.add_argument("--model", default=None,
                   help="checkpoint/cascade .pt, ONNX export, or 'mean-shape' (the baseline, fitted on "
                        "--train-split); default: the shipped model")
    p.add_argument("--data", required=True, help="dataset folder or annotation file")
    p.add_argument("--split", help="split to evaluate (default: the dataset's test split, e.g. 300w-common)")
    p.add_argument("--format", help="skip dataset recognition and use this format")
    p.add_argument("--boxes", choices=("gt", "detector"), default="gt",
                   help="gt: ground-truth landmark boxes; detector: end to end with the bundled detector")
    p.add_argument("--rotate", type=float, default=0.0, metavar="DEG",
                   help="rotate every test image (and its annotation) by DEG degrees first")
    p.add_argument("--train-split", help="split the mean-shape baseline is fitted on and the pose bins are taken "
                                         "from (default: the training split)")
    p.add_argument("--backend", choices=("torch", "onnx"), help="default: onnx for an ONNX export, torch otherwise")
    p.add_argument("--device", default="cpu")
    p.add_argument("--flip-test", action="store_true", help="average each network with its mirrored-crop output")
    p.add_argument("--no-orientation", action="store_true",
                   help="take faces as upright: skip the cascade's orientation stage and what only rolled faces need")
    add_precision_option(p)
    p.add_argument("--json", type=Path, help="write the full report here")
    p.add_argument("--ced", type=Path, help="CED plot PNG (default: beside --json)")
    p.add_argument("--label", help="name of the method in the report and plot")
    p.add_argument("--strict", action="store_true", help="fail on the first unreadable item")
    p.set_defaults(func=run)


def _train_name(args, reader) -> str:
    return args.train_split or reader.default_train_split


def _train_shapes(args, reader) -> np.ndarray | None:
    """Points [N, L, 2] of the training split (``--train-split`` or the dataset's default), or None
    when it has no faces or, with no ``--train-split``, the dataset has no default training split.
    File-based readers read annotations only (images stay on disk); COFW's .mat holds its pixels,
    so reading its training split decodes them."""
    name = _train_name(args, reader)
    if args.train_split is None and name not in reader.split_names():
        return None
    records = reader.read(name).records
    return np.stack([r.points for r in records]) if records else None


def _pose_analysis(args, reader, shapes: np.ndarray | None):
    """The training shapes' pose component (PDB's), or None (with a note) when it cannot be fitted."""
    from ..data.pdb import pose_projection

    if shapes is None:
        print(f"note: no pose breakdown: no training faces (split {_train_name(args, reader)!r})")
        return None
    try:
        return pose_projection(shapes, reader.scheme)
    except ValueError as err:
        print(f"note: no pose breakdown: {err}")
        return None


def _landmarker(args, reader, train: np.ndarray | None):
    from ..inference.cascade import Cascade
    from ..inference.landmarker import Landmarker
    from ..inference.stages import Stage
    from ..inference.torch_backend import TorchBackend
    from ..training.baseline import fit_mean_shape

    detector = "default" if args.boxes == "detector" else None
    if args.model != "mean-shape":
        return Landmarker(args.model, detector=detector, backend=args.backend, device=args.device,
                          flip_test=args.flip_test, precision=args.precision, orientation=not args.no_orientation)
    if train is None:
        raise ValueError(f"--model mean-shape: no training faces in {args.data} (split "
                         f"{_train_name(args, reader)!r}); name a training split with --train-split")
    model = fit_mean_shape(train, reader.scheme)
    cascade = Cascade([Stage(model.spec, TorchBackend(model))])
    return Landmarker(cascade, detector=detector)


def run(args: argparse.Namespace) -> int:
    from ..data.datasets import open_dataset
    from ..evaluation.run import evaluate, write_report

    reader = open_dataset(args.data, format=args.format)
    split = args.split or reader.default_test_split
    data = reader.read(split)
    if data.skipped and args.strict:
        raise ValueError(f"evaluate --strict: {data.skipped[0][0]}: {data.skipped[0][1]}")
    train = _train_shapes(args, reader)
    landmarker = _landmarker(args, reader, train)
    pose = _pose_analysis(args, reader, train)
    label = args.label or (args.model if args.model else "wingface (shipped)")
    result = evaluate(landmarker, data.records, boxes=args.boxes, rotate_deg=args.rotate)
    if result.failed and args.strict:
        raise ValueError(f"evaluate --strict: {result.failed[0][0]}: {result.failed[0][1]}")
    report = result.report(pose, label=str(label), model=str(args.model), data=str(args.data), split=split,
                           boxes=args.boxes, rotate_deg=args.rotate, flip_test=args.flip_test,
                           skipped_annotations=[list(s) for s in data.skipped])
    _print_table(report)
    ced = args.ced or (args.json.with_suffix(".ced.png") if args.json else None)
    conf_plot = args.json.with_suffix(".confidence.png") if args.json and report["confidence"] else None
    write_report(report, args.json, ced, result.errors("inter_ocular"), str(label), conf_plot, result.confidences)
    for path in (args.json, ced, conf_plot):
        if path:
            print(f"wrote {path}")
    return 1 if result.failed else 0


def _print_table(r: dict) -> None:
    if r["nme_inter_ocular"] is None:
        print(f"{r['label']} on {r['split']}: no face was scored ({r['missed']} missed, {r['failed']} unreadable)")
        return
    print(f"{r['label']} on {r['split']} ({r['boxes']} boxes): {r['faces']} faces"
          + (f", {r['missed']} missed by the detector" if r["missed"] else "")
          + (f", {r['failed']} unreadable" if r["failed"] else ""))
    print(f"  {'normaliser':14s} {'NME %':>7s} {'FR@10 %':>8s} {'AUC@10':>7s} {'FR@8 %':>7s} {'AUC@8':>6s}")
    ip = r["inter_pupil"]
    print(f"  {'inter-ocular':14s} {r['nme_inter_ocular']:7.3f} {r['fr_10']:8.2f} {r['auc_10']:7.4f} {r['fr_8']:7.2f} {r['auc_8']:6.4f}")
    print(f"  {'inter-pupil':14s} {r['nme_inter_pupil']:7.3f} {ip['fr_10']:8.2f} {ip['auc_10']:7.4f} {ip['fr_8']:7.2f} {ip['auc_8']:6.4f}")
    for subset, s in r["subsets"]["inter_ocular"].items():
        print(f"    {subset:24s} {s['n']:5d} faces  NME {s['nme']:.3f}% (inter-ocular)")
    groups = r["groups"]
    if groups["nme"]:
        print(f"  by landmark group ({groups['normaliser'].replace('_', '-')} NME %): "
              + "  ".join(f"{name} {value:.2f}" for name, value in groups["nme"].items()))
    if r["pose"]:
        _print_pose(r["pose"])
    if r["confidence"]:
        _print_confidence(r["confidence"])


def _print_confidence(c: dict) -> None:
    drop = c["dropping_least_confident"]["5%"]
    removed = "n/a" if drop["failures_removed"] is None else f"{100 * drop['failures_removed']:.0f}%"
    print(f"  confidence: rank correlation with error {c['face_rank_correlation']:.3f} per face, "
          f"{c['point_rank_correlation']:.3f} per point; dropping the 5% least confident faces removes "
          f"{removed} of {c['failures']} failures (NME {drop['nme']:.3f}%, FR@10 {drop['fr_10']:.2f}%)")


def _print_pose(pose: dict) -> None:
    print(f"  by pose (|projection| on PC {pose['component'] + 1}; bins: training quintiles, the last open-ended)")
    print(f"    {'|projection|':15s} {'faces':>5s} {'NME io %':>8s} {'NME ip %':>8s} {'FR@10 %':>8s}")
    for b in pose["bins"]:
        cells = [b[k] for k in ("nme_inter_ocular", "nme_inter_pupil", "fr_10")]
        figures = " ".join("       -" if c is None else f"{c:8.3f}" for c in cells)
        print(f"    {b['range'][0]:6.3f} - {b['range'][1]:6.3f} {b['n']:5d} {figures}")
