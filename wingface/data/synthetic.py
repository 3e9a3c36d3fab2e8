"""Parametric synthetic faces: landmark shapes from a rough 3-D face model, drawn with OpenCV.

Used as test fixtures across the project and as a no-data demo (`write_synthetic_300w`
writes a folder the 300-W reader reads unchanged). Everything is deterministic given a
``numpy.random.Generator`` or a seed.

The 68-point template is the symmetrised mean 300-W training shape
(``assets/mean_shape_68.json``). Each point gets a depth on a rough face surface; jaw
points are treated as the face's occluding contour (as 300-W annotates them), so under yaw
the far half of the jaw follows the visible outline while inner points rotate rigidly.
WFLW-98 and AFLW-19 shapes are fixed linear combinations of the 68 points (contours
resampled with 4-point interpolation), so every scheme sees the same face.

Units: shapes from `synthetic_shape` are in a unit frame (x right, y down, centred on the
landmark box, frontal face width about 1). Angles are in degrees. `yaw > 0` turns the face
toward +x (the image's right), `pitch > 0` tilts it up, `roll > 0` rotates it
counter-clockwise on screen (the convention of `geometry.rotation_about`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np

from ..schemes import LandmarkScheme, get_scheme, mean_shape_68

__all__ = [
    "SyntheticFace", "render_face", "supported_schemes", "synthetic_faces", "synthetic_shape",
    "write_synthetic_300w",
]


def _per_point(values: Mapping[int, float]) -> np.ndarray:
    """float64 [68]: ``values[i]`` at 68-point index i, 0 elsewhere."""
    out = np.zeros(68)
    out[list(values)] = list(values.values())
    return out


# Face-surface depth model, in face-width units (z toward the camera).
_FRONT_Z = 0.10            # depth of the face's front plane (cheeks, eye line)
_SURFACE_WIDENING = 1.2    # inner-surface cross-section half-width / jaw half-width at that height
_SURFACE_DEPTH = 0.45      # how far that cross-section falls back at its edge
_JAW_DEPTH_RATIO = 0.9     # jaw cross-sections: depth semi-axis / half-width
_LIP_DEPTH = 0.06          # lip protrusion at the mouth's centre line, tapering to the corners
_EXTRA_DEPTH = _per_point({  # protrusion above the surface: brows, eyes (recessed), chin, nose
    **dict.fromkeys(range(17, 27), 0.03), **dict.fromkeys(range(36, 48), -0.03), 8: 0.02,
    27: 0.03, 28: 0.08, 29: 0.14, 30: 0.20, 31: 0.05, 32: 0.09, 33: 0.12, 34: 0.09, 35: 0.05,
})
_MAX_MOUTH_OPENING = 0.18  # lower-lip drop at expression 1, face-width units
_OPENING_WEIGHTS = _per_point({  # share of that drop each point moves by (lower lip, chin)
    66: 1, 57: 1, 65: 0.85, 67: 0.85, 56: 0.85, 58: 0.85, 55: 0.5, 59: 0.5, 48: 0.1, 54: 0.1,
    60: 0.1, 64: 0.1, 8: 0.6, 7: 0.5, 9: 0.5, 6: 0.35, 10: 0.35, 5: 0.15, 11: 0.15,
})
_BROW_THICKNESS = 0.3      # lower brow edge: fraction of the way from brow to upper eyelid
# 300-W folders with their official face counts, used to share synthetic faces out.
_PTS_TRAIN = (("lfpw/trainset", 811), ("helen/trainset", 2000), ("afw", 337))
_PTS_TEST = (("lfpw/testset", 224), ("helen/testset", 330))


@dataclass(frozen=True)
class SyntheticFace:
    """One generated face.

    Attributes:
        image: RGB uint8 [H, W, 3].
        points: float32 [L, 2], 0-based pixel coordinates (integers are pixel centres).
        yaw, pitch, roll: the pose used, in degrees (conventions in the module docstring).
    """

    image: np.ndarray
    points: np.ndarray
    yaw: float
    pitch: float
    roll: float


# --------------------------------------------------------------------------- layouts


def _subdivide(rows: np.ndarray, closed: bool) -> np.ndarray:
    """Insert a midpoint between consecutive rows with the 4-point interpolating scheme.

    Linear in ``rows`` [k, ...] (k >= 3): works on points and on weight matrices alike.
    Open contours use the 3-point (quadratic) midpoint on their two end segments.
    Returns [2k, ...] if closed, else [2k - 1, ...].
    """
    rows = np.asarray(rows, dtype=np.float64)
    if closed:
        p0, p1, p2, p3 = (np.roll(rows, s, axis=0) for s in (1, 0, -1, -2))
    else:
        padded = np.concatenate([rows[:1], rows, rows[-1:]])
        p0, p1, p2, p3 = padded[:-3], rows[:-1], rows[1:], padded[3:]
    mid = (9 * (p1 + p2) - (p0 + p3)) / 16
    if not closed:
        mid[0] = 0.375 * rows[0] + 0.75 * rows[1] - 0.125 * rows[2]
        mid[-1] = 0.375 * rows[-1] + 0.75 * rows[-2] - 0.125 * rows[-3]
    out = np.empty((len(rows) + len(mid),) + rows.shape[1:])
    out[0::2], out[1::2] = rows, mid
    return out


def _lagrange(rows: np.ndarray, ts: Sequence[float]) -> np.ndarray:
    """Cubic Lagrange interpolation through 4 rows [4, ...] at parameters ``ts`` in [0, 3]."""
    nodes = np.arange(4.0)
    out = []
    for t in ts:
        w = [np.prod([(t - nodes[m]) / (nodes[j] - nodes[m]) for m in range(4) if m != j]) for j in range(4)]
        out.append(np.tensordot(np.asarray(w), rows, axes=1))
    return np.stack(out)


def _brow_contour(basis: np.ndarray, brow: Sequence[int], lid: Sequence[int], ts: Sequence[float]) -> np.ndarray:
    """[9, 68] weights: the 5 brow points, then a lower edge at brow positions ``ts``."""
    offset = _BROW_THICKNESS * (basis[list(lid)].mean(0) - basis[list(brow)].mean(0))
    upper = basis[list(brow)]
    # Local cubic through the 4 brow points nearest each lower-edge position.
    lower = [_lagrange(upper[1:], [t - 1])[0] if t > 2 else _lagrange(upper[:4], [t])[0] for t in ts]
    return np.concatenate([upper, np.stack(lower) + offset])


def _wflw98_matrix() -> np.ndarray:
    """[98, 68] weights: WFLW points from the 68 (jaw and eyelids resampled, brow lower edges added)."""
    basis = np.eye(68)
    upper_lid = _lagrange(basis[[36, 37, 38, 39]], [0, 0.75, 1.5, 2.25, 3])
    lower_lid = _lagrange(basis[[39, 40, 41, 36]], [0.75, 1.5, 2.25])
    upper_lid_l = _lagrange(basis[[42, 43, 44, 45]], [0, 0.75, 1.5, 2.25, 3])
    lower_lid_l = _lagrange(basis[[45, 46, 47, 42]], [0.75, 1.5, 2.25])
    return np.concatenate([
        _subdivide(basis[0:17], closed=False),                                   # 0-32 jaw
        _brow_contour(basis, range(17, 22), (37, 38), (3.5, 2.5, 1.5, 0.5)),     # 33-41 brow
        _brow_contour(basis, range(22, 27), (43, 44), (3.5, 2.5, 1.5, 0.5)),     # 42-50 brow
        basis[27:36],                                                            # 51-59 nose
        upper_lid, lower_lid, upper_lid_l, lower_lid_l,                          # 60-75 eyes
        basis[48:68],                                                            # 76-95 mouth
        basis[36:42].mean(0, keepdims=True), basis[42:48].mean(0, keepdims=True),  # 96-97 pupils
    ])


def _aflw19_matrix() -> np.ndarray:
    """[19, 68] weights: AFLW points (brow ends/centres, eye corners/centres, nose, mouth, chin)."""
    basis = np.eye(68)
    rows = [basis[i] for i in (17, 19, 21, 22, 24, 26, 36)]
    rows += [basis[36:42].mean(0), basis[39], basis[42], basis[42:48].mean(0), basis[45]]
    rows += [basis[31], basis[30], basis[35], basis[48], basis[[62, 66]].mean(0), basis[54], basis[8]]
    return np.stack(rows)


_LAYOUTS: Mapping[str, Callable[[], np.ndarray]] = {
    "300w-68": lambda: np.eye(68),
    "wflw-98": _wflw98_matrix,
    "aflw-19": _aflw19_matrix,
}


def supported_schemes() -> tuple[str, ...]:
    """Names of the built-in schemes that synthetic faces can be generated for."""
    return tuple(_LAYOUTS)


@lru_cache(maxsize=None)
def _layout_cached(name: str) -> np.ndarray:
    """The read-only [L, 68] weight matrix of a supported scheme name."""
    matrix = _LAYOUTS[name]()
    matrix.setflags(write=False)
    return matrix


def _layout(scheme: LandmarkScheme) -> np.ndarray:
    """float64 [L, 68] weights mapping a 68-point shape to ``scheme``'s points."""
    if scheme.name not in _LAYOUTS:
        raise ValueError(
            f"synthetic faces: scheme {scheme.name!r} is not supported "
            f"(supported: {', '.join(_LAYOUTS)})"
        )
    matrix = _layout_cached(scheme.name)
    if len(matrix) != scheme.num_points:
        raise ValueError(
            f"synthetic faces: scheme {scheme.name!r} has {scheme.num_points} points, "
            f"but the built-in {scheme.name!r} layout has {len(matrix)}"
        )
    return matrix


def _resolve_scheme(scheme: LandmarkScheme | str) -> LandmarkScheme:
    if isinstance(scheme, str):
        return get_scheme(scheme)
    if not isinstance(scheme, LandmarkScheme):
        raise TypeError(f"scheme: expected a LandmarkScheme or a scheme name, got {type(scheme).__name__}")
    return scheme


# --------------------------------------------------------------------------- shapes


def _mirror_x(shape: np.ndarray) -> np.ndarray:
    """Mirror a 68-point unit-frame shape about x = 0 (flip pairs swapped)."""
    return get_scheme("300w-68").mirror(shape, 1.0)


def _individual(rng: np.random.Generator) -> np.ndarray:
    """A random left-right symmetric variation of the mean 68-point shape, float64 [68, 2]."""
    t = mean_shape_68().copy()
    t[:, 1] *= np.exp(rng.normal(0, 0.05))
    jaw = np.arange(17)
    t[jaw, 0] *= 1 + rng.normal(0, 0.06) * (1 - np.abs(jaw - 8) / 8)
    t[5:12, 1] += rng.normal(0, 0.02) * (1 - np.abs(np.arange(5, 12) - 8) / 4)
    for idx in (np.arange(36, 42), np.arange(42, 48)):
        centre = t[idx].mean(0)
        spread = np.exp(rng.normal(0, 0.08, 2)) * [1, np.exp(rng.normal(0, 0.2))]
        t[idx] = centre + (t[idx] - centre) * spread
    t[17:27, 1] += rng.normal(0, 0.02)
    t[[19, 24], 1] += rng.normal(0, 0.01)
    nose_shift = rng.normal(0, 0.02)
    t[31:36, 1] += nose_shift
    t[28:31, 1] += nose_shift * np.array([0.33, 0.66, 1.0])
    t[31:36, 0] *= np.exp(rng.normal(0, 0.1))
    t[48:68, 0] *= np.exp(rng.normal(0, 0.08))
    t[48:68, 1] += rng.normal(0, 0.015)
    t[[48, 54, 60, 64], 1] -= rng.normal(0, 0.01)
    # Keep the variation exactly symmetric (the pair-swapping mirror of itself).
    return (t + _mirror_x(t)) / 2


def _open_mouth(t: np.ndarray, expression: float) -> np.ndarray:
    """Close the template's mouth, then drop the lower lip and chin by ``expression`` (0..1)."""
    t = t.copy()
    gap = t[[63, 62, 61], 1] - t[[65, 66, 67], 1]  # inner lower lip onto upper lip
    t[[65, 66, 67], 1] += gap
    t[[56, 57, 58], 1] += gap
    t[[55, 59], 1] += gap[[0, 2]] / 2
    t[:, 1] += expression * _MAX_MOUTH_OPENING * _OPENING_WEIGHTS
    return t


def _lift_to_3d(t: np.ndarray, yaw: float, depth_scale: float) -> np.ndarray:
    """float64 [68, 3] head-frame points for a frontal 2-D template [68, 2] seen at ``yaw`` (rad).

    Inner points sit on elliptic horizontal cross-sections a little wider than the jaw at
    their height, plus per-point protrusion (nose, lips, brows). Jaw points (except the
    chin) are the occluding contour of their own cross-section, so they slide round the
    face as it turns, as 300-W annotates them.
    """
    x, y = t[:, 0], t[:, 1]
    jaw_y, jaw_half = np.maximum.accumulate(t[0:9, 1]), np.abs(t[0:9, 0])  # forehead to chin
    half = np.maximum(_SURFACE_WIDENING * np.interp(y, jaw_y, jaw_half), 1e-3)
    rel = np.clip(x / half, -1, 1)
    z = _FRONT_Z - _SURFACE_DEPTH * (1 - np.sqrt(1 - rel**2))
    lips = np.zeros(68)
    lips[48:68] = _LIP_DEPTH * np.clip(1 - np.abs(x[48:68]) / np.abs(x[[48, 54]]).mean(), 0, 1) ** 0.5
    z = z + (_EXTRA_DEPTH + lips) * depth_scale
    pts = np.stack([x, y, z], axis=1)
    jaw = np.array([i for i in range(17) if i != 8])
    a = np.abs(x[jaw])
    b = _JAW_DEPTH_RATIO * a
    side = np.sign(x[jaw])
    norm = np.sqrt((a * np.cos(yaw)) ** 2 + (b * np.sin(yaw)) ** 2)
    pts[jaw, 0] = side * a**2 * np.cos(yaw) / norm
    pts[jaw, 2] = (_FRONT_Z - b) + side * b**2 * np.sin(yaw) / norm
    return pts


def _project(pts: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotate head-frame points [L, 3] by pitch, then yaw (rad), project orthographically, roll."""
    x, y, z = pts.T
    cp, sp = np.cos(pitch), np.sin(pitch)
    y, z = y * cp - z * sp, y * sp + z * cp
    cy, sy = np.cos(yaw), np.sin(yaw)
    x = x * cy + z * sy
    cr, sr = np.cos(roll), np.sin(roll)
    return np.stack([cr * x + sr * y, -sr * x + cr * y], axis=1)


def _shape_68(rng: np.random.Generator, yaw: float, pitch: float, roll: float,
              expression: float, jitter: float) -> np.ndarray:
    """float64 [68, 2] projected shape (not re-centred); angles in degrees."""
    if not 0.0 <= expression <= 1.0:
        raise ValueError(f"expression must lie in [0, 1], got {expression}")
    if not 0.0 <= jitter:
        raise ValueError(f"jitter must be non-negative, got {jitter}")
    yaw_r, pitch_r, roll_r = np.deg2rad([yaw, pitch, roll])
    template = _open_mouth(_individual(rng), expression)
    pts = _lift_to_3d(template, yaw_r, float(np.exp(rng.normal(0, 0.1))))
    if jitter:
        pts[:, :2] += rng.normal(0, jitter, (68, 2))
    return _project(pts, yaw_r, pitch_r, roll_r)


def synthetic_shape(scheme: LandmarkScheme | str, rng: np.random.Generator, *, yaw: float = 0.0,
                    pitch: float = 0.0, roll: float = 0.0, expression: float = 0.0,
                    jitter: float = 0.0) -> np.ndarray:
    """A plausible random face shape for ``scheme`` in the unit frame.

    Args:
        scheme: a built-in scheme (``300w-68``, ``wflw-98``, ``aflw-19``) or its name.
        rng: source of the individual variation (face proportions, eye, nose and mouth sizes).
        yaw, pitch, roll: head pose in degrees (conventions in the module docstring).
        expression: mouth opening, 0 (closed) to 1 (wide open).
        jitter: std of independent per-point noise, face-width units; 0 keeps the shape
            exactly left-right symmetric at zero yaw and roll.
    Returns:
        float64 [L, 2], x right and y down, centred on its landmark box; a frontal face is
        about 1 wide. With ``yaw = roll = jitter = 0``, ``scheme.mirror(shape, 1.0)``
        equals the shape up to float error.
    Raises:
        ValueError: for a scheme without a synthetic layout or out-of-range arguments.
    """
    scheme = _resolve_scheme(scheme)
    matrix = _layout(scheme)
    shape = matrix @ _shape_68(rng, yaw, pitch, roll, expression, jitter)
    return shape - (shape.min(0) + shape.max(0)) / 2


# --------------------------------------------------------------------------- rendering


def _image_size(size: int | Sequence[int]) -> tuple[int, int]:
    """(W, H) from an int or a (W, H) pair; ValueError for anything else or under 8 x 8."""
    pair = (size, size) if np.isscalar(size) else tuple(size)
    if len(pair) != 2 or min(int(v) for v in pair) < 8:
        raise ValueError(f"image_size must be an int or (W, H), at least 8 pixels each; got {size!r}")
    return int(pair[0]), int(pair[1])


def _fixed(points: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> int32 with 4 fractional bits, for sub-pixel cv2 drawing."""
    return np.round(np.asarray(points) * 16).astype(np.int32)


def _fill(canvas: np.ndarray, polygons: Sequence[np.ndarray], color: np.ndarray,
          under: np.ndarray | None = None) -> np.ndarray:
    """Blend ``color`` [3] into ``canvas`` [H, W, 3] (float32, in place) inside polygons.

    Polygons are in pixel coordinates, filled anti-aliased; ``under`` [H, W] (0..1), if
    given, multiplies the coverage (a clip mask). Only the polygons' bounding box is touched.
    Returns the float32 [H, W] coverage that was used.
    """
    h, w = canvas.shape[:2]
    coverage = np.zeros((h, w), np.float32)
    pts = np.concatenate(polygons)
    x0, y0 = np.clip(np.floor(pts.min(0)).astype(int) - 1, 0, [w, h])
    x1, y1 = np.clip(np.ceil(pts.max(0)).astype(int) + 2, 0, [w, h])
    if x1 <= x0 or y1 <= y0:
        return coverage
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(m, [_fixed(p - [x0, y0]) for p in polygons], 255, lineType=cv2.LINE_AA, shift=4)
    a = m.astype(np.float32) / 255
    if under is not None:
        a *= under[y0:y1, x0:x1]
    coverage[y0:y1, x0:x1] = a
    region = canvas[y0:y1, x0:x1]
    region += a[..., None] * (np.asarray(color, np.float32) - region)
    return coverage


def _lines(canvas: np.ndarray, polyline: np.ndarray, color: np.ndarray, width: int, closed: bool) -> None:
    """Draw an anti-aliased polyline (pixel coordinates) onto ``canvas`` in place."""
    cv2.polylines(canvas, [_fixed(polyline)], closed, tuple(float(c) for c in color), width,
                  lineType=cv2.LINE_AA, shift=4)


def _background(h: int, w: int, rng: np.random.Generator, texture: bool) -> np.ndarray:
    """float32 [H, W, 3]: a colour gradient, optionally with blotchy noise and random shapes."""
    c0, c1 = rng.uniform(20, 235, (2, 3)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.arange(w, dtype=np.float32)[None] * np.cos(angle)
            + np.arange(h, dtype=np.float32)[:, None] * np.sin(angle))
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    canvas = c0 + (c1 - c0) * ramp[..., None]
    if not texture:
        return canvas
    blotch = rng.standard_normal((6, 6, 3), dtype=np.float32) * np.float32(25)
    canvas += cv2.resize(blotch, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(0, 6)):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        r = int(rng.uniform(0.05, 0.3) * max(w, h))
        if rng.random() < 0.5:
            cv2.circle(canvas, centre, r, color, -1, lineType=cv2.LINE_AA)
        else:
            cv2.rectangle(canvas, centre, (centre[0] + r, centre[1] + r), color, -1)
    return canvas


def _skin_color(rng: np.random.Generator) -> np.ndarray:
    """RGB float32 [3]: a skin tone from dark to light."""
    dark, pale = np.array([90, 60, 45]), np.array([240, 200, 175])
    return ((dark + (pale - dark) * rng.uniform()) * rng.uniform(0.92, 1.08, 3)).astype(np.float32)


def _smooth(points: np.ndarray, closed: bool, times: int = 2) -> np.ndarray:
    """A contour [k, 2] densified ``times`` times by 4-point subdivision (passes through points)."""
    for _ in range(times):
        points = _subdivide(points, closed)
    return points


def _head_polygons(shape: np.ndarray) -> dict[str, np.ndarray]:
    """Pixel polygons of the skin (jaw outline + forehead arc), nose, hair cap and neck."""
    up = shape[17:27].mean(0) - shape[8]
    height = float(np.linalg.norm(up))
    up = up / max(height, 1e-6)
    centre = (shape[0] + shape[16]) / 2
    half = shape[16] - centre

    def arc(widen: float, rise: float, spread: float) -> np.ndarray:
        theta = np.linspace(-spread, np.pi + spread, 25)
        return centre + np.cos(theta)[:, None] * half * widen + np.sin(theta)[:, None] * up * rise * height

    side = np.array([-up[1], up[0]]) * max(float(np.linalg.norm(half)), 0.3 * height) * 0.65
    neck_top, neck_bottom = shape[8] + 0.3 * height * up, shape[8] - 0.9 * height * up
    return {
        "face": np.concatenate([_smooth(shape[0:17], closed=False), arc(1.0, 0.42, 0.0)[1:-1]]),
        "nose": cv2.convexHull(shape[27:36].astype(np.float32))[:, 0].astype(np.float64),
        "hair": arc(1.12, 0.6, 0.25),
        "neck": np.array([neck_top - side, neck_top + side, neck_bottom + side * 1.1, neck_bottom - side * 1.1]),
    }


def _disc(centre: np.ndarray, radius: float) -> np.ndarray:
    """A 24-gon [24, 2] approximating a circle (pixel coordinates)."""
    theta = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    return centre + radius * np.stack([np.cos(theta), np.sin(theta)], axis=1)


def _draw_eyes(canvas: np.ndarray, shape: np.ndarray, rng: np.random.Generator) -> None:
    """Sclera, iris (clipped to the eyelids) and lid outline for both eyes, in place."""
    iris_color = rng.uniform([20, 15, 10], [120, 140, 160])
    gaze = rng.normal(0, 0.12, 2)
    for idx in (list(range(36, 42)), list(range(42, 48))):
        contour = _smooth(shape[idx], closed=True)
        sclera = _fill(canvas, [contour], rng.uniform(190, 240) * np.ones(3))
        corner_gap = float(np.linalg.norm(shape[idx[3]] - shape[idx[0]]))
        centre = shape[idx].mean(0) + gaze * corner_gap
        _fill(canvas, [_disc(centre, 0.22 * corner_gap)], iris_color, under=sclera)
        _fill(canvas, [_disc(centre, 0.09 * corner_gap)], np.zeros(3), under=sclera)
        _lines(canvas, contour, np.array([30, 20, 20]), 1, closed=True)


def _draw_features(canvas: np.ndarray, shape: np.ndarray, skin: np.ndarray, rng: np.random.Generator) -> None:
    """Brows, eyes, nose and mouth of a 68-point pixel shape onto ``canvas`` in place."""
    brows = _layout_cached("wflw-98")[33:51] @ shape  # the WFLW brow contours: same brow edges
    _fill(canvas, [brows[:9], brows[9:]], skin * rng.uniform(0.15, 0.5))
    _draw_eyes(canvas, shape, rng)
    _lines(canvas, shape[27:31], skin * 0.8, 1, closed=False)
    _lines(canvas, _smooth(shape[31:36], closed=False), skin * 0.6, 1, closed=False)
    nostril = 0.2 * float(np.linalg.norm(shape[33] - shape[31]))
    _fill(canvas, [_disc(shape[32], nostril), _disc(shape[34], nostril)], skin * 0.45)
    lips = skin * rng.uniform([0.55, 0.35, 0.35], [0.85, 0.6, 0.6])
    inner = _smooth(shape[60:68], closed=True)
    _fill(canvas, [_smooth(shape[48:60], closed=True)], lips)
    _fill(canvas, [inner], np.array([40, 15, 20]))
    _lines(canvas, inner, lips * 0.5, 1, closed=True)


def _shade(canvas: np.ndarray, skin_cover: np.ndarray, shape: np.ndarray, rng: np.random.Generator) -> None:
    """In place: darken the face towards its outline, then apply a random light ramp."""
    h, w = canvas.shape[:2]
    size = float(np.ptp(shape, axis=0).max())
    rim = cv2.GaussianBlur(skin_cover, (0, 0), max(0.08 * size, 0.5))
    canvas *= (1 - 0.35 * skin_cover * (1 - rim))[..., None]
    d = rng.normal(0, 1, 2)
    d *= rng.uniform(0.1, 0.5) / max(float(np.linalg.norm(d)), 1e-6) / max(size, 1.0)
    centre = shape.mean(0)
    light = ((np.arange(w, dtype=np.float32)[None] - centre[0]) * d[0]
             + (np.arange(h, dtype=np.float32)[:, None] - centre[1]) * d[1] + 1)
    canvas *= np.clip(light, 0.4, 1.6)[..., None] * np.float32(rng.uniform(0.75, 1.2))


def render_face(shape_px: np.ndarray, size: int | Sequence[int], rng: np.random.Generator, *,
                background: bool = True, texture: bool = True) -> np.ndarray:
    """Draw a face-like image around a 68-point (300-W layout) shape.

    Args:
        shape_px: [68, 2] 0-based pixel coordinates of the 300-W 68 points.
        size: image size, an int (square) or (W, H).
        rng: source of colours, background, lighting and noise.
        background: random gradient/blotches/shapes behind the head; False gives flat grey.
        texture: outline shading, a light ramp, pixel noise and blur; False draws flat colours.
    Returns:
        RGB uint8 [H, W, 3]. The face outline follows the jaw points and brows, eyes, nose
        and mouth are filled from their contours, so every landmark sits on visible structure.
    """
    shape = np.asarray(shape_px, dtype=np.float64)
    if shape.shape != (68, 2) or not np.all(np.isfinite(shape)):
        raise ValueError(f"shape_px: expected finite 300-W points of shape (68, 2), got {shape.shape}")
    w, h = _image_size(size)
    canvas = _background(h, w, rng, texture) if background else np.full((h, w, 3), 128, np.float32)
    skin = _skin_color(rng)
    head = _head_polygons(shape)
    _fill(canvas, [head["neck"]], skin * 0.75)
    if rng.random() < 0.75:
        _fill(canvas, [head["hair"]], rng.uniform(10, 120) * rng.uniform(0.6, 1.0, 3))
    skin_cover = np.maximum(_fill(canvas, [head["face"]], skin), _fill(canvas, [head["nose"]], skin))
    if texture:
        _shade(canvas, skin_cover, shape, rng)
    _draw_features(canvas, shape, skin, rng)
    if texture:
        canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(rng.uniform(1, 6))
        sigma = rng.uniform(0, 1.0)
        if sigma > 0.3:
            canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    np.clip(canvas + 0.5, 0, 255, out=canvas)
    return canvas.astype(np.uint8)


# --------------------------------------------------------------------------- datasets


def _place(points: np.ndarray, w: int, h: int, face_width: float, rng: np.random.Generator) -> np.ndarray:
    """Scale unit-frame points [L, 2] by ``face_width`` pixels and shift them to a random
    position with their box inside [1, W - 2] x [1, H - 2] (shrinking if needed)."""
    box_lo, box_hi = points.min(0), points.max(0)
    extent = box_hi - box_lo
    room = np.array([w - 3.0, h - 3.0])
    scale = min(face_width, *(room / np.maximum(extent, 1e-6)))
    lo = 1.0 - box_lo * scale
    hi = np.array([w - 2.0, h - 2.0]) - box_hi * scale
    return points * scale + rng.uniform(lo, np.maximum(hi, lo))


def synthetic_faces(n: int, scheme: LandmarkScheme | str = "300w-68", image_size: int | Sequence[int] = 128,
                    seed: int = 0, max_yaw_deg: float = 60.0, max_roll_deg: float = 30.0,
                    max_pitch_deg: float = 15.0, scale_range: tuple[float, float] = (0.4, 0.65),
                    jitter: float = 0.004) -> list[SyntheticFace]:
    """Generate ``n`` random faces with their landmarks.

    Args:
        n: number of faces.
        scheme: a built-in scheme with a synthetic layout (see `supported_schemes`) or its name.
        image_size: int (square) or (W, H) in pixels.
        seed: random seed; the same arguments always give the same faces.
        max_yaw_deg, max_roll_deg, max_pitch_deg: poses are uniform in +-these, degrees.
        scale_range: landmark face width as a fraction of min(W, H), uniform in this range
            (reduced where a rotated face would not fit).
        jitter: per-point shape noise, face-width units (see `synthetic_shape`).
    Returns:
        ``n`` `SyntheticFace` objects; all points lie inside the image.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    lo_s, hi_s = scale_range
    if not 0 < lo_s <= hi_s:
        raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
    scheme = _resolve_scheme(scheme)
    matrix = _layout(scheme)
    w, h = _image_size(image_size)
    rng = np.random.default_rng(seed)
    faces = []
    for _ in range(n):
        yaw, pitch, roll = rng.uniform(-1, 1, 3) * [max_yaw_deg, max_pitch_deg, max_roll_deg]
        shape68 = _shape_68(rng, yaw, pitch, roll, float(rng.uniform() ** 2), jitter)
        both = _place(np.concatenate([shape68, matrix @ shape68]), w, h,
                      rng.uniform(lo_s, hi_s) * min(w, h), rng)
        image = render_face(both[:68], (w, h), rng)
        faces.append(SyntheticFace(image, both[68:].astype(np.float32), float(yaw), float(pitch), float(roll)))
    return faces


def _split_counts(total: int, parts: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Share ``total`` faces among folders in proportion to their real 300-W sizes."""
    sizes = np.array([s for _, s in parts], dtype=np.float64)
    exact = total * sizes / sizes.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(counts - exact)[: total - counts.sum()]:
        counts[i] += 1
    return [(name, int(c)) for (name, _), c in zip(parts, counts)]


def _pts_text(points: np.ndarray) -> str:
    """The 300-W ``.pts`` text for 0-based points [68, 2] (written 1-based)."""
    body = "\n".join(f"{x + 1:.3f} {y + 1:.3f}" for x, y in points)
    return f"version: 1\nn_points:  {len(points)}\n{{\n{body}\n}}\n"


def write_synthetic_300w(root: str | Path, n_train: int = 30, n_test: int = 10, seed: int = 0,
                         image_size: int | Sequence[int] = 128) -> Path:
    """Write synthetic 68-point faces in the official 300-W folder layout.

    Train faces go to ``lfpw/trainset``, ``helen/trainset`` and ``afw``; test faces to
    ``lfpw/testset`` and ``helen/testset`` (split in proportion to the real folder sizes).
    Each face is ``NAME.png`` plus ``NAME.pts`` (``version: 1``, ``n_points:  68``, ``{``,
    68 lines ``x y`` in 1-based pixel coordinates, ``}``).

    Returns:
        ``root`` as a Path. Existing files with the same names are overwritten.
    """
    if n_train < 0 or n_test < 0:
        raise ValueError(f"n_train and n_test must be non-negative, got {n_train} and {n_test}")
    root = Path(root)
    faces = iter(synthetic_faces(n_train + n_test, "300w-68", image_size, seed=seed))
    plan = _split_counts(n_train, _PTS_TRAIN) + _split_counts(n_test, _PTS_TEST)
    for folder, count in plan:
        out = root / folder
        out.mkdir(parents=True, exist_ok=True)
        for k in range(count):
            face = next(faces)
            name = f"synth_{folder.split('/')[0]}_{k:05d}"
            ok, data = cv2.imencode(".png", cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR))
            if not ok:
                raise ValueError(f"could not encode {out / name}.png")
            (out / f"{name}.png").write_bytes(data.tobytes())
            (out / f"{name}.pts").write_text(_pts_text(face.points))
    return root
