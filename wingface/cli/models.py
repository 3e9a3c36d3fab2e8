"""`wingface info MODEL`: describe an architecture or a checkpoint (contract, size, cost)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from ..models import (
    ARCHITECTURES, LandmarkRegressor, count_parameters, create_model, flops_per_face, load_stages,
)
from ..schemes import get_scheme


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``info`` verb."""
    p = subparsers.add_parser(
        "info", help="describe an architecture or a checkpoint",
        description="Print a model's contract (scheme, input size, output unit, margin), its "
                    "parameter count and GFLOP per face; for a checkpoint also its saved extras.",
    )
    p.add_argument("model", metavar="MODEL", help=f"architecture ({', '.join(ARCHITECTURES)}) or checkpoint file")
    p.add_argument("--scheme", default="300w-68", help="landmark scheme for an architecture name (default 300w-68)")
    p.add_argument("--input-size", type=int, default=None, help="input size for an architecture name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build or load the model named by ``args.model`` and print its description."""
    extra = None
    if _is_path(args.model):  # a single checkpoint or a cascade file (one section per stage)
        stages = load_stages(args.model)
        models, extra = [s.model for s in stages], stages[0].extra
        sources = [f"checkpoint {args.model}" + (f", stage {i + 1} of {len(stages)}" if len(stages) > 1 else "")
                   for i in range(len(stages))]
    else:  # an unknown name gets "did you mean" from create_model
        models = [create_model(args.model, get_scheme(args.scheme), input_size=args.input_size)]
        sources = ["architecture (untrained)"]
    for model, source in zip(models, sources):
        for key, value in describe(model, source).items():
            print(f"{key:<14} {value}")
        print()
    if extra:
        print("extra:")
        for key, value in _flatten(extra):
            print(f"  {key:<20} {value}")
    return 0


def _is_path(model: str) -> bool:
    """True if MODEL names a file rather than an architecture."""
    path = Path(model)
    return model not in ARCHITECTURES and (path.exists() or bool(path.suffix) or len(path.parts) > 1)


def describe(model: LandmarkRegressor, source: str) -> dict[str, str]:
    """Printable facts about a model: contract, size and cost."""
    spec = model.spec
    return {
        "source": source,
        "architecture": spec.arch + (f" {spec.arch_kwargs}" if spec.arch_kwargs else ""),
        "scheme": f"{spec.scheme.name} ({spec.num_points} points)",
        "input size": f"{spec.input_size} x {spec.input_size} px",
        "output unit": f"{spec.output_unit} ({spec.codec.pixels_per_unit:g} px per unit)",
        "box margin": f"{spec.box_margin:g}",
        "crop": spec.crop,
        "batch norm": "yes" if spec.batch_norm else "no",
        "pixel mean": ", ".join(f"{v:g}" for v in spec.pixel_mean),
        "pixel std": ", ".join(f"{v:g}" for v in spec.pixel_std),
        "parameters": f"{count_parameters(model):,}",
        "GFLOP / face": f"{flops_per_face(model) / 1e9:.3f}",
    }


def _flatten(data: dict[str, Any], prefix: str = "", depth: int = 2) -> list[tuple[str, str]]:
    """(dotted key, short text) rows for scalars in ``data``; big or deep values are summarised."""
    rows = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth > 1:
            rows += _flatten(value, f"{name}.", depth - 1)
        elif isinstance(value, dict):
            rows.append((name, f"<{len(value)} entries>"))
        elif isinstance(value, (list, tuple)) and len(value) > 8:
            rows.append((name, f"<list of {len(value)}>"))
        elif isinstance(value, torch.Tensor) and value.numel() != 1:
            rows.append((name, f"<tensor {list(value.shape)}>"))
        else:
            value = value.item() if isinstance(value, torch.Tensor) else value
            text = f"{value:.6g}" if isinstance(value, float) else str(value)
            rows.append((name, text if len(text) <= 80 else text[:77] + "..."))
    return rows
