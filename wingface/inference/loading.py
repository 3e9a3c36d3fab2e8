"""Loading model files into inference stages, for either backend, at a chosen precision."""

from __future__ import annotations

from pathlib import Path

from ..lookup import lookup
from .stages import Stage

BACKENDS = ("torch", "onnx")
# fp32 and bf16 run on PyTorch (or fp32 on a float ONNX export), int8 on an int8 ONNX export;
# auto is the model's own arithmetic: a .pt file's fp32, an export's fp32 or int8.
PRECISIONS = ("auto", "fp32", "bf16", "int8")


def is_onnx_export(path: str | Path) -> bool:
    """Whether ``path`` names an ONNX export (its folder, manifest or an ``.onnx`` file)."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in (".onnx", ".json")


def load_stages(path: str | Path, backend: str | None = None, device: str = "cpu",
                threads: int | None = None, precision: str = "auto") -> list[Stage]:
    """The stages of a checkpoint or cascade file (``.pt``), or of an exported ONNX cascade.

    ``backend`` None picks ``onnx`` for an ONNX export (see `is_onnx_export`) and ``torch``
    otherwise. ``threads`` sets onnxruntime's intra-op threads (None: all cores); the
    PyTorch backend uses ``torch.set_num_threads``, which is process-wide, so it is left to
    the caller. ``precision`` (see `PRECISIONS`) must be one the file can run at: an ONNX
    export runs at the precision it was exported in, a ``.pt`` at fp32 or bf16.

    Raises:
        ValueError: an unknown backend or precision, or one the file cannot run at (the
            message says how to get it, e.g. ``wingface export --int8``).
    """
    backend = backend or ("onnx" if is_onnx_export(path) else "torch")
    lookup({b: b for b in BACKENDS}, backend, "backend")
    lookup({p: p for p in PRECISIONS}, precision, "precision")
    if backend == "onnx":
        from .onnx_backend import load_onnx_stages

        stages = load_onnx_stages(path, threads=threads)
        exported = stages[0].backend.precision
        if precision not in ("auto", exported):
            raise ValueError(f"{path}: an {exported} ONNX export cannot run at precision {precision!r}; "
                             f"export it again (wingface export{' --quantize int8' if precision == 'int8' else ''}) "
                             f"or load the .pt for {precision}")
        return stages
    if is_onnx_export(path):
        raise ValueError(f"{path} looks like an ONNX export; use backend='onnx' (--backend onnx)")
    if precision == "int8":
        raise ValueError(f"{path}: int8 runs on onnxruntime; export the model with "
                         f"`wingface export {path} --quantize int8 --out DIR` and load DIR")
    from ..models import load_stages as load_models
    from .torch_backend import TorchBackend

    torch_precision = "fp32" if precision == "auto" else precision
    return [Stage(m.spec, TorchBackend(m.model, device, torch_precision)) for m in load_models(path)]
