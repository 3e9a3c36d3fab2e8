"""Drawing landmarks and boxes on images (OpenCV, anti-aliased).

Works on anything shaped like `wingface.inference.results.Face` (``points``, ``box``,
``scheme``, ``point_confidence``); it imports nothing from the results module, which
imports this one.
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np

# Under this a face or point is doubtful: drawn in red, counted by `wingface predict`, and
# looked for again by video tracking (the one home of that default).
LOW_CONFIDENCE = 0.5


def draw_faces(image: np.ndarray, faces: Sequence[Any], *, radius: int | None = None,
               color: tuple[int, int, int] = (0, 255, 0), box_color: tuple[int, int, int] = (255, 160, 0),
               lines: bool = True, low_color: tuple[int, int, int] = (255, 40, 40)) -> np.ndarray:
    """RGB uint8 copy of ``image`` with each face's box, landmarks and group contours.

    The dot radius scales with the face size unless ``radius`` is given. Points whose
    ``point_confidence`` is under `LOW_CONFIDENCE` are drawn as rings in ``low_color``
    instead of dots, and a face's box turns ``low_color`` when its ``confidence`` is low.
    """
    out = np.ascontiguousarray(image.copy())
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px
    for face in faces:
        size = float(np.ptp(face.points[:, 0]) + np.ptp(face.points[:, 1])) / 2
        r = radius or max(1, int(round(size / 90)))
        thick = max(1, r // 2)
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        doubtful = getattr(face, "confidence", np.nan) < LOW_CONFIDENCE
        cv2.rectangle(out, (x0, y0), (x1, y1), low_color if doubtful else box_color, thick, cv2.LINE_AA)
        point_conf = getattr(face, "point_confidence", None)
        low = np.zeros(len(face.points), bool) if point_conf is None else np.asarray(point_conf) < LOW_CONFIDENCE
        pts = np.round(face.points * (1 << shift)).astype(np.int32)  # OpenCV also puts pixel centres at integers
        if lines and face.scheme is not None:
            for group in face.scheme.groups.values():
                poly = pts[list(group)].reshape(-1, 1, 2)
                cv2.polylines(out, [poly], False, (255, 255, 255), 1, cv2.LINE_AA, shift)
        for p, is_low in zip(pts, low):
            centre = (int(p[0]), int(p[1]))
            if is_low:
                cv2.circle(out, centre, (r + 1) << shift, low_color, max(1, thick), cv2.LINE_AA, shift)
            else:
                cv2.circle(out, centre, r << shift, color, -1, cv2.LINE_AA, shift)
    return out
