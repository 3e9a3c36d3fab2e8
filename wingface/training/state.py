"""Resumable training state: written atomically, loaded with the safe (weights-only) unpickler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path

STATE_FORMAT = "wingface-train-state"


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a training state dict (tensors and plain data only) so it appears whole or not at all."""
    with atomic_path(path) as tmp:
        torch.save({"format": STATE_FORMAT, "version": 1, **state}, tmp)


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by `save_state`; ValueError names the file if it is not one."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no training state to resume from: {p}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise ValueError(f"{p}: unreadable training state ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{p}: not a wingface training state")
    return state
