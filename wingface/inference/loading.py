"""Loading model files into inference stages, for either backend."""

from __future__ import annotations

from pathlib import Path

from ..lookup import lookup
from ..models import load_stages as load_models
from .stages import Stage, TorchBackend

BACKENDS = ("torch", "onnx")


def load_stages(path: str | Path, backend: str = "torch", device: str = "cpu") -> list[Stage]:
    """The stages of a checkpoint or cascade file (``.pt``), or of an exported ONNX cascade."""
    lookup({b: b for b in BACKENDS}, backend, "backend")
    if backend == "onnx":
        from .onnx_backend import load_onnx_stages

        return load_onnx_stages(path)
    return [Stage(m.spec, TorchBackend(m.model, device)) for m in load_models(path)]
