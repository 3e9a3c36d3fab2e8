"""The benchmark scripts start, explain themselves, and refuse a missing dataset clearly.

Their real runs take hours and need ../shared/data; these checks need neither.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = ["ablations.py", "mediapipe_peer.py", "peers.py", "run_all.py", "shipped_model.py"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=BENCHMARKS.parent)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_describes_the_script(script):
    result = _run(str(BENCHMARKS / script), "--help")
    assert result.returncode == 0, result.stderr
    assert "--data" in result.stdout


@pytest.mark.parametrize("script", ["ablations.py", "run_all.py", "shipped_model.py"])
def test_missing_dataset_is_named(script, tmp_path):
    missing = tmp_path / "no-such-300w"
    result = _run(str(BENCHMARKS / script), "--data", str(missing))
    assert result.returncode != 0
    assert str(missing) in result.stderr and "not found" in result.stderr
