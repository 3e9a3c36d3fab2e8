"""MediaPipe face mesh on 300w-common: 9 iBUG-equivalent points per face, for benchmarks/peers.py.

MediaPipe 0.10.21 is the last release whose wheel ships the face-detector and face-landmark
models, so its legacy ``solutions.face_mesh`` runs offline; later releases ship no models.
It pins numpy<2 and brings its own OpenCV, so it gets a virtual environment of its own.
Setup, one command from the repository root (the ``*`` .gitignore keeps git from seeing it):

    python3 -m venv .venv-mediapipe && echo '*' > .venv-mediapipe/.gitignore && .venv-mediapipe/bin/pip install mediapipe==0.10.21 -e .

Run (then ``python benchmarks/peers.py`` in the main venv scores it beside wingface and dlib):

    .venv-mediapipe/bin/python benchmarks/mediapipe_peer.py [--data ../shared/data/300w-subset] [--skip-timing]

What it does, end to end with MediaPipe's own detector (``static_image_mode=True``, so the
detector runs on every image): on each 300w-common image the mesh whose box overlaps the
annotated face best (IoU >= MIN_DETECTION_IOU with the landmark box) is the face; images
where it finds none are listed as missed. Only the 9 points whose correspondence with the
68-point iBUG scheme is well defined are written: eye corners 36/39/42/45, nose tip 30,
nose base 31/35, mouth corners 48/54. MediaPipe's jaw and brow contours follow other
definitions than iBUG's, so they are not scored.

The 9 vertices come from a public MediaPipe-to-dlib table (IBUG_TO_MESH). On 50 300w-train
faces (``--check-faces``; never the test faces) each table vertex is compared with its 2-ring
mesh neighbours; a neighbour whose mean error is more than 10% lower becomes the
"train-picked" vertex. Both mappings are kept and peers.py scores both.

Timing: ms per 640x480 photo with one face (the bundled astronaut), detector included,
median of ``--runs`` calls after 5 warm-up calls, pinned to one core (the legacy API has no
thread setting). ``--skip-timing`` leaves it out; ``--timing-only`` adds it later;
``--print-timing`` only prints it. ``--serve-timing`` times blocks of calls on request:
``wingface bench predict --mediapipe PYTHON`` interleaves those blocks with its own, so both
systems are timed in one run under the same machine conditions.

Writes benchmarks/results/peers/mediapipe_common.json (and mediapipe_mapping_check.json);
existing results are kept: delete them to redo.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from steps import DEFAULT_DATA, REPO, require_data

from wingface.atomic import write_text_atomic
from wingface.data.datasets import open_dataset
from wingface.data.images import read_image
from wingface.detection import pairwise_iou
from wingface.evaluation.run import MIN_DETECTION_IOU
from wingface.geometry import box_from_points

MEDIAPIPE_VERSION = "0.10.21"
SETUP = ("python3 -m venv .venv-mediapipe && echo '*' > .venv-mediapipe/.gitignore && "
         f".venv-mediapipe/bin/pip install mediapipe=={MEDIAPIPE_VERSION} -e .")
OUT = REPO / "benchmarks" / "results" / "peers"

# iBUG 68-point index (0-based) -> MediaPipe 468-point face-mesh vertex. The index facts come
# from the public correspondence table of Peizhi Yan, github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks
# (mediapipe2dlib/mp2dlib.py, its 1-based dlib rows 31, 32, 36, 37, 40, 43, 46, 49, 55). `check_mapping`
# compares them with their mesh neighbours on train faces (mediapipe_mapping_check.json).
# "Image-left" is the subject's right.
IBUG_TO_MESH: dict[int, int] = {
    36: 33,    # right eye outer corner (image left)
    39: 133,   # right eye inner corner
    42: 362,   # left eye inner corner
    45: 263,   # left eye outer corner (image right)
    30: 4,     # nose tip
    31: 75,    # nose base, image-left alar point
    35: 305,   # nose base, image-right alar point
    48: 61,    # mouth corner, image left
    54: 291,   # mouth corner, image right
}
IBUG_POINTS = list(IBUG_TO_MESH)
CLEARLY_BETTER = 0.9  # check_mapping: a neighbour must beat the table vertex's mean error by 10%
MAPPING_NOTE = ("Peizhi Yan's MediaPipe-to-dlib table (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks), "
                "checked against each vertex's mesh neighbours on 300w-train faces (mediapipe_mapping_check.json)")
NOT_SCORED = ("jaw (0-16) and brows (17-26): MediaPipe's face-outline and brow vertices follow other definitions "
              "than iBUG's (fixed mesh vertices, not iBUG's visible face outline and brow edge), so they are not "
              "scored; nor are the other eye, nose and lip contour points, which iBUG spaces along a contour")


def load_mediapipe():
    """The mediapipe module, or exit naming the one-command setup."""
    try:
        import mediapipe as mp
    except ImportError as err:
        raise SystemExit(f"mediapipe not installed ({err}); from the repository root run:\n    {SETUP}\n"
                         "and run this script with .venv-mediapipe/bin/python") from None
    if mp.__version__ != MEDIAPIPE_VERSION:
        print(f"warning: mediapipe {mp.__version__}, not {MEDIAPIPE_VERSION} (later releases ship no models)")
    return mp


def face_mesh(max_faces: int = 3):
    """A legacy static-image FaceMesh (its own BlazeFace short-range detector on every image)."""
    mp = load_mediapipe()
    return mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=max_faces,
                                           refine_landmarks=False, min_detection_confidence=0.5)


def meshes(mesh, image: np.ndarray) -> list[np.ndarray]:
    """Every mesh MediaPipe finds in RGB uint8 ``image``: float64 [468, 2] in 0-based pixel-centre
    coordinates (MediaPipe's normalised coordinates put 0 and 1 on the image edges)."""
    h, w = image.shape[:2]
    found = mesh.process(np.ascontiguousarray(image)).multi_face_landmarks or []
    return [np.array([[p.x * w - 0.5, p.y * h - 0.5] for p in face.landmark], np.float64) for face in found]


def pick_face(found: list[np.ndarray], truth_box: np.ndarray) -> tuple[int, float] | None:
    """(index, IoU) of the mesh whose box overlaps the landmark box best, or None below MIN_DETECTION_IOU."""
    if not found:
        return None
    iou = pairwise_iou(np.stack([box_from_points(m) for m in found]), truth_box[None])[:, 0]
    best = int(np.argmax(iou))
    return (best, float(iou[best])) if iou[best] >= MIN_DETECTION_IOU else None


def mesh_neighbours(vertex: int, rings: int = 2) -> list[int]:
    """``vertex`` and the vertices within ``rings`` edges of it in MediaPipe's tessellation."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    adjacent: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        adjacent.setdefault(a, set()).add(b)
        adjacent.setdefault(b, set()).add(a)
    seen, frontier = {vertex}, {vertex}
    for _ in range(rings):
        frontier = {n for v in frontier for n in adjacent.get(v, ())} - seen
        seen |= frontier
    return sorted(seen)


def check_mapping(records, faces: int) -> dict:
    """Mean error (% of the inter-ocular distance 36-45) of each table vertex and of its 2-ring
    mesh neighbours against the ground truth on evenly spaced train faces, and the train-picked
    mapping: a neighbour replaces the table's vertex where its error is below CLEARLY_BETTER times
    the table vertex's."""
    mesh = face_mesh()
    pick = np.linspace(0, len(records) - 1, min(faces, len(records))).round().astype(int)
    found, truths = [], []
    for i in pick:
        rec = records[i]
        candidates = meshes(mesh, read_image(rec.image_path))
        chosen = pick_face(candidates, box_from_points(rec.points))
        if chosen is not None:
            found.append(candidates[chosen[0]])
            truths.append(rec.points.astype(np.float64))
    mesh.close()
    points, truth = np.stack(found), np.stack(truths)
    io = np.linalg.norm(truth[:, 36] - truth[:, 45], axis=-1)
    table, picked = {}, {}
    for ibug, vertex in IBUG_TO_MESH.items():
        offsets = {v: (points[:, v] - truth[:, ibug]) / io[:, None] * 100 for v in mesh_neighbours(vertex)}
        err = {v: float(np.mean(np.linalg.norm(d, axis=-1))) for v, d in offsets.items()}
        ranked = sorted(err, key=err.get)
        best = ranked[0]
        picked[ibug] = best if err[best] < CLEARLY_BETTER * err[vertex] else vertex
        table[str(ibug)] = {"table_vertex": vertex, "table_error": round(err[vertex], 3),
                            "table_mean_offset_xy": np.round(offsets[vertex].mean(axis=0), 3).tolist(),
                            "best_vertex": best, "best_error": round(err[best], 3),
                            "best_mean_offset_xy": np.round(offsets[best].mean(axis=0), 3).tolist(),
                            "rank_of_table_vertex": ranked.index(vertex) + 1, "candidates": len(err),
                            "top5": [[v, round(err[v], 3)] for v in ranked[:5]], "picked": picked[ibug]}
    return {"split": "300w-train", "faces": len(pick), "found": len(found), "unit": "% of inter-ocular (36-45)",
            "candidates": "table vertex and its 2-ring mesh neighbours",
            "rule": f"a neighbour is picked where its mean error < {CLEARLY_BETTER} x the table vertex's",
            "picked": {str(k): v for k, v in picked.items()}, "points": table}


def predict_common(records, vertices: list[int]) -> dict:
    """Per face: found or not, and the chosen mesh's ``vertices`` [[x, y]] (0-based pixels)."""
    from tqdm import tqdm

    mesh = face_mesh()
    faces = []
    for rec in tqdm(records, desc="mediapipe face mesh", unit="face", disable=None):
        found = meshes(mesh, read_image(rec.image_path))
        chosen = pick_face(found, box_from_points(rec.points))
        row = {"image": Path(rec.image_path).name, "subset": rec.subset, "meshes": len(found), "found": chosen is not None}
        if chosen is not None:
            row["iou"] = round(chosen[1], 4)
            row["points"] = np.round(found[chosen[0]][vertices], 3).tolist()
        faces.append(row)
    mesh.close()
    return {"mesh_vertices": vertices, "faces": faces,
            "missed": [f"{f['subset']}/{f['image']}" for f in faces if not f["found"]]}


def timing_image() -> np.ndarray:
    """640x480 RGB: the bundled astronaut photo scaled to 480x480, centred on grey."""
    import cv2

    photo = read_image(REPO / "wingface" / "assets" / "astronaut.jpg")
    image = np.full((480, 640, 3), 128, np.uint8)
    image[:, 80:560] = cv2.resize(photo, (480, 480), interpolation=cv2.INTER_AREA)
    return image


INCLUDES = "BlazeFace detector + 468-point mesh (static_image_mode=True, refine_landmarks=False)"


@contextmanager
def one_core():
    """Pin this process to one core while inside (the legacy API has no thread setting, so
    the affinity makes its time one core's); yields whether it could."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if cores:
        os.sched_setaffinity(0, {min(cores)})
    try:
        yield bool(cores)
    finally:
        if cores:
            os.sched_setaffinity(0, cores)


def timed_calls(mesh, image: np.ndarray, runs: int) -> list[float]:
    """Seconds per ``process`` call (detector + mesh), ``runs`` calls."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        mesh.process(image)
        times.append(time.perf_counter() - start)
    return times


def warm_mesh(warmup: int = 5):
    """(a one-face static-image mesh that has run ``warmup`` times, the timing image)."""
    mesh, image = face_mesh(max_faces=1), timing_image()
    if not meshes(mesh, image):
        raise SystemExit("mediapipe found no face in the timing image")
    timed_calls(mesh, image, warmup)
    return mesh, image


def time_mediapipe(runs: int = 50, warmup: int = 5) -> dict:
    """Median ms per ``process`` call (detector + mesh) on the 640x480 photo, on one core."""
    with one_core() as pinned:
        mesh, image = warm_mesh(warmup)
        times = timed_calls(mesh, image, runs)
        mesh.close()
    return {"ms_per_640x480_image": round(float(np.median(times) * 1e3), 2), "p90_ms": round(float(np.quantile(times, 0.9) * 1e3), 2),
            "runs": runs, "warmup": warmup, "cores": 1 if pinned else "all (no affinity control)", "includes": INCLUDES}


def serve_timing() -> None:
    """Time blocks of calls on request, for a caller that interleaves them with its own
    (``wingface bench predict --mediapipe``): after a line ``ready``, each input line ``N``
    is answered with one JSON line, the N calls' ms; end of input ends it."""
    with one_core():
        mesh, image = warm_mesh()
        print("ready", flush=True)
        for line in sys.stdin:
            print(json.dumps([round(t * 1e3, 4) for t in timed_calls(mesh, image, int(line))]), flush=True)
        mesh.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check-faces", type=int, default=50, help="300w-train faces for the mapping check (0: skip)")
    parser.add_argument("--skip-timing", action="store_true", help="write the accuracy results without timing")
    parser.add_argument("--timing-only", action="store_true", help="add the timing to an existing mediapipe_common.json")
    parser.add_argument("--runs", type=int, default=50, help="timed calls (after 5 warm-up calls)")
    parser.add_argument("--print-timing", action="store_true",
                        help="print the timing as JSON and write nothing")
    parser.add_argument("--serve-timing", action="store_true",
                        help="time blocks of calls on request (for wingface bench predict --mediapipe; see serve_timing)")
    args = parser.parse_args()
    mp = load_mediapipe()
    if args.print_timing:
        print(json.dumps({"version": mp.__version__, **time_mediapipe(args.runs)}))
        return
    if args.serve_timing:
        print(json.dumps({"version": mp.__version__, "includes": INCLUDES}), flush=True)
        serve_timing()
        return
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "mediapipe_common.json"
    if args.timing_only:
        if not path.exists():
            raise SystemExit(f"{path} not found: run without --timing-only first")
        result = json.loads(path.read_text())
        result["timing"] = time_mediapipe(args.runs)
        write_text_atomic(path, json.dumps(result, indent=1))
        print(json.dumps(result["timing"], indent=1))
        return
    reader = open_dataset(require_data(args.data))
    check_path = args.out / "mediapipe_mapping_check.json"
    if args.check_faces and not check_path.exists():
        print(f"[run ] {check_path.name}", flush=True)
        write_text_atomic(check_path, json.dumps(check_mapping(reader.read("300w-train").records, args.check_faces), indent=1))
    check = json.loads(check_path.read_text()) if args.check_faces else None
    picked = {int(k): v for k, v in check["picked"].items()} if check else dict(IBUG_TO_MESH)
    if path.exists():
        print(f"[skip] {path.name} exists (delete it to redo; --timing-only adds the timing)")
        return
    print(f"[run ] {path.name}", flush=True)
    vertices = sorted(set(IBUG_TO_MESH.values()) | set(picked.values()))
    result = {"system": f"MediaPipe face mesh {mp.__version__} (own detector)", "split": "300w-common",
              "ibug_points": IBUG_POINTS, "mapping_source": MAPPING_NOTE, "not_scored": NOT_SCORED,
              "mappings": {"table": {str(k): v for k, v in IBUG_TO_MESH.items()},
                           "train_picked": {str(k): v for k, v in picked.items()}},
              "min_iou": MIN_DETECTION_IOU, "coordinates": "0-based pixel centres: MediaPipe's normalised x * width - 0.5",
              **predict_common(reader.read("300w-common").records, vertices),
              "timing": None if args.skip_timing else time_mediapipe(args.runs)}
    write_text_atomic(path, json.dumps(result, indent=1))
    print(f"{len(result['faces']) - len(result['missed'])} of {len(result['faces'])} faces found; "
          f"train-picked vertices {result['mappings']['train_picked']}")


if __name__ == "__main__":
    main()
