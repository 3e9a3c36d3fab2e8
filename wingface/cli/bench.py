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
    t.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="auto",
                   help="precision of the top-level figures (every native precision is measured)")
    t.add_argument("--json", type=Path, help="write the result here")
    t.set_defaults(func=run_train)
    pr = verbs.add_parser("predict", help="inference ms per face at every precision (1 and all threads; batch 1 "
                                          "and 32), rooflines, default and fastest paths, start-up, video, "
                                          "detector and end to end (beside MediaPipe with --mediapipe)")
    pr.add_argument("--model", help="checkpoint/cascade .pt (default: the shipped model, or a random-init "
                                    "cnn6+cnn7 cascade when it is not installed)")
    pr.add_argument("--seconds", type=float, default=1.0, help="timed wall time per measurement (default 1)")
    pr.add_argument("--batch", type=int, nargs="+", default=[1, 32], help="faces per call (default 1 32)")
    pr.add_argument("--mediapipe", metavar="PYTHON",
                    help="a Python with mediapipe 0.10.21 (e.g. .venv-mediapipe/bin/python): time its face mesh "
                         "on the same photo in this run")
    pr.add_argument("--no-whole-program", action="store_true",
                    help="skip start-up, video and end-to-end timings (fresh processes, a clip)")
    pr.add_argument("--json", type=Path, help="write the result here")
    pr.set_defaults(func=run_predict)


def run_train(args: argparse.Namespace) -> int:
    from ..bench.train_speed import bench_train

    result = bench_train(args.model, batch_size=args.batch_size, steps=args.steps, threads=args.threads,
                         channels_last=not args.no_channels_last, precision=args.precision)
    _emit(result, args.json)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from ..bench.predict_speed import bench_predict

    if args.seconds <= 0 or min(args.batch) < 1:
        raise ValueError("--seconds must be > 0 and --batch values >= 1")
    result = bench_predict(args.model, batches=args.batch, seconds=args.seconds, mediapipe=args.mediapipe,
                           whole_program=not args.no_whole_program)
    _emit(result, args.json)
    return 0


def _emit(result: dict, path: Path | None) -> None:
    text = json.dumps(result, indent=1)
    print(text)
    if path:
        write_text_atomic(path, text + "\n")
        print(f"wrote {path}")
