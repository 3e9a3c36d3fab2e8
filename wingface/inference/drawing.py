"""Drawing landmarks and boxes on images (OpenCV, anti-aliased)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .results import Face


def draw_faces(image: np.ndarray, faces: Sequence[Face], *, radius: int | None = None,
               color: tuple[int, int, int] = (0, 255, 0), box_color: tuple[int, int, int] = (255, 160, 0),
               lines: bool = True) -> np.ndarray:
    """RGB uint8 copy of ``image`` with each face's box, landmarks and group contours.

    The dot radius scales with the face size unless ``radius`` is given.
    """
    out = np.ascontiguousarray(image.copy())
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px
    for face in faces:
        size = float(np.ptp(face.points[:, 0]) + np.ptp(face.points[:, 1])) / 2
        r = radius or max(1, int(round(size / 90)))
        thick = max(1, r // 2)
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), box_color, thick, cv2.LINE_AA)
        pts = np.round(face.points * (1 << shift)).astype(np.int32)  # OpenCV also puts pixel centres at integers
        if lines and face.scheme is not None:
            for group in face.scheme.groups.values():
                poly = pts[list(group)].reshape(-1, 1, 2)
                cv2.polylines(out, [poly], False, (255, 255, 255), 1, cv2.LINE_AA, shift)
        for p in pts:
            cv2.circle(out, (int(p[0]), int(p[1])), r << shift, color, -1, cv2.LINE_AA, shift)
    return out
