"""Loading model files into inference stages, for either backend."""

from __future__ import annotations

from pathlib import Path

from ..lookup import lookup
from ..models import load_stages as load_models
from .stages import Stage, TorchBackend

BACKENDS = ("torch", "onnx")


def is_onnx_export(path: str | Path) -> bool:
    """Whether ``path`` names an ONNX export (its folder, manifest or an ``.onnx`` file)."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in (".onnx", ".json")


def load_stages(path: str | Path, backend: str | None = None, device: str = "cpu",
                threads: int | None = None) -> list[Stage]:
    """The stages of a checkpoint or cascade file (``.pt``), or of an exported ONNX cascade.

    ``backend`` None picks ``onnx`` for an ONNX export (see `is_onnx_export`) and ``torch``
    otherwise. ``threads`` sets onnxruntime's intra-op threads (None: all cores); the
    PyTorch backend uses ``torch.set_num_threads``, which is process-wide, so it is left to
    the caller.
    """
    backend = backend or ("onnx" if is_onnx_export(path) else "torch")
    lookup({b: b for b in BACKENDS}, backend, "backend")
    if backend == "onnx":
        from .onnx_backend import load_onnx_stages

        return load_onnx_stages(path, threads=threads)
    if is_onnx_export(path):
        raise ValueError(f"{path} looks like an ONNX export; use backend='onnx' (--backend onnx)")
    return [Stage(m.spec, TorchBackend(m.model, device)) for m in load_models(path)]
