"""Inference speed: ms per face for stage 1 and the whole cascade, PyTorch and onnxruntime.

Every combination of backend (PyTorch, onnxruntime float32, optionally onnxruntime int8),
thread count (1 and all) and batch (1 face per call, 32 faces per call) runs the full API
path (`Landmarker.predict_batch` with given boxes: crops, networks, mapping back) on the
bundled astronaut photo's face with jittered boxes; each stage's wall time and its
network's time are recorded separately.
The detector's time is measured on a 640x480 image. No dataset is needed. When the shipped
model is not installed and no ``model`` is given, a randomly initialised CNN-6 + CNN-7
cascade of the same architecture stands in (its speed is the same; the JSON says so).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..inference.cascade import Cascade
from ..inference.landmarker import Landmarker, default_model_path
from ..inference.stages import Stage, TorchBackend
from ..models import LandmarkRegressor, create_model, flops_per_face, load_stages
from ..schemes import get_scheme

PEAK_GFLOPS = 190.0  # this project's reference machine, all cores (see the docs)


def reference_mean_shape() -> np.ndarray:
    """The bundled mean 300-W shape, float64 [68, 2], unit frame (box-centred, box width 1)."""
    text = resources.files("wingface").joinpath("assets", "mean_shape_68.json").read_text()
    return np.array(json.loads(text)["points"], dtype=np.float64)


def random_cascade(seed: int = 0, weight_scale: float = 0.03) -> list[LandmarkRegressor]:
    """An untrained but valid CNN-6 (box crop) + CNN-7 (aligned crop) 300-W cascade.

    Each output layer starts at the mean shape with weights of ``weight_scale`` (see
    `LandmarkRegressor.set_mean_shape`), so points lie near a face shape yet depend on the
    pixels. For speed benchmarks and tests; its landmarks are not accurate.
    """
    torch.manual_seed(seed)
    scheme, mean = get_scheme("300w-68"), reference_mean_shape()
    first = create_model("cnn6", scheme)
    second = create_model("cnn7", scheme, crop="aligned", reference=mean)
    for model in (first, second):
        size, margin = model.spec.input_size, model.spec.box_margin
        model.set_mean_shape(mean * size / (1 + margin) + (size - 1) / 2, weight_scale=weight_scale)
    return [first.eval(), second.eval()]


class _TimedStage(Stage):
    """A stage that adds its wall time, its network's time (seconds) and the crops its network
    saw to running totals (stage 1 may run twice on rolled faces, see `Cascade`)."""

    def __init__(self, stage: Stage) -> None:
        super().__init__(stage.spec, self._network)
        self._inner = stage.backend
        self.total = self.network = 0.0
        self.crops_run = 0

    def _network(self, crops: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        out = self._inner(crops)
        self.network += time.perf_counter() - start
        self.crops_run += len(crops)
        return out

    def run(self, images, squares):
        start = time.perf_counter()
        out = super().run(images, squares)
        self.total += time.perf_counter() - start
        return out


def _measure(stages: Sequence[Stage], gflop: Sequence[float], images: list[np.ndarray],
             boxes: list[list[np.ndarray]], batch: int, seconds: float) -> dict[str, Any]:
    """ms per face of each stage (wall and network) and of the whole call, at ``batch`` faces per
    call, and the networks' GFLOP/s (``gflop`` per crop of each stage, times the crops run)."""
    timed = [_TimedStage(s) for s in stages]
    landmarker = Landmarker(Cascade(timed), detector=None)
    calls = [(images[i:i + batch], boxes[i:i + batch]) for i in range(0, len(images) - batch + 1, batch)]
    landmarker.predict_batch(*calls[0])  # warm-up: first-call allocations, lazy initialisation
    for s in timed:
        s.total = s.network = 0.0
        s.crops_run = 0
    faces, start = 0, time.perf_counter()
    while faces < 2 * batch or time.perf_counter() - start < seconds:
        landmarker.predict_batch(*calls[(faces // batch) % len(calls)])
        faces += batch
    wall = time.perf_counter() - start
    ms = lambda sec: round(1000 * sec / faces, 3)  # noqa: E731 - local shorthand
    work = sum(g * s.crops_run for g, s in zip(gflop, timed))
    return {"cascade_ms_per_face": ms(wall), "stage1_ms_per_face": ms(timed[0].total),
            "network_ms_per_face": [ms(s.network) for s in timed], "faces_timed": faces,
            "crops_per_face": [round(s.crops_run / faces, 3) for s in timed],
            "network_gflops": round(work / sum(s.network for s in timed), 1)}


def available_cores() -> int:
    """CPU cores this process may run on (what onnxruntime and torch use by default)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _with_threads(threads: int, action: Callable[[], Any]) -> Any:
    """Run ``action`` with torch limited to ``threads`` threads, then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return action()
    finally:
        torch.set_num_threads(before)


ASTRONAUT_FACE = np.array([178.0, 70.0, 270.0, 176.0])  # landmark box of the bundled photo's face


def _face_inputs(count: int, seed: int) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """The bundled astronaut photo ``count`` times, each with the face box moved and scaled by
    up to 5%: a real face, so the cascade takes its usual path (synthetic faces look rolled to
    a trained stage 1 and make it run twice)."""
    from ..data.images import read_image

    with resources.as_file(resources.files("wingface").joinpath("assets", "astronaut.jpg")) as path:
        photo = read_image(path)
    rng = np.random.default_rng(seed)
    side = ASTRONAUT_FACE[2] - ASTRONAUT_FACE[0]
    grow = np.array([-0.5, -0.5, 0.5, 0.5])
    boxes = [ASTRONAUT_FACE + side * (np.tile(rng.uniform(-0.05, 0.05, 2), 2) + rng.uniform(-0.05, 0.05) * grow)
             for _ in range(count)]
    return [photo] * count, [[b] for b in boxes]


def _detector_ms(seconds: float) -> dict[str, float]:
    """ms per 640x480 image for the default detector (BlazeFace found the face) and YuNet."""
    import cv2

    from ..data.images import read_image
    from ..detection import create_detector

    with resources.as_file(resources.files("wingface").joinpath("assets", "astronaut.jpg")) as path:
        photo = cv2.resize(read_image(path), (480, 480), interpolation=cv2.INTER_AREA)
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, 80:560] = photo
    out = {}
    for name in ("default", "yunet"):
        detector = create_detector(name)
        detector.detect(image)
        n, start = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - start < seconds:
            detector.detect(image)
            n += 1
        out[name] = round(1000 * (time.perf_counter() - start) / n, 2)
    return out


def _backends(models: list[LandmarkRegressor], export_dir: Path, int8: bool) -> dict[str, Callable[[int], list[Stage]]]:
    """Backend name -> (threads -> stages)."""
    from ..export import export_onnx
    from ..inference.onnx_backend import load_onnx_stages

    torch_stages = [Stage(m.spec, TorchBackend(m)) for m in models]
    export_onnx(models, export_dir / "float")
    out: dict[str, Callable[[int], list[Stage]]] = {
        "torch": lambda threads: torch_stages,
        "onnxruntime": lambda threads: load_onnx_stages(export_dir / "float", threads=threads),
    }
    if int8:
        export_onnx(models, export_dir / "int8", quantize="int8")
        out["onnxruntime-int8"] = lambda threads: load_onnx_stages(export_dir / "int8", threads=threads)
    return out


def bench_predict(model: str | Path | None = None, *, batches: Sequence[int] = (1, 32), seconds: float = 1.0,
                  int8: bool = False, peak_gflops: float = PEAK_GFLOPS, seed: int = 0) -> dict[str, Any]:
    """Measure inference speed; returns a JSON-ready dict (see the module docstring).

    Args:
        model: a ``.pt`` checkpoint or cascade; None for the shipped model (or the
            random-init stand-in when it is not installed).
        batches: faces per call to time.
        seconds: minimum timed wall time per measurement.
        int8: also time the int8 ONNX export.
        peak_gflops: the machine's peak (all cores) to compare the batched throughput with.
    """
    source, models = _models(model, seed)
    all_threads = available_cores()
    images, boxes = _face_inputs(max(batches) * 2, seed)
    gflop = [flops_per_face(m) / 1e9 for m in models]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in _backends(models, Path(tmp), int8).items():
            for threads in sorted({1, all_threads}):
                stages = make(threads)
                for batch in batches:
                    row = _with_threads(threads, lambda: _measure(stages, gflop, images, boxes, batch, seconds))
                    rows.append({"backend": name, "threads": threads, "batch": batch, **row})
    return {
        "model": source, "random_init": source.startswith("random-init"),
        "stages": [{"arch": m.spec.arch, "input_size": m.spec.input_size, "gflop_per_face": round(g, 4)}
                   for m, g in zip(models, gflop)],
        "threads_all": all_threads, "rows": rows,
        "detector_ms_per_640x480": _detector_ms(seconds),
        **_headlines(rows, gflop, max(batches), peak_gflops),
        "note": "wall-clock times, rough on a shared machine; cascade_ms_per_face is the whole call (crops, "
                "networks, mapping back), network_ms_per_face the networks alone; int8 GFLOP/s are "
                "float-equivalent (same FLOP count)",
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "onnxruntime": _ort_version(),
    }


def _headlines(rows: list[dict], gflop: Sequence[float], batch: int, peak_gflops: float) -> dict[str, Any]:
    """The best float32 batched throughput against the peak, and the best single-face latency."""
    # The peak is a float32 one: int8 rows (float-equivalent GFLOP/s) are left out.
    best = max((r for r in rows if r["batch"] == batch and "int8" not in r["backend"]),
               key=lambda r: r["network_gflops"])
    single = min((r for r in rows if r["batch"] == 1 and r["threads"] == 1),
                 key=lambda r: r["cascade_ms_per_face"], default=None)
    return {
        "peak_gflops": peak_gflops,
        "best_batched_float": {
            "backend": best["backend"], "threads": best["threads"], "network_gflops": best["network_gflops"],
            "network_fraction_of_peak": round(best["network_gflops"] / peak_gflops, 3),
            "end_to_end_gflops": round(sum(g * c for g, c in zip(gflop, best["crops_per_face"]))
                                       / (best["cascade_ms_per_face"] / 1000), 1),
        },
        "best_single_face_1_thread": None if single is None else
        {"backend": single["backend"], "cascade_ms_per_face": single["cascade_ms_per_face"]},
    }


def _models(model: str | Path | None, seed: int) -> tuple[str, list[LandmarkRegressor]]:
    if model is not None:
        return str(model), [m.model for m in load_stages(model)]
    if default_model_path().is_file():
        return str(default_model_path()), [m.model for m in load_stages(default_model_path())]
    return "random-init cnn6+cnn7 (the shipped model is not installed; same architecture and speed)", \
        random_cascade(seed)


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
