"""Two ONNX stage files of one architecture timed side by side: which export is faster.

    python benchmarks/onnx_ab.py A.onnx B.onnx [A2.onnx B2.onnx ...] [--rounds 40] [--json OUT]

Each pair runs on one face (random crop of the stage's input size) with one onnxruntime
thread, the process pinned to one core, the two files interleaved round by round (so
a noisy machine slows both alike); prints and writes the median ms per call of each. Used
to measure an export change (e.g. the int8 export's float first convolution) on the same
machine in the same minute, where whole-bench runs minutes apart differ by 10-40%.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from wingface.atomic import write_text_atomic
from wingface.inference.onnx_backend import OnnxBackend


def time_pair(first: Path, second: Path, rounds: int, calls: int = 20) -> tuple[float, float]:
    """Median ms per call of ``first`` and ``second`` over ``rounds`` interleaved rounds."""
    backends = [OnnxBackend(first, threads=1), OnnxBackend(second, threads=1)]
    size = backends[0].session.get_inputs()[0].shape[-1]
    crop = np.random.default_rng(0).uniform(0, 255, (1, 3, size, size)).astype(np.float32)
    for backend in backends:
        for _ in range(calls):
            backend(crop)
    times: list[list[float]] = [[], []]
    for _ in range(rounds):
        for backend, spent in zip(backends, times):
            start = time.perf_counter()
            for _ in range(calls):
                backend(crop)
            spent.append((time.perf_counter() - start) / calls * 1e3)
    return round(float(np.median(times[0])), 3), round(float(np.median(times[1])), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="pairs of .onnx files: A B [A2 B2 ...]")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--json", type=Path, help="write the medians here")
    args = parser.parse_args()
    if len(args.files) % 2:
        parser.error("give the files in pairs")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rows = []
    for first, second in zip(args.files[::2], args.files[1::2]):
        a, b = time_pair(first, second, args.rounds)
        rows.append({"a": str(first), "b": str(second), "a_ms": a, "b_ms": b, "b_vs_a": round(b / a - 1, 3)})
        print(f"{first}: {a:.3f} ms | {second}: {b:.3f} ms ({100 * (b / a - 1):+.1f}%)")
    if args.json:
        write_text_atomic(args.json, json.dumps({"threads": 1, "faces_per_call": 1, "rounds": args.rounds,
                                                 "rows": rows}, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
