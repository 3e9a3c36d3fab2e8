"""Inference speed in one process and one run: every precision, the default and fastest
paths, rooflines, start-up, video, the detector, and end to end beside MediaPipe.

- ``rows``: every path (PyTorch fp32; PyTorch bf16 where the CPU has native bfloat16;
  onnxruntime fp32; onnxruntime int8; int8 without the orientation stage, the fastest mode)
  x threads (1 and all) x faces per call (1 and 32), through `Landmarker.predict_batch` with
  given boxes on the bundled astronaut photo (boxes jittered by up to 5%). Each stage's time
  is split into crop, network and back-mapping (the rest of `Stage.run`), and the call's
  remainder is the Python overhead around the stages (image checks, `Face` objects).
- ``rooflines``: for each precision, a 1024x1024 matrix product in the same runtime at 1
  and all threads, by a constant matrix in onnxruntime (packed once, like weights) (GFLOP/s,
  int8 counted like float: 2 per multiply-add); each row's
  ``roofline_ratio`` is its networks' GFLOP/s over that.
- ``int8_ops_batch{B}_{cores}threads``: where each int8 stage's time goes at the largest
  batch on all cores (onnxruntime's profiler, per operator type) and how fast its int8
  convolutions run against the int8 roofline (`op_profile.op_breakdown`).
- ``default_ms_per_face_1thread``: `Landmarker()` as shipped (``precision="auto"``), one
  face, box given, one thread; ``fastest_ms_per_face_1thread``: the fastest mode.
- ``end_to_end_ms_640x480``: that default `Landmarker` with its detector on a 640x480 photo
  with one face, one core, taking turns in blocks of calls with MediaPipe face mesh on the
  same photo when ``mediapipe`` names a Python that has it (`end_to_end`).
- ``startup``: a fresh process's wall time to its first landmarks on one photo, through the
  API and through ``wingface predict``.
- ``video``: a 640x480 one-face clip through `process_video` (decoding and tracking, no
  drawing), all threads.
When the shipped model is not installed and no ``model`` is given, a randomly initialised
CNN-6 + CNN-7 cascade of the same architecture stands in (same speed; the JSON says so).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from ..inference.cascade import Cascade, without_orientation
from ..inference.landmarker import Landmarker, default_model_path
from ..inference.stages import Stage
from ..inference.torch_backend import TorchBackend
from ..models import LandmarkRegressor, create_model, flops_per_face, load_stages
from ..models.precision import fast_bf16
from ..schemes import get_scheme, mean_shape_68
from .op_profile import op_breakdown

ASTRONAUT_FACE = np.array([178.0, 70.0, 270.0, 176.0])  # landmark box of the bundled photo's face
FASTEST = "int8-upright"  # the fastest path: int8 without the orientation stage


def random_cascade(seed: int = 0, weight_scale: float = 0.03) -> list[LandmarkRegressor]:
    """An untrained but valid CNN-6 (box crop) + CNN-7 (aligned crop) 300-W cascade.

    Each output layer starts at the mean shape with weights of ``weight_scale`` (see
    `LandmarkRegressor.set_mean_shape`), so points lie near a face shape yet depend on the
    pixels. For speed benchmarks and tests; its landmarks are not accurate.
    """
    torch.manual_seed(seed)
    scheme, mean = get_scheme("300w-68"), mean_shape_68()
    first = create_model("cnn6", scheme)
    second = create_model("cnn7", scheme, crop="aligned", reference=mean)
    for model in (first, second):
        size, margin = model.spec.input_size, model.spec.box_margin
        model.set_mean_shape(mean * size / (1 + margin) + (size - 1) / 2, weight_scale=weight_scale)
    return [first.eval(), second.eval()]


# ----------------------------------------------------------------------------- timing one path
class _TimedStage(Stage):
    """A stage that adds its wall, crop and network times (seconds) and the crops its network
    saw to running totals (a box stage may run twice on rolled faces, see `Cascade`)."""

    def __init__(self, stage: Stage) -> None:
        super().__init__(stage.spec, self._network)
        self._inner = stage.backend
        self.reset()

    def reset(self) -> None:
        self.total = self.crop = self.network = 0.0
        self.crops_run = 0

    def _network(self, crops: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        out = self._inner(crops)
        self.network += time.perf_counter() - start
        self.crops_run += len(crops)
        return out

    def crops(self, image, squares):
        start = time.perf_counter()
        out = super().crops(image, squares)
        self.crop += time.perf_counter() - start
        return out

    def run(self, images, squares, shared=None):
        start = time.perf_counter()
        out = super().run(images, squares, shared)
        self.total += time.perf_counter() - start
        return out


def _measure(stages: Sequence[Stage], gflop: Sequence[float], images: list[np.ndarray],
             boxes: list[list[np.ndarray]], batch: int, seconds: float) -> dict[str, Any]:
    """ms per face of the whole call and of each stage's crop, network and back-mapping, at
    ``batch`` faces per call, and the networks' GFLOP/s (``gflop`` per crop of each stage)."""
    timed = [_TimedStage(s) for s in stages]
    landmarker = Landmarker(Cascade(timed), detector=None)
    calls = [(images[i:i + batch], boxes[i:i + batch]) for i in range(0, len(images) - batch + 1, batch)]
    landmarker.predict_batch(*calls[0])  # warm-up: first-call allocations, lazy initialisation
    for s in timed:
        s.reset()
    faces, start = 0, time.perf_counter()
    while faces < 2 * batch or time.perf_counter() - start < seconds:
        landmarker.predict_batch(*calls[(faces // batch) % len(calls)])
        faces += batch
    wall = time.perf_counter() - start
    ms = lambda sec: round(1000 * sec / faces, 3)  # noqa: E731 - local shorthand
    work = sum(g * s.crops_run for g, s in zip(gflop, timed))
    network = sum(s.network for s in timed)
    return {"cascade_ms_per_face": ms(wall), "faces_timed": faces,
            "stages": [{"crop_ms": ms(s.crop), "network_ms": ms(s.network),
                        "back_mapping_ms": ms(s.total - s.crop - s.network),
                        "crops_per_face": round(s.crops_run / faces, 3)} for s in timed],
            "python_overhead_ms": ms(wall - sum(s.total for s in timed)),
            "network_ms_per_face": ms(network), "network_gflops": round(work / network, 1)}


def available_cores() -> int:
    """CPU cores this process may run on (what onnxruntime and torch use by default)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextmanager
def _threads(threads: int) -> Iterator[None]:
    """torch and OpenCV limited to ``threads`` threads, and with one thread the process pinned
    to one core (as benchmarks/mediapipe_peer.py times MediaPipe), then restored."""
    import cv2

    torch_before, cv_before = torch.get_num_threads(), cv2.getNumThreads()
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    if cores and threads == 1:
        os.sched_setaffinity(0, {min(cores)})
    try:
        yield
    finally:
        torch.set_num_threads(torch_before)
        cv2.setNumThreads(cv_before)
        if cores and threads == 1:
            os.sched_setaffinity(0, cores)


def _face_inputs(count: int, seed: int) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """The bundled astronaut photo ``count`` times, each with the face box moved and scaled by
    up to 5%: a real face, so the cascade takes its usual path (synthetic faces look rolled to
    a trained stage 1 and make it run twice)."""
    photo = _astronaut()
    rng = np.random.default_rng(seed)
    side = ASTRONAUT_FACE[2] - ASTRONAUT_FACE[0]
    grow = np.array([-0.5, -0.5, 0.5, 0.5])
    boxes = [ASTRONAUT_FACE + side * (np.tile(rng.uniform(-0.05, 0.05, 2), 2) + rng.uniform(-0.05, 0.05) * grow)
             for _ in range(count)]
    return [photo] * count, [[b] for b in boxes]


def _astronaut() -> np.ndarray:
    from ..data.images import read_image

    with resources.as_file(resources.files("wingface").joinpath("assets", "astronaut.jpg")) as path:
        return read_image(path)


def photo_640x480() -> np.ndarray:
    """640x480 RGB: the astronaut photo scaled to 480x480, centred on grey (MediaPipe's timing image)."""
    import cv2

    image = np.full((480, 640, 3), 128, np.uint8)
    image[:, 80:560] = cv2.resize(_astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    return image


def _repeat_ms(action: Callable[[], Any], seconds: float) -> float:
    """Median ms of ``action`` over at least ``seconds`` (after one warm-up call)."""
    action()
    times, start = [], time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        action()
        times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)), 3)


# ----------------------------------------------------------------------------- paths and rooflines
def _int8_export(source: str, models: list[LandmarkRegressor], export_dir: Path) -> Path:
    """The bundled int8 export for the shipped model, else ``models`` exported in int8 under ``export_dir``."""
    from ..export import export_onnx

    int8_dir = default_model_path("int8")
    if source != str(default_model_path()) or not int8_dir.is_dir():
        int8_dir = export_dir / "int8"
        export_onnx(models, int8_dir, quantize="int8")
    return int8_dir


def _paths(models: list[LandmarkRegressor], export_dir: Path, int8_dir: Path) -> dict[str, tuple[str, str, Callable]]:
    """Path name -> (runtime, precision, threads -> stages)."""
    from ..export import export_onnx
    from ..inference.onnx_backend import load_onnx_stages

    export_onnx(models, export_dir / "fp32")
    # onnxruntime first: after PyTorch has run with several threads, its idle OpenMP workers
    # slow onnxruntime's own pool (measured: int8 at 2 threads 2x slower). The default path
    # never imports torch, so these rows are what it gets.
    paths = {"onnx-fp32": ("onnxruntime", "fp32", lambda threads: load_onnx_stages(export_dir / "fp32", threads)),
             "onnx-int8": ("onnxruntime", "int8", lambda threads: load_onnx_stages(int8_dir, threads)),
             FASTEST: ("onnxruntime", "int8", lambda threads: without_orientation(load_onnx_stages(int8_dir, threads))),
             "torch-fp32": ("torch", "fp32", lambda threads: [Stage(m.spec, TorchBackend(m)) for m in models])}
    if fast_bf16(torch.device("cpu")):
        paths["torch-bf16"] = ("torch", "bf16", lambda threads: [Stage(m.spec, TorchBackend(m, "cpu", "bf16"))
                                                                 for m in models])
    return paths


def roofline_gflops(runtime: str, precision: str, threads: int, seconds: float = 0.5, n: int = 1024) -> float:
    """GFLOP/s of an n x n x n matrix product at ``precision`` in ``runtime`` with ``threads``
    threads (int8: uint8 x int8 -> int32, 2 operations per multiply-add, like float)."""
    if runtime == "torch":
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        a, b = torch.rand(n, n, dtype=dtype), torch.rand(n, n, dtype=dtype)
        with _threads(threads):
            ms = _repeat_ms(lambda: torch.mm(a, b), seconds)
    else:
        session, feeds = _ort_matmul(precision, threads, n)
        ms = _repeat_ms(lambda: session.run(None, feeds), seconds)
    return round(2 * n ** 3 / (ms / 1000) / 1e9, 1)


def _ort_matmul(precision: str, threads: int, n: int):
    """An onnxruntime session of one MatMul (fp32) or MatMulInteger (int8) of an input by a
    constant matrix, and its input. The constant is packed once, as a network's weights are
    (a second input would be packed on every call: measured 2-8% slower, fp32 on 2 threads
    35%, which let convolutions pass 100% of that "roofline")."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    int8 = precision == "int8"
    rng = np.random.default_rng(0)
    if int8:
        a, b = rng.integers(0, 255, (n, n), dtype=np.uint8), rng.integers(-127, 127, (n, n), dtype=np.int8)
    else:
        a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    node = helper.make_node("MatMulInteger" if int8 else "MatMul", ["a", "b"], ["c"])
    a_type = helper.np_dtype_to_tensor_dtype(a.dtype)
    c_type = TensorProto.INT32 if int8 else TensorProto.FLOAT
    graph = helper.make_graph([node], "roofline", [helper.make_tensor_value_info("a", a_type, [n, n])],
                              [helper.make_tensor_value_info("c", c_type, [n, n])],
                              initializer=[numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session, {"a": a}


# ----------------------------------------------------------------------------- whole-program figures
STARTUP_API = """
import json, sys, time
from wingface import Landmarker
faces = Landmarker(threads=1).predict(sys.argv[1])
print(json.dumps({"faces": len(faces), "torch_imported": "torch" in sys.modules}))
"""


def startup(photo: Path, runs: int = 3) -> dict[str, Any]:
    """Median wall seconds of a fresh process from its start to its first landmarks on ``photo``:
    ``python -c`` through the API, and the ``wingface predict`` command (outputs to a temporary folder)."""
    def wall(command: list[str]) -> tuple[float, str]:
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        return time.perf_counter() - start, done.stdout

    with tempfile.TemporaryDirectory() as tmp:
        api = [wall([sys.executable, "-c", STARTUP_API, str(photo)]) for _ in range(runs)]
        predict = [sys.executable, "-m", "wingface.cli.main", "predict", str(photo), "--out", tmp, "--threads", "1"]
        cli = [wall(predict)[0] for _ in range(runs)]
    info = json.loads(api[-1][1].strip().splitlines()[-1])
    return {"api_first_landmarks_s": round(float(np.median([t for t, _ in api])), 3),
            "cli_predict_s": round(float(np.median(cli)), 3), "faces": info["faces"],
            "torch_imported": info["torch_imported"], "runs": runs,
            "includes": "interpreter start, imports, model load, reading the photo, detection, landmarks "
                        "(and for the CLI its output files)"}


def video_fps(frames: int = 150) -> dict[str, Any]:
    """Frames per second of the default `Landmarker` tracking a 640x480 one-face clip (decode +
    track, no drawing, all threads); the clip is written to a temporary file first."""
    import cv2

    from ..inference.video import FaceTracker, process_video

    base = photo_640x480()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
        for i in range(frames):  # a slow sideways drift, so tracking has work to do
            shift = np.float32([[1, 0, 12 * np.sin(i / 15)], [0, 1, 4 * np.cos(i / 20)]])
            writer.write(cv2.cvtColor(cv2.warpAffine(base, shift, (640, 480), borderValue=(128, 128, 128)),
                                      cv2.COLOR_RGB2BGR))
        writer.release()
        tracker = FaceTracker(Landmarker())
        start = time.perf_counter()
        result = process_video(path, tracker, None, None, progress=False)
        wall = time.perf_counter() - start
    return {"fps": round(result.frames / wall, 1), "frames": result.frames, "faces": result.faces,
            "threads": available_cores(), "includes": "decoding, detection every 30 frames, the cascade per "
                                                      "frame, smoothing; no drawing or writing"}


E2E_BLOCK = 20  # calls per block when wingface and MediaPipe take turns


def end_to_end(landmarker: Landmarker, photo: np.ndarray, seconds: float, mediapipe: str | None) -> dict[str, Any]:
    """ms per ``landmarker.predict(photo)`` on one core and, when ``mediapipe`` names a Python
    that has it, MediaPipe face mesh on the same photo (benchmarks/mediapipe_peer.py
    ``--serve-timing``, its own process, one core): the two take turns in blocks of
    `E2E_BLOCK` calls for about ``seconds`` each, so drifts in the machine's speed reach both.
    The landmarker's detector alone takes turns too: ``end_to_end_breakdown`` splits the
    call into the detector and the rest (landmarks, crops, Python)."""
    server = _mediapipe_server(mediapipe) if mediapipe else None
    ours, detector, theirs = [], [], []
    try:
        with _threads(1):
            landmarker.predict(photo)
            start = time.perf_counter()
            while len(ours) < 5 * E2E_BLOCK or time.perf_counter() - start < seconds * (2 if server else 1):
                ours += _block_ms(lambda: landmarker.predict(photo))
                detector += _block_ms(lambda: landmarker.detector.detect(photo))
                if server:
                    server.stdin.write(f"{E2E_BLOCK}\n")
                    server.stdin.flush()
                    theirs += json.loads(server.stdout.readline())
    finally:
        if server:
            server.stdin.close()
            server.wait()
    out: dict[str, Any] = {"end_to_end_ms_640x480": _median_ms(ours),
                           "end_to_end_breakdown": {"detector_ms": _median_ms(detector),
                                                    "landmarks_ms": round(_median_ms(ours) - _median_ms(detector), 3)},
                           "mediapipe": None}
    if server:
        out["mediapipe"] = {**server.info, "ms_per_640x480_image": _median_ms(theirs),
                            "p90_ms": round(float(np.quantile(theirs, 0.9)), 3), "runs": len(theirs), "cores": 1,
                            "timing": f"blocks of {E2E_BLOCK} calls taking turns with wingface's"}
        out["end_to_end_vs_mediapipe"] = round(out["end_to_end_ms_640x480"] / out["mediapipe"]["ms_per_640x480_image"], 3)
    return out


def _block_ms(action: Callable[[], Any]) -> list[float]:
    """ms of each of `E2E_BLOCK` calls of ``action``."""
    times = []
    for _ in range(E2E_BLOCK):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _median_ms(times: Sequence[float]) -> float:
    return round(float(np.median(times)), 3)


def _mediapipe_server(python: str) -> subprocess.Popen:
    """benchmarks/mediapipe_peer.py ``--serve-timing`` in ``python``, warmed up; its first
    line (version, what is timed) is in ``.info``."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "mediapipe_peer.py"
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: --mediapipe needs a source checkout of wingface")
    server = subprocess.Popen([python, str(script), "--serve-timing"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    header, ready = server.stdout.readline(), server.stdout.readline()
    if ready.strip() != "ready":
        server.kill()
        raise RuntimeError(f"{python} {script.name} --serve-timing did not start (is mediapipe 0.10.21 installed there?)")
    server.info = json.loads(header)
    return server


def _detector_ms(seconds: float) -> dict[str, float]:
    """ms per 640x480 photo for the default detector and YuNet, one core."""
    from ..detection import create_detector

    image = photo_640x480()
    with _threads(1):
        return {name: _repeat_ms(lambda d=create_detector(name): d.detect(image), seconds)
                for name in ("default", "yunet")}


# ----------------------------------------------------------------------------- the benchmark
def bench_predict(model: str | Path | None = None, *, batches: Sequence[int] = (1, 32), seconds: float = 1.0,
                  mediapipe: str | None = None, whole_program: bool = True, seed: int = 0) -> dict[str, Any]:
    """Measure inference speed; returns a JSON-ready dict (see the module docstring).

    Args:
        model: a ``.pt`` checkpoint or cascade; None for the shipped model (or the
            random-init stand-in when it is not installed).
        batches: faces per call to time.
        seconds: minimum timed wall time per measurement.
        mediapipe: a Python executable with mediapipe 0.10.21 installed, to time it beside.
        whole_program: also time start-up, video and end to end (fresh processes, a clip).
    """
    source, models = _models(model, seed)
    cores = available_cores()
    images, boxes = _face_inputs(max(batches) * 2, seed)
    gflop = [flops_per_face(m) / 1e9 for m in models]
    rows, rooflines = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        int8_dir = _int8_export(source, models, Path(tmp))
        # Before any PyTorch row, like the onnxruntime rows (see _paths).
        rooflines["onnxruntime-int8", cores] = roofline_gflops("onnxruntime", "int8", cores)
        int8_ops = op_breakdown(int8_dir, max(batches), cores, rooflines["onnxruntime-int8", cores])
        for name, (runtime, precision, make) in _paths(models, Path(tmp), int8_dir).items():
            key = f"{runtime}-{precision}"
            for threads in sorted({1, cores}):
                if (key, threads) not in rooflines:
                    rooflines[key, threads] = roofline_gflops(runtime, precision, threads)
                stages = make(threads)
                path_gflop = gflop if len(stages) == len(gflop) else gflop[len(gflop) - len(stages):]
                for batch in batches:
                    with _threads(threads):
                        row = _measure(stages, path_gflop, images, boxes, batch, seconds)
                    rows.append({"path": name, "runtime": runtime, "precision": precision, "threads": threads,
                                 "batch": batch, **row,
                                 "roofline_ratio": round(row["network_gflops"] / rooflines[key, threads], 3)})
    result = {
        "model": source, "random_init": source.startswith("random-init"),
        "stages": [{"arch": m.spec.arch, "input_size": m.spec.input_size, "gflop_per_face": round(g, 4)}
                   for m, g in zip(models, gflop)],
        "threads_all": cores, "rows": rows,
        "rooflines_gflops": [{"runtime": k.split("-")[0], "precision": k.split("-")[1], "threads": t, "gflops": v}
                             for (k, t), v in rooflines.items()],
        **_headlines(rows, max(batches), cores, model),
        f"int8_ops_batch{max(batches)}_{cores}threads": int8_ops,
        "detector_ms_per_640x480": _detector_ms(seconds),
        "cpu": _cpu_name(), "torch": torch.__version__, "onnxruntime": _ort_version(),
        "note": "wall-clock times on one machine, nothing else running; cascade_ms_per_face is the whole "
                "predict call with a box given; int8 GFLOP/s count operations like float",
    }
    if whole_program:
        result.update(_whole_program(model, seconds, mediapipe))
    return result


def _headlines(rows: list[dict], batch: int, cores: int, model: str | Path | None) -> dict[str, Any]:
    """The default and fastest single-face paths, and the batched roofline ratio per precision."""
    default_precision = Landmarker(model, detector=None).precision if model is None else "fp32"
    default_path = {"int8": "onnx-int8", "bf16": "torch-bf16"}.get(default_precision, "torch-fp32")
    single = {r["path"]: r for r in rows if r["batch"] == 1 and r["threads"] == 1}
    batched = {r["path"]: r for r in rows if r["batch"] == batch and r["threads"] == cores}
    out: dict[str, Any] = {"default_path": default_path, "fastest_path": FASTEST}
    if single:
        out["default_ms_per_face_1thread"] = single[default_path]["cascade_ms_per_face"]
        out["fastest_ms_per_face_1thread"] = single[FASTEST]["cascade_ms_per_face"]
    out[f"roofline_ratio_batch{batch}_{cores}threads"] = {p: r["roofline_ratio"] for p, r in batched.items()}
    return out


def _whole_program(model: str | Path | None, seconds: float, mediapipe: str | None) -> dict[str, Any]:
    """Start-up, video and end-to-end figures of the default `Landmarker` (shipped model only)."""
    if model is not None or not default_model_path().is_file():
        return {}
    photo = photo_640x480()
    out = end_to_end(Landmarker(threads=1), photo, seconds, mediapipe)
    with tempfile.TemporaryDirectory() as tmp:
        import cv2

        path = Path(tmp) / "photo.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
        out["startup"] = startup(path)
    out["video"] = video_fps()
    return out


def _models(model: str | Path | None, seed: int) -> tuple[str, list[LandmarkRegressor]]:
    if model is not None:
        return str(model), [m.model for m in load_stages(model)]
    if default_model_path().is_file():
        return str(default_model_path()), [m.model for m in load_stages(default_model_path())]
    return "random-init cnn6+cnn7 (the shipped model is not installed; same architecture and speed)", \
        random_cascade(seed)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
