"""`wingface pdb DATASET`: pose-based data balancing of a split, before and after, with a figure."""

from __future__ import annotations

import argparse

import numpy as np

from ..data.pdb import DEFAULT_BINS, PdbReport, pdb_report, plot_pose_component


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``pdb`` verb."""
    p = subparsers.add_parser(
        "pdb", help="pose-based data balancing: histogram before/after and the pose component",
        description="Align the split's shapes, find the pose principal component, print how PDB "
                    "(Feng et al. 2018) would repeat each pose bin, and save a figure.",
    )
    p.add_argument("dataset", metavar="DATASET", help="dataset folder or file")
    p.add_argument("--split", help="split to analyse (default: the dataset's training split)")
    p.add_argument("--bins", type=int, default=DEFAULT_BINS, help=f"pose bins (default {DEFAULT_BINS})")
    p.add_argument("--component", type=int, default=None,
                   help="0-based principal component (default: the scheme's pose component)")
    p.add_argument("--out", default="pdb.png", help="figure to write (default pdb.png)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the split, run PDB, print the histograms and save the figure."""
    from ..data.datasets import open_dataset  # the dataset layer is only needed when run

    reader = open_dataset(args.dataset)
    split = args.split or reader.default_train_split
    records = reader.read(split).records
    if len(records) < 2:
        raise ValueError(f"{args.dataset}: split {split!r} has {len(records)} face(s); PDB needs at least two")
    shapes = np.stack([np.asarray(r.points, dtype=np.float64) for r in records])
    report = pdb_report(shapes, reader.scheme, args.bins, args.component)
    print(f"{args.dataset} [{split}], scheme {reader.scheme.name}")
    print(format_report(report))
    plot_pose_component(report.analysis, args.out, args.bins)
    print(f"wrote {args.out}")
    return 0


def format_report(report: PdbReport) -> str:
    """The before/after histogram as a text table."""
    a = report.analysis
    lines = [
        f"pose component: PC {a.index + 1} ({100 * a.explained:.1f}% of aligned shape variance, "
        f"std {a.std:.4f})",
        f"{'bin':>3}  {'|projection|':<17}  {'before':>7}  {'x':>3}  {'after':>7}",
    ]
    for k, (count, factor, after) in enumerate(zip(report.counts, report.factors, report.balanced)):
        span = f"{report.edges[k]:.4f}-{report.edges[k + 1]:.4f}"
        lines.append(f"{k + 1:>3}  {span:<17}  {count:>7}  {factor:>3}  {after:>7}")
    lines.append(f"{'total':<22}  {report.counts.sum():>7}  {'':>3}  {report.balanced.sum():>7}")
    return "\n".join(lines)
