"""`wingface predict PATH...` (images, folders, globs, videos) and `wingface demo`.

Outputs go to ``--out`` (default ``wingface-out``), each written atomically:

- per image ``NAME.json``: ``{"image", "width", "height", "faces": [Face.to_dict(), ...]}``;
  with ``--draw`` also ``NAME.landmarks.png``; with ``--csv`` one ``landmarks.csv`` for all
  images (a row per face: image, face, score, box_x0..box_y1, x0, y0, x1, y1, ...).
  NAME is the file's stem, or its path under a folder given on the command line.
- per video ``NAME.landmarks.mp4`` (annotated) and ``NAME.csv`` (a row per face per frame).

``--boxes FILE`` is a JSON object mapping an image to its face boxes in pixels::

    {"photos/a.jpg": [[x0, y0, x1, y1], ...], "b.png": [[...]]}

A key matches an image whose path ends with it (``/data/photos/a.jpg`` matches
``photos/a.jpg`` and ``a.jpg``); the longest matching key wins. Listed images skip the
detector (an empty list means no face); the others go through the detector (or fail with
``--detector none``). Keys that match no image are reported.

A bad item (unreadable image or video, frame that fails to decode, output that cannot be
written) is reported by name and the rest go on; the exit code is 1 if anything failed
(``--strict``: stop at the first failure).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from .options import add_precision_option

GLOB_CHARS = set("*?[")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``predict`` and ``demo`` verbs."""
    from ..detection import DETECTOR_NAMES
    from ..inference.drawing import LOW_CONFIDENCE

    p = sub.add_parser("predict", help="landmarks for images, folders and videos",
                       description=__doc__.split("\n\n", 1)[1].replace("``", ""),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively), globs "
                   "(quote them) or video files")
    p.add_argument("--out", type=Path, default=Path("wingface-out"), help="output folder (default wingface-out)")
    p.add_argument("--csv", action="store_true", help="also write OUT/landmarks.csv, one row per face")
    p.add_argument("--draw", action="store_true", help="also write annotated images NAME.landmarks.png")
    p.add_argument("--boxes", type=Path, help="JSON file of face boxes per image (see above); skips detection")
    p.add_argument("--detector", default="default", choices=(*DETECTOR_NAMES, "none"),
                   help="face detector (default: BlazeFace, then YuNet); none: boxes must be given")
    p.add_argument("--batch-size", type=int, default=16, help="images per network batch (default 16)")
    p.add_argument("--min-confidence", type=float, default=None, metavar="C",
                   help="drop faces whose landmark confidence is below C (0..1); in videos, a followed face "
                        f"under C (default {LOW_CONFIDENCE}) is looked for again with the detector")
    p.add_argument("--strict", action="store_true", help="stop at the first failed item")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _model_options(p)
    v = p.add_argument_group("video")
    v.add_argument("--redetect-every", type=int, default=30, help="run the detector every N frames (default 30)")
    v.add_argument("--no-smooth", action="store_true", help="write raw points (no One Euro filter)")
    v.add_argument("--min-cutoff", type=float, default=1.0,
                   help="One Euro cutoff at rest, Hz; lower = smoother (default 1)")
    v.add_argument("--beta", type=float, default=10.0,
                   help="One Euro speed coefficient, per face size/s; higher = less lag (default 10)")
    v.add_argument("--d-cutoff", type=float, default=1.0, help="One Euro speed cutoff, Hz (default 1)")
    p.set_defaults(func=run_predict)

    d = sub.add_parser("demo", help="landmarks on the bundled astronaut photo (a quick check)",
                       description="Run the shipped model on the bundled public-domain astronaut photo and "
                                   "write the annotated image and the JSON.")
    d.add_argument("--out", type=Path, default=Path("wingface-demo"), help="output folder (default wingface-demo)")
    _model_options(d)
    d.set_defaults(func=run_demo)


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="checkpoint/cascade .pt or ONNX export folder (default: the shipped model)")
    p.add_argument("--backend", choices=("torch", "onnx"),
                   help="default: onnx for an ONNX export folder, torch for a .pt file")
    p.add_argument("--device", default="cpu", help="PyTorch device (cpu, cuda)")
    p.add_argument("--threads", type=int, help="CPU threads (default: all)")
    p.add_argument("--refine", type=int, default=1, help="times the last (aligned) stage runs (default 1)")
    p.add_argument("--flip-test", action="store_true",
                   help="average each network with its mirrored-crop output (2x network time, ~3%% lower NME)")
    p.add_argument("--no-orientation", action="store_true",
                   help="take faces as upright: skip the orientation stage and what only rolled faces need "
                        "(the fastest mode; for faces within about 20 degrees of upright)")
    add_precision_option(p)


@dataclass
class Item:
    """One input: its path, its output name (no suffix), its kind (``image`` or ``video``) and
    its path under the folder given on the command line (its name in landmarks.csv)."""

    path: Path
    name: str
    kind: str
    rel: str


@dataclass
class Report:
    """What a run did: counts and failures (item, reason)."""

    images: int = 0
    faces: int = 0
    low_confidence: int = 0  # faces kept whose confidence is under drawing.LOW_CONFIDENCE
    turned: int = 0  # faces the detector found only in a turned copy of the image
    videos: int = 0
    frames: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    strict: bool = False

    def fail(self, item: str, reason: Any) -> None:
        """Record a failed item; raise at once under ``--strict``."""
        text = str(reason)
        if text.startswith(f"{item}: "):  # errors that already name the file
            text = text[len(item) + 2:]
        if self.strict:
            raise ValueError(f"{item}: {text} (--strict)")
        print(f"wingface predict: {item}: {text}", file=sys.stderr)
        self.failures.append((item, text))


# ----------------------------------------------------------------------------- inputs


def collect_inputs(paths: Sequence[str], out_dir: Path, report: Report) -> list[Item]:
    """Images and videos named by files, folders (recursive) and globs, with unique output names."""
    from ..data.images import IMAGE_SUFFIXES
    from ..inference.video import VIDEO_SUFFIXES

    out = out_dir.resolve()
    found: list[Item] = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            files = [f for f in sorted(path.rglob("*")) if f.is_file() and out not in f.resolve().parents
                     and not any(part.startswith(".") for part in f.relative_to(path).parts)
                     and f.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES]
            found += [_item(f, f.relative_to(path), VIDEO_SUFFIXES) for f in files]
            if not files:
                report.fail(arg, "folder holds no image or video")
        elif path.is_file():
            found.append(_item(path, Path(path.name), VIDEO_SUFFIXES))
        elif GLOB_CHARS & set(arg):
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True) if Path(m).is_file())
            found += [_item(m, Path(m.name), VIDEO_SUFFIXES) for m in matches]
            if not matches:
                report.fail(arg, "no file matches this pattern")
        else:
            report.fail(arg, "no such file or folder")
    return _unique_names(found)


def _item(path: Path, rel: Path, video_suffixes: Sequence[str]) -> Item:
    kind = "video" if path.suffix.lower() in video_suffixes else "image"
    return Item(path, rel.with_suffix("").as_posix(), kind, rel.as_posix())


def _unique_names(items: list[Item]) -> list[Item]:
    """Give items whose output names collide (``a.jpg``, ``a.png``) suffixes ``-2``, ``-3``, ..."""
    seen: set[str] = set()
    for item in items:
        base, k = item.name, 1
        while item.name.lower() in seen:
            k += 1
            item.name = f"{base}-{k}"
        seen.add(item.name.lower())
    return items


def read_boxes(path: Path) -> dict[str, Any]:
    """The ``--boxes`` file: image key -> float64 [K, 4] boxes; ValueError naming a bad entry."""
    import numpy as np

    if not path.is_file():
        raise FileNotFoundError(f"--boxes: file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"--boxes {path}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"--boxes {path}: expected a JSON object mapping image names to box lists")
    boxes = {}
    for key, value in data.items():
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            array = np.zeros((0, 3))
        if array.size == 0 and isinstance(value, list):
            array = array.reshape(0, 4)
        if array.ndim != 2 or array.shape[1] != 4:
            raise ValueError(f"--boxes {path}: {key!r}: expected a list of [x0, y0, x1, y1] boxes, got {value!r}")
        boxes[Path(key).as_posix()] = array
    return boxes


def _boxes_for(item: Item, boxes: dict[str, Any], used: set[str]) -> Any:
    """The boxes of the longest key that the image's path (as given, or absolute) ends with."""
    for parts in (item.path.parts, item.path.resolve().parts):
        for k in range(len(parts)):
            key = Path(*parts[k:]).as_posix()
            if key in boxes:
                used.add(key)
                return boxes[key]
    return None


# ----------------------------------------------------------------------------- outputs


def check_writable(folder: Path) -> None:
    """Create ``folder`` and prove a file can be written there; PermissionError naming it if not."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise PermissionError(f"--out {folder}: cannot write there ({err.strerror or err})") from None


def image_record(path: Path, image, faces) -> dict[str, Any]:
    """The per-image JSON: image path, size in pixels and the faces."""
    return {"image": str(path), "width": int(image.shape[1]), "height": int(image.shape[0]),
            "faces": [f.to_dict() for f in faces]}


def record_json(record: dict[str, Any]) -> str:
    """JSON text of an image record with one face per line."""
    head = json.dumps({k: v for k, v in record.items() if k != "faces"})[:-1]
    faces = ",\n  ".join(json.dumps(f) for f in record["faces"])
    return f'{head}, "faces": [' + (f"\n  {faces}\n" if faces else "") + "]}\n"


def write_image_outputs(out: Path, name: str, path: Path, image, faces, draw: bool) -> list[Path]:
    """Write NAME.json (and NAME.landmarks.png when ``draw``) atomically; returns the paths."""
    import cv2

    from ..atomic import atomic_path, write_text_atomic
    from ..inference.drawing import draw_faces

    json_path = out / f"{name}.json"
    write_text_atomic(json_path, record_json(image_record(path, image, faces)))
    written = [json_path]
    if draw:
        png = out / f"{name}.landmarks.png"
        with atomic_path(png) as tmp:
            ok, data = cv2.imencode(".png", cv2.cvtColor(draw_faces(image, faces), cv2.COLOR_RGB2BGR))
            if not ok:
                raise ValueError(f"{png}: PNG encoding failed")
            tmp.write_bytes(data.tobytes())
        written.append(png)
    return written


def csv_rows(name: str, faces) -> Iterator[list]:
    """Rows of landmarks.csv for one image."""
    from ..inference.results import confidence_text

    for k, face in enumerate(faces):
        yield [name, k, f"{face.score:.5f}", confidence_text(face.confidence), *(f"{v:.2f}" for v in face.box),
               *(f"{v:.3f}" for v in face.points.reshape(-1)), *map(confidence_text, face.point_confidence)]


def csv_header(num_points: int) -> list[str]:
    """Columns of landmarks.csv: image, face, score, confidence, box_x0..box_y1, x0, y0, x1, y1,
    ..., then each point's confidence c0, c1, ... (confidences empty without an error head)."""
    return ["image", "face", "score", "confidence", "box_x0", "box_y0", "box_x1", "box_y1",
            *(c for i in range(num_points) for c in (f"x{i}", f"y{i}")), *(f"c{i}" for i in range(num_points))]


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """Write a CSV file atomically."""
    import csv

    from ..atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


# ----------------------------------------------------------------------------- running


def _landmarker(args: argparse.Namespace, detector: str | None):
    from ..inference.landmarker import Landmarker

    landmarker = Landmarker(args.model, detector=detector, device=args.device, backend=args.backend,
                            refine=args.refine, threads=args.threads, flip_test=args.flip_test,
                            precision=args.precision, orientation=not args.no_orientation)
    if args.threads is not None and "torch" in sys.modules:  # onnxruntime got it per session
        import torch

        torch.set_num_threads(args.threads)
    return landmarker


def run_predict(args: argparse.Namespace) -> int:
    """The ``predict`` verb; returns 1 if any item failed."""
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.min_confidence is not None and not 0.0 <= args.min_confidence <= 1.0:
        raise ValueError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    smoothing = _smoothing(args)
    report = Report(strict=args.strict)
    boxes = read_boxes(args.boxes) if args.boxes else {}
    items = collect_inputs(args.paths, args.out, report)
    if not items:
        raise ValueError("no image or video to process: " + "; ".join(f"{i}: {r}" for i, r in report.failures))
    check_writable(args.out)
    landmarker = _landmarker(args, None if args.detector == "none" else args.detector)
    images = [i for i in items if i.kind == "image"]
    rows = _run_images(images, landmarker, boxes, args, report)
    if args.csv and images:
        _guard(report, str(args.out / "landmarks.csv"),
               lambda: write_csv(args.out / "landmarks.csv", csv_header(landmarker.scheme.num_points), rows))
    for item in (i for i in items if i.kind == "video"):
        _run_video(item, landmarker, smoothing, args, report)
    _summary(report, args.out)
    return 1 if report.failures else 0


def _smoothing(args: argparse.Namespace):
    from ..inference.video import OneEuroParams

    return None if args.no_smooth else OneEuroParams(args.min_cutoff, args.beta, args.d_cutoff)


def _guard(report: Report, name: str, action) -> Any:
    """Run ``action()``; a user-data or file-system error becomes a failure of ``name``."""
    try:
        return action()
    except (ValueError, TypeError, OSError) as err:
        report.fail(name, err)
        return None


def _run_images(items: list[Item], landmarker, boxes: dict[str, Any], args, report: Report) -> list[list]:
    """Predict and write every image in chunks of ``--batch-size``; returns the CSV rows."""
    from tqdm import tqdm

    from ..inference.drawing import LOW_CONFIDENCE

    used: set[str] = set()
    rows: list[list] = []
    with tqdm(total=len(items), unit="img", disable=True if args.no_progress else None, leave=False) as bar:
        for start in range(0, len(items), args.batch_size):
            chunk = items[start:start + args.batch_size]
            for item, image, faces in _predict_chunk(chunk, landmarker, boxes, used, report, args.min_confidence):
                written = _guard(report, str(item.path), lambda: write_image_outputs(
                    args.out, item.name, item.path, image, faces, args.draw))
                if written is not None:
                    report.images += 1
                    report.faces += len(faces)
                    report.low_confidence += sum(f.confidence < LOW_CONFIDENCE for f in faces)
                    report.turned += sum(abs(f.angle) > 1e-6 for f in faces)
                    rows += csv_rows(item.rel, faces)
            bar.update(len(chunk))
    unused = sorted(set(boxes) - used)
    if unused:
        print(f"wingface predict: --boxes: {len(unused)} key(s) matched no image: "
              + ", ".join(unused[:5]) + (" ..." if len(unused) > 5 else ""), file=sys.stderr)
    return rows


def _predict_chunk(chunk: list[Item], landmarker, boxes, used: set[str], report: Report,
                   min_confidence: float | None):
    """(item, image, faces) for the chunk's readable images; the rest are reported."""
    from ..data.images import read_image

    loaded = []
    for item in chunk:
        image = _guard(report, str(item.path), lambda: read_image(item.path))
        if image is None:
            continue
        given = _boxes_for(item, boxes, used)
        if given is None and landmarker.detector is None:
            report.fail(str(item.path), "no boxes for it in --boxes and --detector none")
            continue
        loaded.append((item, image, given))
    for with_boxes in (True, False):
        group = [x for x in loaded if (x[2] is not None) == with_boxes]
        yield from _predict_group(group, landmarker, with_boxes, report, min_confidence)


def _predict_group(group, landmarker, with_boxes: bool, report: Report, min_confidence: float | None):
    """One batched call for the group; on an error, one call per image to name the culprit."""
    if not group:
        return
    images = [image for _, image, _ in group]
    try:
        results = landmarker.predict_batch(images, [b for _, _, b in group] if with_boxes else None,
                                           min_confidence)
    except (ValueError, TypeError):
        results = [_guard(report, str(item.path), lambda: landmarker.predict(image, boxes, min_confidence))
                   for item, image, boxes in group]
    for (item, image, _), faces in zip(group, results):
        if faces is not None:
            yield item, image, faces


def _run_video(item: Item, landmarker, smoothing, args, report: Report) -> None:
    from ..inference.video import FaceTracker, process_video

    if landmarker.detector is None:
        report.fail(str(item.path), "videos need a detector (not --detector none)")
        return
    floor = {} if args.min_confidence is None else {"min_confidence": args.min_confidence}
    tracker = FaceTracker(landmarker, redetect_every=args.redetect_every, smoothing=smoothing, **floor)
    result = _guard(report, str(item.path), lambda: process_video(
        item.path, tracker, args.out / f"{item.name}.landmarks.mp4", args.out / f"{item.name}.csv",
        progress=not args.no_progress))
    if result is None:
        return
    report.videos += 1
    report.frames += result.frames
    for index, reason in result.failed_frames:
        report.fail(f"{item.path} frame {index}", reason)


def _summary(report: Report, out: Path) -> None:
    from ..inference.drawing import LOW_CONFIDENCE

    parts = [f"{report.images} image(s) with {report.faces} face(s)"] if report.images or not report.videos else []
    if report.videos:
        parts.append(f"{report.videos} video(s) of {report.frames} frame(s)")
    print(f"wrote results for {' and '.join(parts)} to {out}")
    if report.turned:
        print(f"{report.turned} face(s) were found only in a turned copy of their image (see angle_deg)")
    if report.low_confidence:
        print(f"{report.low_confidence} face(s) have a landmark confidence under {LOW_CONFIDENCE}: the fit may be "
              "wrong (a face the detector could not resolve, a hard pose or a non-face)")
    if report.failures:
        print(f"{len(report.failures)} failed:", file=sys.stderr)
        for item, reason in report.failures:
            print(f"  {item}: {reason}", file=sys.stderr)


def run_demo(args: argparse.Namespace) -> int:
    """The ``demo`` verb: the shipped (or given) model on the bundled astronaut photo."""
    from importlib import resources

    from ..data.images import read_image

    check_writable(args.out)
    landmarker = _landmarker(args, "default")
    with resources.as_file(resources.files("wingface").joinpath("assets", "astronaut.jpg")) as photo:
        image = read_image(photo)
        faces = landmarker.predict(image)
        written = write_image_outputs(args.out, "astronaut", photo, image, faces, draw=True)
    print(f"{len(faces)} face(s), {landmarker.scheme.num_points} landmarks each "
          f"({landmarker.scheme.name}) on the bundled astronaut photo (NASA, public domain)")
    for path in written:
        print(f"wrote {path}")
    return 0
