"""Resumable steps shared by the benchmark scripts: each runs one `wingface` command unless its output exists."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "300w-subset"


def require_data(data: str | Path) -> Path:
    """The dataset folder, or exit with a clear message when it is absent."""
    path = Path(data)
    if not path.is_dir():
        sys.exit(f"dataset folder {path} not found: pass --data (these benchmarks need the real 300-W faces)")
    return path


def step(name: str, done: Path | None, command: list[str]) -> None:
    """Run ``wingface COMMAND`` unless ``done`` exists; stop the whole run on failure."""
    if done is not None and done.exists():
        print(f"[skip] {name}: {done} exists", flush=True)
        return
    print(f"[run ] {name}: wingface {' '.join(command)}", flush=True)
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "wingface.cli.main", *command], cwd=REPO)
    if code:
        sys.exit(f"{name} failed with exit code {code}")
    print(f"[done] {name} in {time.perf_counter() - start:.0f} s", flush=True)


def train(name: str, config: str, out: Path, overrides: list[str]) -> None:
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
        step(f"{name} (resume)", None, ["train", "--resume", str(out), "--no-progress"])
        return
    step(name, None, ["train", config, f"out={out}", *overrides, "--no-progress"])


def train_stage2(stage1: Path, cache: Path, residuals: Path, out: Path, overrides: list[str]) -> list[str]:
    """Measure stage 1's residuals in the aligned frame (to ``residuals``), then train the CNN-7
    stage 2 (configs/300w-cnn7-stage2.yaml) into ``out`` with that crop jitter and ``overrides``.
    Returns the jitter as ``key=value`` overrides, for further stage-2 training."""
    step("stage 1 residuals", residuals, ["cascade", "residuals", "--model", str(stage1 / "best.pt"),
                                          "--data", str(cache), "--json", str(residuals)])
    jitter = json.loads(residuals.read_text())["training_jitter"]["stage2_overrides"]
    jitter_overrides = [f"{k}={v}" for k, v in jitter.items()]
    train("stage 2", "configs/300w-cnn7-stage2.yaml", out, [f"data={cache}", *overrides, *jitter_overrides])
    return jitter_overrides
