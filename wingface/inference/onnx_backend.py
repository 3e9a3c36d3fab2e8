"""The onnxruntime backend: stages from an ONNX export (see `wingface.export`).

    stages = load_onnx_stages("export_dir")          # or its manifest.json, or one .onnx file
    Landmarker("export_dir", backend="onnx")          # the same through the API
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..spec import ModelSpec
from .stages import Stage, run_in_chunks

# Kept literal (not imported from wingface.export) so inference needs no export machinery.
FORMAT = "wingface-onnx"
VERSION = 1
MANIFEST = "manifest.json"
SPEC_METADATA_KEY = "wingface_spec"
PRECISION_METADATA_KEY = "wingface_precision"


# Propagation would hoist the quantisation after an int8 export's float first block above its
# max-pool, which onnxruntime then runs in uint8 NCHW, 10x slower than the float
# blocked-layout pool it replaces (see wingface.export).
DISABLED_OPTIMIZERS = ["QDQPropagationTransformer"]


def session_options(threads: int | None = None):
    """The onnxruntime session options of every stage: all graph optimisations, ``threads``
    intra-op threads (None: all cores), and workers that sleep rather than spin."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # A cascade holds one session per stage, each with its own pool: spinning workers of
    # the idle sessions would take the cores from the running one (measured with 2
    # threads: 5.95 -> 2.35 ms for one face, 3.40 -> 1.70 ms per face in batches of 32).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxBackend:
    """Runs one exported stage with onnxruntime on the CPU.

    Args:
        path: the ``.onnx`` file (input float32 [N, 3, S, S] 0..255, output crop pixels [N, L, C]).
        threads: intra-op threads; None lets onnxruntime use all cores.
        precision: ``fp32`` or ``int8``, the arithmetic of the file; None reads it from the
            file's metadata (int8 files are marked by `wingface.export`).
    """

    def __init__(self, path: str | Path, threads: int | None = None, precision: str | None = None) -> None:
        import onnxruntime as ort

        options = session_options(threads)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                                disabled_optimizers=DISABLED_OPTIMIZERS)
        except Exception as err:  # onnxruntime raises its own exception types for bad files
            raise ValueError(f"{path}: not a loadable ONNX model: {type(err).__name__}: {str(err)[:200]}") from None
        self.path = Path(path)
        self.input_name = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        self.precision = precision or meta.get(PRECISION_METADATA_KEY, "fp32")

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """Crops float32 [N, 3, S, S] (0..255) -> crop pixels float64 [N, L, C]."""
        return run_in_chunks(self._run, np.ascontiguousarray(crops, dtype=np.float32))

    def _run(self, crops: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: crops})[0].astype(np.float64)


def load_onnx_stages(path: str | Path, threads: int | None = None) -> list[Stage]:
    """Stages of an ONNX export: its folder, its ``manifest.json``, or a single ``.onnx`` file.

    Raises FileNotFoundError for a missing path or stage file and ValueError (naming the
    file) for a manifest or model that is not a wingface ONNX export.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"ONNX export not found: {path}")
    if path.suffix == ".onnx":
        backend = OnnxBackend(path, threads)
        return [Stage(_spec_from_metadata(backend), backend)]
    manifest = _read_manifest(path)
    precision = "int8" if manifest.get("quantize") == "int8" else "fp32"
    stages = []
    for i, entry in enumerate(manifest["stages"]):
        source = f"{path}: stages[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or "spec" not in entry:
            raise ValueError(f"{source}: expected {{'file': ..., 'spec': ...}}")
        onnx_file = path.parent / entry["file"]
        if not onnx_file.is_file():
            raise FileNotFoundError(f"{source}: ONNX file not found: {onnx_file}")
        spec = ModelSpec.from_dict(entry["spec"], source=f"{source}: spec")
        stages.append(Stage(spec, OnnxBackend(onnx_file, threads, precision)))
    return stages


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a JSON manifest: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a wingface ONNX manifest (no format {FORMAT!r})")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise ValueError(f"{path}: manifest version {manifest.get('version')!r} is newer than this wingface "
                         f"reads ({VERSION}); upgrade wingface")
    if not isinstance(manifest.get("stages"), list) or not manifest["stages"]:
        raise ValueError(f"{path}: manifest has no stages")
    return manifest


def _spec_from_metadata(backend: OnnxBackend) -> ModelSpec:
    meta = backend.session.get_modelmeta().custom_metadata_map
    if SPEC_METADATA_KEY not in meta:
        raise ValueError(f"{backend.path}: no {SPEC_METADATA_KEY!r} metadata (not exported by wingface)")
    try:
        data = json.loads(meta[SPEC_METADATA_KEY])
    except json.JSONDecodeError as err:
        raise ValueError(f"{backend.path}: bad {SPEC_METADATA_KEY!r} metadata: {err}") from None
    return ModelSpec.from_dict(data, source=f"{backend.path}: metadata")

