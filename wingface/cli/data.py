"""`wingface data PATH` (what is there) and `wingface prepare DATASET --out CACHE` (build a training cache)."""

from __future__ import annotations

import argparse
import time

from ..data.cache import DEFAULT_CONTEXT, DEFAULT_CROP_SIZE, load_cache, prepare_cache
from ..data.datasets import open_dataset


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="recognise a dataset and count its faces per split")
    p.add_argument("path", help="dataset folder or annotation file")
    p.add_argument("--format", help="skip recognition and use this format")
    p.add_argument("--show-skipped", type=int, default=5, metavar="N", help="list up to N skipped items per split")
    p.set_defaults(func=run_data)

    p = sub.add_parser("prepare", help="read a dataset split once into a fast training cache")
    p.add_argument("dataset", help="dataset folder or annotation file")
    p.add_argument("--split", help="split to cache (default: the dataset's training split)")
    p.add_argument("--out", required=True, help="cache folder to write (replaced atomically)")
    p.add_argument("--format", help="skip recognition and use this format")
    p.add_argument("--crop-size", type=int, default=DEFAULT_CROP_SIZE, help="cached crop side in pixels")
    p.add_argument("--context", type=float, default=DEFAULT_CONTEXT, help="crop side / landmark box side")
    p.add_argument("--strict", action="store_true", help="fail on the first bad item instead of skipping it")
    p.set_defaults(func=run_prepare)


def run_data(args: argparse.Namespace) -> int:
    reader = open_dataset(args.path, format=args.format)
    print(f"{args.path}: {reader.format_name} dataset, scheme {reader.scheme.name} ({reader.scheme.num_points} points)")
    for split in reader.split_names():
        result = reader.read(split)
        print(f"  {split:24s} {len(result):6d} faces  {reader.scheme.num_points} points"
              + (f"  ({len(result.skipped)} skipped)" if result.skipped else ""))
        for item, reason in result.skipped[: args.show_skipped]:
            print(f"      skipped: {_describe(item, reason)}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    reader = open_dataset(args.dataset, format=args.format)
    split = args.split or reader.default_train_split
    result = reader.read(split)
    if args.strict and result.skipped:
        raise ValueError(f"prepare --strict: {_describe(*result.skipped[0])}")
    start = time.perf_counter()
    summary = prepare_cache(
        result.records, args.out, reader.scheme, crop_size=args.crop_size, context=args.context,
        strict=args.strict, source={"dataset": str(args.dataset), "format": reader.format_name, "split": split},
    )
    skipped = result.skipped + summary.skipped
    print(f"wrote {summary.faces} faces to {summary.path} in {time.perf_counter() - start:.1f} s"
          + (f"; skipped {len(skipped)}:" if skipped else ""))
    for item, reason in skipped:
        print(f"  skipped: {_describe(item, reason)}")
    start = time.perf_counter()
    load_cache(summary.path)
    print(f"cache loads in {time.perf_counter() - start:.2f} s")
    return 0


def _describe(item: str, reason: str) -> str:
    """A skip message that names the item once (most reasons already start with it)."""
    return reason if item in reason else f"{item}: {reason}"
