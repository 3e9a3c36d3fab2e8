"""`wingface export MODEL --format onnx`: a model or cascade as an ONNX folder for onnxruntime."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``export`` verb."""
    p = sub.add_parser(
        "export", help="export a model or cascade to ONNX (optionally int8)",
        description="Write each stage as an ONNX file (input float32 [N, 3, S, S] 0..255, output crop "
                    "pixels [N, L, 2], dynamic batch) plus manifest.json with the stages' contracts. Run it "
                    "with: wingface predict ... --model OUT --backend onnx, or "
                    "Landmarker('OUT', backend='onnx').",
    )
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="checkpoint or cascade .pt (default: the shipped model)")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="export format (onnx)")
    p.add_argument("--out", type=Path, help="output folder (default: MODEL's name + '-onnx' in the current folder)")
    p.add_argument("--quantize", choices=("none", "int8"), default="none",
                   help="int8: static quantisation calibrated on synthetic faces (faster, slightly less accurate)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export ``args.model`` and print where the files went."""
    from ..export import export_onnx
    from ..inference.landmarker import default_model_path

    model = Path(args.model) if args.model else default_model_path()
    if not model.is_file():
        hint = "" if args.model else " (the shipped model is not installed; pass MODEL)"
        raise FileNotFoundError(f"model not found: {model}{hint}")
    suffix = "-onnx-int8" if args.quantize == "int8" else "-onnx"
    out = args.out or Path(model.stem + suffix)
    manifest = export_onnx(model, out, quantize=None if args.quantize == "none" else args.quantize, opset=args.opset)
    print(f"exported {model} to {out} ({', '.join(sorted(p.name for p in out.glob('*.onnx')))}; {manifest.name})")
    print(f"run it with: wingface predict IMAGES --model {out} --backend onnx")
    return 0
