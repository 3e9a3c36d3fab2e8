"""ONNX export of landmark models and cascades, optionally quantised to int8.

An export is a folder::

    manifest.json          {"format": "wingface-onnx", "version": 1, "stages": [{"file", "spec"}, ...], ...}
    stage1-cnn6.onnx       input "crops"  float32 [N, 3, S, S], values 0..255 (RGB)
    stage2-cnn7.onnx       output "points" float32 [N, L, 2], crop pixels (0-based centres)

The codec decode is inside each graph, so every stage returns crop pixels whatever unit
its model regresses. The batch axis is dynamic. Each ``.onnx`` file also carries its
`ModelSpec` as JSON in the model metadata (key ``wingface_spec``), so a single file is
self-describing too. `wingface.inference.onnx_backend.load_onnx_stages` reads either.

Int8 (``quantize="int8"``) is onnxruntime static quantisation (QDQ, per-channel int8
weights, uint8 activations) calibrated on synthetic face crops cut the way each stage cuts
them. The first conv and the output layer (the last fully connected layer, or an integral
model's heatmap conv and soft-argmax) stay float: the first conv reads 3 channels, too few
for onnxruntime's int8 kernels (about twice the time of the float one), and the output layer
and the decode keep the points' sub-pixel resolution.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .atomic import atomic_path
from .geometry import ALIGNED_CROPS, crop_squares, square_matrix, warp_image
from .lookup import lookup
from .models import LandmarkRegressor, ModelSpec
from .models import load_stages as load_models

__all__ = ["FORMAT", "MANIFEST", "QUANTIZE_MODES", "SPEC_METADATA_KEY", "VERSION", "PixelOutput",
           "calibration_crops", "export_onnx", "export_stage"]

log = logging.getLogger(__name__)

FORMAT = "wingface-onnx"
VERSION = 1
MANIFEST = "manifest.json"
SPEC_METADATA_KEY = "wingface_spec"
PRECISION_METADATA_KEY = "wingface_precision"  # "int8" in quantised files (absent: float32)
INPUT_NAME, OUTPUT_NAME = "crops", "points"
QUANTIZE_MODES = {"none": None, "int8": "int8"}
DEFAULT_OPSET = 17


class PixelOutput(nn.Module):
    """A `LandmarkRegressor` whose output is decoded to crop pixels.

    Input float32 [N, 3, S, S] 0..255 RGB; output float32 [N, L, C] crop pixels: C = 2, or
    C = 3 with the expected error of each point as the last column (models with an error head).
    """

    def __init__(self, model: LandmarkRegressor) -> None:
        super().__init__()
        self.model = model

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.model.predict_with_error(crops)


def export_stage(model: LandmarkRegressor, path: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write one model as an ONNX file (float32, dynamic batch, spec in the metadata)."""
    import onnx

    path = Path(path)
    size = model.spec.input_size
    wrapped = PixelOutput(model).eval().cpu()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # The TorchScript exporter (deprecated, hence the filter): the dynamo one needs
        # onnxscript, which wingface does not require.
        warnings.simplefilter("ignore", DeprecationWarning)
        raw = Path(tmp) / "model.onnx"
        torch.onnx.export(wrapped, (torch.zeros(2, 3, size, size),), str(raw), dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        proto = onnx.load(str(raw))
    _inline_identities(proto)
    onnx.helper.set_model_props(proto, {SPEC_METADATA_KEY: json.dumps(model.spec.to_dict())})
    onnx.checker.check_model(proto)
    with atomic_path(path) as tmp_path:
        onnx.save(proto, str(tmp_path))
    return path


def _inline_identities(proto) -> None:
    """Replace ``Identity`` nodes on initializers by copies of them, in place.

    The exporter shares identical weights (e.g. equal bias vectors) through Identity nodes;
    the quantiser only quantises convolutions whose weights and biases are initializers.
    """
    from onnx import numpy_helper

    inits = {t.name: t for t in proto.graph.initializer}
    for node in [n for n in proto.graph.node if n.op_type == "Identity" and n.input[0] in inits]:
        copy = numpy_helper.from_array(numpy_helper.to_array(inits[node.input[0]]), node.output[0])
        proto.graph.initializer.append(copy)
        proto.graph.node.remove(node)


def calibration_crops(spec: ModelSpec, count: int = 64, seed: int = 0) -> np.ndarray:
    """Synthetic face crops float32 [count, 3, S, S] (0..255) cut the way a stage of ``spec`` cuts.

    ``box`` stages see the square of the landmark box; ``aligned`` stages see the frame
    aligned to ``spec.reference`` from slightly perturbed true points (as a first stage
    would leave them). Schemes without a synthetic layout get 300-W faces cut by their box.
    """
    from .data.synthetic import supported_schemes, synthetic_faces

    known = spec.scheme.name in supported_schemes()
    faces = synthetic_faces(count, spec.scheme if known else "300w-68", image_size=160, seed=seed)
    points = np.stack([f.points for f in faces]).astype(np.float64)
    crop = spec.crop if known else "box"
    if crop in ALIGNED_CROPS:
        points = points + np.random.default_rng(seed).normal(0.0, 1.0, points.shape)
    squares = crop_squares(points, crop, spec.reference, spec.box_margin)
    matrices = square_matrix(squares.center, squares.side, spec.input_size, squares.angle)
    crops = np.stack([warp_image(f.image, m, spec.input_size) for f, m in zip(faces, matrices)])
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)


def _quantize_int8(float_path: Path, out_path: Path, spec: ModelSpec, calibration: int) -> None:
    """Static int8 quantisation of one exported stage (see the module docstring)."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self, crops: np.ndarray) -> None:
            self._batches: Iterator[np.ndarray] = iter(np.array_split(crops, max(1, len(crops) // 16)))

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    proto = onnx.load(str(float_path))
    with _quiet_root_logger():  # the quantiser logs advice through the root logger
        quantize_static(
            str(float_path), str(out_path), Reader(calibration_crops(spec, calibration)),
            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=_float_nodes(proto), extra_options={"ActivationSymmetric": False},
        )
    quantized = onnx.load(str(out_path))
    onnx.helper.set_model_props(quantized, {SPEC_METADATA_KEY: json.dumps(spec.to_dict()), PRECISION_METADATA_KEY: "int8"})
    onnx.save(quantized, str(out_path))


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _float_nodes(proto) -> list[str]:
    """Names of the nodes kept in float: the first conv, the points' output layer (the last
    Gemm or Conv outside the error head: a regression head's FC layer, an integral model's
    heatmap conv), every node after it (the decoding, the soft-argmax readout and its moment
    MatMul) and the error head."""
    nodes = list(proto.graph.node)
    first = [n.name for n in nodes if n.op_type == "Conv"][:1]
    last = max((i for i, n in enumerate(nodes)
                if n.op_type in ("Gemm", "Conv") and "error_head" not in n.name), default=len(nodes))
    return first + [n.name for i, n in enumerate(nodes) if i >= last or "error_head" in n.name]


def export_onnx(model: str | Path | Sequence[LandmarkRegressor], out_dir: str | Path, *, quantize: str | None = None,
                opset: int = DEFAULT_OPSET, calibration: int = 64) -> Path:
    """Export a checkpoint/cascade file (or models in cascade order) to an ONNX folder.

    Args:
        model: a ``.pt`` checkpoint or cascade file, or a list of `LandmarkRegressor`.
        out_dir: the export folder; replaced atomically if it exists.
        quantize: None (float32) or ``"int8"`` (static quantisation, see module docstring).
        opset: ONNX opset version.
        calibration: synthetic crops per stage used to calibrate int8 activations.
    Returns:
        The manifest path (``out_dir/manifest.json``).
    """
    mode = lookup(QUANTIZE_MODES, "none" if quantize is None else quantize, "quantize")
    if isinstance(model, (str, Path)):
        models, source = [m.model for m in load_models(model)], str(model)
    else:
        models, source = list(model), "in-memory models"
    if not models or not all(isinstance(m, LandmarkRegressor) for m in models):
        raise TypeError("model: expected a checkpoint path or a non-empty list of LandmarkRegressor")
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        entries = [_export_one(m, i, tmp, mode, opset, calibration) for i, m in enumerate(models)]
        manifest = {"format": FORMAT, "version": VERSION, "source": source, "opset": opset, "quantize": mode,
                    "input": {"name": INPUT_NAME, "dtype": "float32", "shape": ["N", 3, "S", "S"], "range": [0, 255]},
                    "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": ["N", "L", "C"],
                               "unit": "crop pixels: x, y (C = 2), and the expected error (C = 3, the "
                                       "stages whose spec has uncertainty)"},
                    "stages": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    log.debug("exported %d stage(s) of %s to %s%s", len(models), source, out_dir, " (int8)" if mode else "")
    return out_dir / MANIFEST


def _export_one(model: LandmarkRegressor, index: int, folder: Path, mode: str | None, opset: int,
                calibration: int) -> dict:
    name = f"stage{index + 1}-{model.spec.arch}{'-int8' if mode else ''}.onnx"
    if mode is None:
        export_stage(model, folder / name, opset)
    else:
        float_path = export_stage(model, folder / f".float-{name}", opset)
        _quantize_int8(float_path, folder / name, model.spec, calibration)
        float_path.unlink()
    return {"file": name, "spec": model.spec.to_dict()}
