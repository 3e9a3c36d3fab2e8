"""`wingface bench train|predict`: speed benchmarks written to JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..atomic import write_text_atomic


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed benchmarks (results to JSON)")
    verbs = p.add_subparsers(dest="what", metavar="WHAT")
    verbs.required = True
    t = verbs.add_parser("train", help="training images/s: model alone vs the whole input pipeline")
    t.add_argument("--model", default="cnn6", help="architecture (cnn6, cnn7, resnet18, ...)")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    t.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    t.add_argument("--no-channels-last", action="store_true", help="use the default memory format")
    t.add_argument("--json", type=Path, help="write the result here")
    t.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from ..bench.train_speed import bench_train

    result = bench_train(args.model, batch_size=args.batch_size, steps=args.steps, threads=args.threads,
                         channels_last=not args.no_channels_last)
    _emit(result, args.json)
    return 0


def _emit(result: dict, path: Path | None) -> None:
    text = json.dumps(result, indent=1)
    print(text)
    if path:
        write_text_atomic(path, text + "\n")
        print(f"wrote {path}")
