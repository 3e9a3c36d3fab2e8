"""Regenerate every benchmark result in docs/RESULTS.md, end to end and resumably.

    python benchmarks/run_all.py [--data ../shared/data/300w-subset] [--only NAME ...]

Runs the jobs below in order; each skips what already exists, so re-running after a kill
(or after deleting one result file) redoes only the missing work. Hours on a 2-core CPU:
the shipped cascade trains for about 1 h, the ablations for about 1.5 h. Progress: one
line per job with its expected duration and the ETA of the whole run; training jobs add
a line per epoch. Speed benchmarks should run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from steps import DEFAULT_DATA, REPO, require_data

RESULTS = REPO / "benchmarks" / "results"


@dataclass(frozen=True)
class Job:
    """One result-producing command; ``minutes`` is its typical duration on the project machine."""

    name: str
    command: tuple[str, ...]
    done: str | None
    minutes: float


def mediapipe_option() -> tuple[str, ...]:
    """``--mediapipe PYTHON`` when the MediaPipe venv of benchmarks/mediapipe_peer.py exists."""
    python = REPO / ".venv-mediapipe" / "bin" / "python"
    return ("--mediapipe", str(python)) if python.is_file() else ()


def jobs(data: str) -> list[Job]:
    wf = (sys.executable, "-m", "wingface.cli.main")
    py = (sys.executable,)
    return [
        Job("detector box fit", (*py, "benchmarks/fit_detector_boxes.py", "--data", data), "detector_boxes.json", 2),
        Job("mean shape", (*wf, "evaluate", "--model", "mean-shape", "--data", data, "--json",
                           str(RESULTS / "mean_shape_common.json")), "mean_shape_common.json", 1),
        Job("shipped cascade", (*py, "benchmarks/shipped_model.py", "--data", data), None, 65),
        Job("ablations", (*py, "benchmarks/ablations.py", "--data", data), "ablations/ablations.json", 90),
        Job("recipes and data scaling", (*py, "benchmarks/recipes.py", "--data", data), "recipes/recipes.json", 50),
        Job("rotations", (*py, "benchmarks/rotations.py", "--data", data), "rotation/rotations.json", 5),
        Job("peers", (*py, "benchmarks/peers.py", "--data", data), "peers/peers.json", 6),
        Job("train speed cnn6", (*wf, "bench", "train", "--model", "cnn6", "--json",
                                 str(RESULTS / "bench_train_cnn6.json")), "bench_train_cnn6.json", 2),
        Job("train speed cnn7", (*wf, "bench", "train", "--model", "cnn7", "--batch-size", "16", "--json",
                                 str(RESULTS / "bench_train_cnn7.json")), "bench_train_cnn7.json", 3),
        Job("predict speed", (*wf, "bench", "predict", "--seconds", "1", *mediapipe_option(), "--json",
                              str(RESULTS / "bench_predict.json")),
            "bench_predict.json", 2),
    ]


def copy_shipped_results() -> None:
    """The shipped cascade's evaluation JSONs and plots live in runs/; the docs quote copies.
    A copy that exists is kept (like every result here: delete it to refresh it)."""
    source, dest = REPO / "runs" / "shipped" / "results", RESULTS / "shipped"
    dest.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*"):
        if not (dest / path.name).exists():
            shutil.copy2(path, dest / path.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--only", nargs="*", help="job names to run (default: all)")
    args = parser.parse_args()
    data = str(require_data(args.data))
    todo = [j for j in jobs(data) if not args.only or j.name in args.only]
    remaining = sum(j.minutes for j in todo if not (j.done and (RESULTS / j.done).exists()))
    start = time.perf_counter()
    for i, job in enumerate(todo, 1):
        if job.done and (RESULTS / job.done).exists():
            print(f"[{i}/{len(todo)}] {job.name}: skip, benchmarks/results/{job.done} exists", flush=True)
            continue
        print(f"[{i}/{len(todo)}] {job.name}: about {job.minutes:.0f} min; whole run ETA {remaining:.0f} min "
              f"(elapsed {(time.perf_counter() - start) / 60:.0f} min)", flush=True)
        if subprocess.call(job.command, cwd=REPO):
            sys.exit(f"{job.name} failed; fix it and re-run: finished jobs are skipped")
        if job.name == "shipped cascade":
            copy_shipped_results()
        remaining -= job.minutes
    print(f"all done in {(time.perf_counter() - start) / 60:.0f} min; results in {RESULTS}", flush=True)


if __name__ == "__main__":
    main()
