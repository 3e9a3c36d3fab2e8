"""`wingface plot`: loss curves, CED curves from evaluation files, training curves.

    wingface plot losses --out losses.png [--max-error 20]
    wingface plot ced A.json B.json --out ced.png [--key nme_inter_ocular] [--threshold 10]
    wingface plot curves RUN/log.csv --out curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``plot`` verb and its three figures."""
    parser = subparsers.add_parser("plot", help="draw loss, CED or training-curve figures")
    figures = parser.add_subparsers(dest="figure", metavar="FIGURE", parser_class=type(parser))
    figures.required = True

    losses = figures.add_parser("losses", help="every loss and its gradient (paper Fig. 2/3)")
    losses.add_argument("--out", required=True, type=Path, help="output PNG")
    losses.add_argument("--max-error", type=float, default=20.0, help="error range in input pixels (default 20)")
    losses.set_defaults(func=_losses)

    ced = figures.add_parser("ced", help="CED curves of one or more evaluation JSON files")
    ced.add_argument("files", nargs="+", type=Path, help="evaluation JSON files (with a per_face list)")
    ced.add_argument("--out", required=True, type=Path, help="output PNG")
    ced.add_argument("--key", default="nme_inter_ocular", help="per-face field, in %% (default nme_inter_ocular)")
    ced.add_argument("--threshold", type=float, default=10.0, help="x-axis end and AUC limit in %% (default 10)")
    ced.add_argument("--title", default="Cumulative error distribution", help="figure title")
    ced.set_defaults(func=_ced)

    curves = figures.add_parser("curves", help="training loss, validation NME and lr vs epoch")
    curves.add_argument("log", type=Path, help="training log CSV (epoch, train_loss, val_nme, lr)")
    curves.add_argument("--out", required=True, type=Path, help="output PNG")
    curves.set_defaults(func=_curves)


def _losses(args: argparse.Namespace) -> int:
    from ..evaluation.plots import plot_losses

    print(plot_losses(args.out, max_error=args.max_error))
    return 0


def _read_per_face(path: Path, key: str) -> tuple[str, np.ndarray]:
    """Read ``(label, [N] per-face errors as fractions)`` from an evaluation JSON file.

    The file holds ``per_face``, a list of dicts with ``key`` in %, and optionally ``label``
    (default: the file stem).
    """
    if not path.is_file():
        raise FileNotFoundError(f"evaluation file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from None
    faces = data.get("per_face") if isinstance(data, dict) else None
    if not isinstance(faces, list) or not faces:
        raise ValueError(f"{path}: expected a non-empty 'per_face' list")
    values = []
    for i, face in enumerate(faces):
        value = face.get(key) if isinstance(face, dict) else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"{path}: per_face[{i}] has no number {key!r}")
        values.append(value / 100.0)
    return str(data.get("label") or path.stem), np.asarray(values, dtype=np.float64)


def _ced(args: argparse.Namespace) -> int:
    from ..evaluation.plots import plot_ced

    if not args.threshold > 0:
        raise ValueError(f"--threshold must be > 0, got {args.threshold}")
    curves: dict[str, np.ndarray] = {}
    for path in args.files:
        label, errors = _read_per_face(path, args.key)
        curves[str(path) if label in curves else label] = errors
    print(plot_ced(curves, args.out, threshold=args.threshold / 100.0, title=args.title))
    return 0


def _curves(args: argparse.Namespace) -> int:
    from ..evaluation.plots import plot_training_curves

    print(plot_training_curves(args.log, args.out))
    return 0
