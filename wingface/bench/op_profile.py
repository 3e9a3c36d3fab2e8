"""Where an exported stage's time goes: onnxruntime's own profiler per operator type, with the
inference backend's session options, and the rate of the stage's int8 convolutions.

    shares = op_breakdown(Path("wingface-300w-int8"), batch=32, threads=2, roofline=800.0)
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..inference.onnx_backend import DISABLED_OPTIMIZERS, session_options


def op_times(path: Path, batch: int, threads: int, runs: int = 10) -> dict[str, float]:
    """ms per face spent in each operator type of ``path`` (after onnxruntime's graph
    optimisations) over ``runs`` calls on ``batch`` random crops, ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = session_options(threads)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                       disabled_optimizers=DISABLED_OPTIMIZERS)
        feed = session.get_inputs()[0]
        size = feed.shape[-1]
        crops = np.random.default_rng(0).uniform(0, 255, (batch, 3, size, size)).astype(np.float32)
        session.run(None, {feed.name: crops})  # warm-up, profiled too: subtracted below
        for _ in range(runs):
            session.run(None, {feed.name: crops})
        events = json.loads(Path(session.end_profiling()).read_text())
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    totals: dict[str, float] = collections.defaultdict(float)
    for event in kernels[len(kernels) // (runs + 1):]:  # the warm-up call's kernels come first
        totals[event["args"]["op_name"]] += event["dur"] / 1000 / runs / batch
    return dict(totals)


def quantized_conv_gflop(path: Path) -> float:
    """GFLOP per face of ``path``'s int8 convolutions: its Conv nodes whose weights come through
    a DequantizeLinear, 2 x weights x output pixels each."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.value_info, *model.graph.output]}
    weights = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    flop = 0
    for node in model.graph.node:
        source = producers.get(node.input[1]) if node.op_type == "Conv" else None
        if source is not None and source.op_type == "DequantizeLinear" and node.output[0] in shapes:
            height, width = shapes[node.output[0]][2:4]
            flop += 2 * weights[source.input[0]] * height * width
    return flop / 1e9


def op_breakdown(export_dir: Path, batch: int, threads: int, roofline: float) -> list[dict]:
    """Per ``.onnx`` stage file of ``export_dir``: ms per face, each operator type's share of it,
    and its int8 convolutions' GFLOP/s and their ratio to ``roofline`` (GFLOP/s)."""
    out = []
    for path in sorted(Path(export_dir).glob("*.onnx")):
        times = op_times(path, batch, threads)
        total = sum(times.values())
        conv_gflops = quantized_conv_gflop(path) / (times.get("QLinearConv", np.nan) / 1000)
        out.append({"file": path.name, "ms_per_face": round(total, 3),
                    "shares": _shares(times, total),
                    "int8_conv_gflops": round(float(conv_gflops), 1),
                    "int8_conv_roofline_ratio": round(float(conv_gflops / roofline), 3)})
    return out


def _shares(times: dict[str, float], total: float, least: float = 0.01) -> dict[str, float]:
    """Each operator type's share of ``total``, largest first; those under ``least`` summed as "other"."""
    shares = {op: ms / total for op, ms in sorted(times.items(), key=lambda kv: -kv[1])}
    out = {op: round(v, 3) for op, v in shares.items() if v >= least}
    out["other"] = round(sum(v for v in shares.values() if v < least), 3)
    return out
