"""Resumable steps shared by the benchmark scripts: each runs one `wingface` command unless its output exists.

Every step takes ``dry_run`` (print the command instead of running it) and ``nproc`` (start it
under torchrun, ``python -m torch.distributed.run``, with that many processes; training only).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "300w-subset"
# What a dry run shows in place of the stage-2 crop jitter that stage 1's residuals would give.
JITTER_PLACEHOLDER = "augment.*=<stage-1-residual-jitter>"


def require_data(data: str | Path) -> Path:
    """The dataset folder, or exit with a clear message when it is absent."""
    path = Path(data)
    if not path.is_dir():
        sys.exit(f"dataset folder {path} not found: pass --data (these benchmarks need the real 300-W faces)")
    return path


def prepare_cache(data: str, work: Path) -> Path:
    """The 300w-train cache of the dataset folder ``data`` in ``work/cache-300w-train``, prepared once."""
    cache = work / "cache-300w-train"
    step("prepare", cache / "meta.json", ["prepare", data, "--split", "300w-train", "--out", str(cache)])
    return cache


def launcher(nproc: int = 1) -> list[str]:
    """The process that runs ``wingface COMMAND``: the CLI module, under torchrun when ``nproc`` > 1."""
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    cli = ["-m", "wingface.cli.main"]
    if nproc == 1:
        return [sys.executable, *cli]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *cli]


def describe(command: list[str], nproc: int = 1) -> str:
    """``wingface COMMAND`` as one would type it (with torchrun when ``nproc`` > 1)."""
    if nproc == 1:
        return shlex.join(["wingface", *command])
    return shlex.join(["torchrun", "--standalone", f"--nproc-per-node={nproc}", "-m", "wingface.cli.main", *command])


def step(name: str, done: Path | None, command: list[str], *, dry_run: bool = False, nproc: int = 1) -> None:
    """Run ``wingface COMMAND`` unless ``done`` exists; stop the whole run on failure."""
    if done is not None and done.exists():
        print(f"[skip] {name}: {done} exists", flush=True)
        return
    print(f"[{'dry ' if dry_run else 'run '}] {name}: {describe(command, nproc)}", flush=True)
    if dry_run:
        return
    start = time.perf_counter()
    code = subprocess.call([*launcher(nproc), *command], cwd=REPO)
    if code:
        sys.exit(f"{name} failed with exit code {code}")
    print(f"[done] {name} in {time.perf_counter() - start:.0f} s", flush=True)


def train(name: str, config: str, out: Path, overrides: list[str], *, dry_run: bool = False, nproc: int = 1) -> None:
    """Train, resume an interrupted run in ``out`` (its last.pt), or skip a finished one."""
    if (out / "best.pt").exists() and not (out / "last.pt").exists():
        print(f"[skip] {name}: {out}/best.pt exists", flush=True)
        return
    if (out / "last.pt").exists():
        import torch

        state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
        if state["epoch"] >= state["config"]["epochs"]:
            print(f"[skip] {name}: finished", flush=True)
            return
        step(f"{name} (resume)", None, ["train", "--resume", str(out), "--no-progress"], dry_run=dry_run, nproc=nproc)
        return
    step(name, None, ["train", config, f"out={out}", *overrides, "--no-progress"], dry_run=dry_run, nproc=nproc)


def train_stage2(stage1: Path, cache: Path, residuals: Path, out: Path, overrides: list[str], *,
                 config: str = "configs/300w-cnn7-stage2.yaml", dry_run: bool = False, nproc: int = 1) -> list[str]:
    """Measure stage 1's residuals in the aligned frame (to ``residuals``), then train stage 2
    (``config``: the paper's CNN-7 by default) into ``out`` with that crop jitter and ``overrides``.
    Returns the jitter as ``key=value`` overrides, for further stage-2 training (a dry run that
    has no residuals yet returns `JITTER_PLACEHOLDER`)."""
    step("stage 1 residuals", residuals, ["cascade", "residuals", "--model", str(stage1 / "best.pt"),
                                          "--data", str(cache), "--json", str(residuals)], dry_run=dry_run)
    if dry_run and not residuals.exists():
        jitter_overrides = [JITTER_PLACEHOLDER]
    else:
        jitter = json.loads(residuals.read_text())["training_jitter"]["stage2_overrides"]
        jitter_overrides = [f"{k}={v}" for k, v in jitter.items()]
    train("stage 2", config, out, [f"data={cache}", *overrides, *jitter_overrides],
          dry_run=dry_run, nproc=nproc)
    return jitter_overrides
