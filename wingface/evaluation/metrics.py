"""Landmark accuracy metrics: NME, failure rate, exact CED AUC, subset breakdowns.

All inputs are 0-based pixel coordinates in one image space (usually the original image);
shapes are batch-first: N faces, L points. Per-face errors are **fractions** of the
normaliser (0.05 = 5 %); ``summarise`` reports NME and FR in percent and AUC as a fraction
in [0, 1], the way papers print them.

Normalisers (``normaliser``): ``inter_ocular`` and ``inter_pupil`` use the scheme's two
point sets (distance between the set means: outer eye corners 36/45 and eye centres for
300-W, 60/72 for WFLW, 8/9 for COFW-29); ``box`` is ``sqrt(w * h)`` of the given boxes
(default: the target's tight landmark box) and ``box_diagonal`` their diagonal.

Pure functions do the maths; ``NMEAccumulator`` is a thin shell that collects batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..lookup import lookup
from ..schemes import LandmarkScheme

__all__ = [
    "DEFAULT_NORMALISERS", "NMEAccumulator", "NORMALISER_KINDS", "auc", "breakdown", "ced_curve", "failure_rate",
    "group_nme", "nme", "normaliser", "point_errors", "summarise",
]

# Per scheme name, the normalisers papers report (the first is the headline one).
# 300-W: the Wing paper uses inter-pupil, most later work inter-ocular; report both.
DEFAULT_NORMALISERS: Mapping[str, tuple[str, ...]] = {
    "300w-68": ("inter_ocular", "inter_pupil"),
    "wflw-98": ("inter_ocular",),
    "cofw-29": ("inter_ocular",),
    "aflw-19": ("box",),
}


def _as_array(x: Any, name: str) -> np.ndarray:
    """numpy float64 view of an array-like or a (CPU or GPU) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a numeric array, got {type(x).__name__}") from None


def _points(x: Any, name: str) -> np.ndarray:
    p = _as_array(x, name)
    if p.ndim != 3 or p.shape[-1] != 2:
        raise ValueError(f"{name}: expected shape [N, L, 2], got {list(p.shape)}")
    return p


def _mask(visible: Any, shape: tuple[int, int]) -> np.ndarray:
    m = np.asarray(visible.detach().cpu() if hasattr(visible, "detach") else visible).astype(bool)
    if m.shape != shape:
        raise ValueError(f"visible: expected shape [N, L] = {list(shape)}, got {list(m.shape)}")
    return m


def point_errors(pred: Any, target: Any) -> np.ndarray:
    """Euclidean error of each point in pixels.

    Args:
        pred: [N, L, 2] predicted points, pixels.
        target: [N, L, 2] ground truth in the same space.
    Returns:
        float64 [N, L] distances in pixels (NaN where either point is NaN).
    """
    p, t = _points(pred, "pred"), _points(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred {list(p.shape)} and target {list(t.shape)} differ in shape")
    return np.linalg.norm(p - t, axis=-1)


def _set_distance(target: np.ndarray, sets: Sequence[Sequence[int]]) -> np.ndarray:
    """[N] distance between the means of two point sets of each shape."""
    num_points = target.shape[1]
    for s in sets:
        for k in s:
            if not 0 <= k < num_points:
                raise ValueError(f"normaliser point {k} outside 0..{num_points - 1}")
    a = target[:, list(sets[0])].mean(axis=1)
    b = target[:, list(sets[1])].mean(axis=1)
    return np.linalg.norm(a - b, axis=-1)


def _box_sides(target: np.ndarray, boxes: Any) -> np.ndarray:
    """[N, 2] (width, height) of the given boxes or of each target's tight landmark box."""
    if boxes is None:
        b = np.concatenate([np.nanmin(target, axis=1), np.nanmax(target, axis=1)], axis=-1)
    else:
        b = _as_array(boxes, "boxes")
        if b.shape != (target.shape[0], 4):
            raise ValueError(f"boxes: expected shape [N, 4] = [{target.shape[0]}, 4], got {list(b.shape)}")
    return b[:, 2:] - b[:, :2]


def _scheme_sets(attr: str):
    def sets(target: np.ndarray, scheme: LandmarkScheme | None, boxes: Any) -> np.ndarray:
        if scheme is None:
            raise ValueError(f"normaliser {attr!r} needs a landmark scheme")
        if scheme.num_points != target.shape[1]:
            raise ValueError(f"scheme {scheme.name!r} has {scheme.num_points} points, target has {target.shape[1]}")
        return _set_distance(target, getattr(scheme, attr))
    return sets


_NORMALISERS = {
    "inter_ocular": _scheme_sets("inter_ocular"),
    "inter_pupil": _scheme_sets("inter_pupil"),
    "box": lambda target, scheme, boxes: np.sqrt(np.prod(_box_sides(target, boxes), axis=-1)),
    "box_diagonal": lambda target, scheme, boxes: np.linalg.norm(_box_sides(target, boxes), axis=-1),
}
NORMALISER_KINDS = tuple(_NORMALISERS)


def _point_sets(kind: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(a, b)`` or ``([a, ...], [b, ...])`` -> two tuples of point indices."""
    try:
        sets = tuple(tuple(int(i) for i in np.atleast_1d(s)) for s in kind)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"normaliser kind: expected a name or two point-index sets, got {kind!r}") from None
    if len(sets) != 2 or not all(sets):
        raise ValueError(f"normaliser kind: expected two non-empty point-index sets, got {kind!r}")
    return sets  # type: ignore[return-value]


def normaliser(target: Any, scheme: LandmarkScheme | None, kind: Any, boxes: Any = None) -> np.ndarray:
    """Per-face normalising distance in pixels.

    Args:
        target: [N, L, 2] ground-truth points, pixels.
        scheme: the landmark scheme (needed for ``inter_ocular`` and ``inter_pupil``).
        kind: ``inter_ocular``, ``inter_pupil``, ``box`` (sqrt(w * h)), ``box_diagonal``,
            or two point-index sets such as ``([8], [9])`` (distance between set means).
        boxes: optional [N, 4] (x0, y0, x1, y1) face boxes for the box kinds; default the
            tight box of each target's points (NaN points ignored).
    Returns:
        float64 [N] distances in pixels.
    """
    t = _points(target, "target")
    if isinstance(kind, str):
        return lookup(_NORMALISERS, kind, "normaliser")(t, scheme, boxes)
    return _set_distance(t, _point_sets(kind))


def _normalised_point_errors(pred: Any, target: Any, norm: Any, visible: Any) -> tuple[np.ndarray, np.ndarray]:
    """Point errors divided by each face's normaliser, float64 [N, L], and which points count,
    bool [N, L] (annotated and, if ``visible`` is given, visible); arguments as in ``nme``."""
    t = _points(target, "target")
    err = point_errors(pred, t)
    counted = np.isfinite(t).all(axis=-1)
    if visible is not None:
        counted &= _mask(visible, err.shape)
    n = _as_array(norm, "norm").reshape(-1)
    if n.shape != (err.shape[0],):
        raise ValueError(f"norm: expected {err.shape[0]} values, got {n.size}")
    bad = np.flatnonzero(~(np.isfinite(n) & (n > 0)))
    if bad.size:
        raise ValueError(f"norm: face(s) {bad[:10].tolist()} have a zero, negative or non-finite normaliser")
    return err / n[:, None], counted


def _counted_mean(err: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Per-row mean of ``err`` [N, K] over the ``counted`` [N, K] entries (every row has one)."""
    return np.where(counted, err, 0.0).sum(axis=1) / counted.sum(axis=1)


def nme(pred: Any, target: Any, norm: Any, visible: Any = None) -> np.ndarray:
    """Normalised mean error of each face.

    Args:
        pred: [N, L, 2] predicted points, pixels.
        target: [N, L, 2] ground truth, pixels. Points with a NaN target are not counted.
        norm: [N] normalising distances in pixels (``normaliser``), all finite and > 0.
        visible: optional bool [N, L]; False points are not counted.
    Returns:
        float64 [N]: mean point error over counted points divided by ``norm`` (a fraction;
        multiply by 100 for %). NaN/inf predictions give a non-finite NME (a failure).
    Raises:
        ValueError: a normaliser is not finite and positive, or a face has no counted point.
    """
    err, counted = _normalised_point_errors(pred, target, norm, visible)
    empty = np.flatnonzero(~counted.any(axis=1))
    if empty.size:
        raise ValueError(f"face(s) {empty[:10].tolist()} have no visible, annotated point")
    return _counted_mean(err, counted)


def group_nme(pred: Any, target: Any, norm: Any, groups: Mapping[str, Sequence[int]],
              visible: Any = None) -> dict[str, float]:
    """NME of each landmark group (jaw, eyes, mouth, ...): where a model errs.

    Args:
        pred, target, norm, visible: as in ``nme``.
        groups: group name -> point indices (``LandmarkScheme.groups``).
    Returns:
        ``{group: NME in %}``: per face the mean counted error over the group's points divided
        by ``norm``, averaged over the faces with at least one counted point in the group
        (groups with none are left out).
    Raises:
        ValueError: a normaliser is not finite and positive.
    """
    err, counted = _normalised_point_errors(pred, target, norm, visible)
    out: dict[str, float] = {}
    for name, indices in groups.items():
        c, e = counted[:, list(indices)], err[:, list(indices)]
        faces = c.any(axis=1)
        if faces.any():
            out[name] = float(_counted_mean(e[faces], c[faces]).mean() * 100)
    return out


def _errors(errors: Any) -> np.ndarray:
    """[N] per-face errors with NaN mapped to +inf (a failed face), non-empty."""
    e = _as_array(errors, "errors").reshape(-1)
    if e.size == 0:
        raise ValueError("errors: no faces to summarise")
    return np.where(np.isnan(e), np.inf, e)


def _threshold(threshold: float) -> float:
    t = float(threshold)
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"threshold must be finite and > 0, got {threshold!r}")
    return t


def failure_rate(errors: Any, threshold: float = 0.1) -> float:
    """Fraction of faces whose error exceeds ``threshold`` (strictly); NaN errors count as failures.

    Args:
        errors: [N] per-face errors as fractions (e.g. ``nme`` output).
        threshold: failure threshold, same unit (0.1 = 10 %).
    """
    return float(np.mean(_errors(errors) > _threshold(threshold)))


def auc(errors: Any, threshold: float = 0.1) -> float:
    """Exact area under the cumulative error distribution up to ``threshold``, divided by it.

    The CED is the step function ``F(x) = #(e_i <= x) / N``; its integral over
    ``[0, T]`` is ``sum_i max(T - e_i, 0) / N``, so the AUC is ``mean(clip(1 - e / T, 0, 1))``.
    No sampling is involved. NaN errors count as failures.

    Args:
        errors: [N] per-face errors as fractions.
        threshold: upper integration limit T (0.1 = 10 %).
    Returns:
        AUC in [0, 1].
    """
    t = _threshold(threshold)
    return float(np.mean(np.clip(1.0 - _errors(errors) / t, 0.0, 1.0)))


def ced_curve(errors: Any, threshold: float = 0.1, num: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Sampled cumulative error distribution for plotting.

    Args:
        errors: [N] per-face errors as fractions.
        threshold: right end of the x range.
        num: number of samples.
    Returns:
        x: float64 [num] error values ``linspace(0, threshold)``; y: float64 [num] fraction
        of faces with error <= x.
    """
    e = np.sort(_errors(errors))
    x = np.linspace(0.0, _threshold(threshold), int(num))
    return x, np.searchsorted(e, x, side="right") / e.size


def _threshold_key(t: float) -> str:
    return f"{t * 100:g}"


def summarise(errors: Any, thresholds: Sequence[float] = (0.08, 0.10)) -> dict[str, float]:
    """Headline numbers of a set of per-face errors.

    Args:
        errors: [N] per-face errors as fractions.
        thresholds: FR/AUC thresholds as fractions.
    Returns:
        ``{"n": N, "nme": mean %, "fr@8": %, "auc@8": fraction, "fr@10": ..., "auc@10": ...}``
        (the key suffix is the threshold in %). ``nme`` is inf if any error is NaN or inf.
    """
    e = _errors(errors)
    out: dict[str, float] = {"n": int(e.size), "nme": float(e.mean() * 100)}
    for t in thresholds:
        key = _threshold_key(_threshold(t))
        out[f"fr@{key}"] = failure_rate(e, t) * 100
        out[f"auc@{key}"] = auc(e, t)
    return out


def _label_masks(labels: Any, n: int) -> dict[str, np.ndarray]:
    """Labels as ``{label: bool [N]}`` from a mapping of masks or per-face label lists."""
    if isinstance(labels, Mapping):
        masks = {str(k): np.asarray(v, dtype=bool).reshape(-1) for k, v in labels.items()}
        for k, m in masks.items():
            if m.shape != (n,):
                raise ValueError(f"labels[{k!r}]: expected a mask of {n} faces, got {m.size}")
        return masks
    if len(labels) != n:
        raise ValueError(f"labels: expected one entry per face ({n}), got {len(labels)}")
    masks: dict[str, np.ndarray] = {}
    for i, face in enumerate(labels):
        for label in [face] if isinstance(face, str) else (face or ()):
            masks.setdefault(str(label), np.zeros(n, dtype=bool))[i] = True
    return masks


def breakdown(
    errors: Any, labels: Any, thresholds: Sequence[float] = (0.08, 0.10)
) -> dict[str, dict[str, float]]:
    """``summarise`` per subset or attribute; a face may carry several labels.

    Args:
        errors: [N] per-face errors as fractions.
        labels: either a mapping ``label -> bool [N]`` mask, or a length-N sequence whose
            items are one label (str) or a list of labels (e.g. WFLW ``["pose", "blur"]``).
        thresholds: as in ``summarise``.
    Returns:
        ``{label: summary}`` in first-seen (or mapping) order; labels with no face are left out.
    """
    e = _as_array(errors, "errors").reshape(-1)
    return {
        label: summarise(e[mask], thresholds)
        for label, mask in _label_masks(labels, e.size).items()
        if mask.any()
    }


def _kind_name(kind: Any) -> str:
    if isinstance(kind, str):
        return kind
    a, b = _point_sets(kind)
    return "points_" + "-".join(map(str, a)) + "_" + "-".join(map(str, b))


class NMEAccumulator:
    """Collects batches and reports NME/FR/AUC for one or more normalisers.

    Args:
        scheme: the landmark scheme of the points.
        kinds: normaliser kinds (see ``normaliser``); default ``DEFAULT_NORMALISERS`` for the
            scheme, or ``("inter_ocular",)`` for a scheme not listed there.
        thresholds: FR/AUC thresholds as fractions.
    """

    def __init__(
        self,
        scheme: LandmarkScheme,
        kinds: Sequence[Any] | None = None,
        thresholds: Sequence[float] = (0.08, 0.10),
    ) -> None:
        self.scheme = scheme
        kinds = DEFAULT_NORMALISERS.get(scheme.name, ("inter_ocular",)) if kinds is None else kinds
        self.kinds = {_kind_name(k): k for k in kinds}
        for k in self.kinds.values():
            if isinstance(k, str):
                lookup(_NORMALISERS, k, "normaliser")
        self.thresholds = tuple(_threshold(t) for t in thresholds)
        self.reset()

    def reset(self) -> None:
        """Forget all collected faces."""
        self._errors: dict[str, list[np.ndarray]] = {k: [] for k in self.kinds}
        self._labels: list[list[str]] = []

    def update(self, pred: Any, target: Any, visible: Any = None, boxes: Any = None, labels: Any = None) -> None:
        """Add a batch.

        Args:
            pred, target: [N, L, 2] points in pixels of one image space (arrays or tensors).
            visible: optional bool [N, L] (see ``nme``).
            boxes: optional [N, 4] face boxes for the box normalisers.
            labels: optional per-face labels, as accepted by ``breakdown``.
        """
        t = _points(target, "target")
        for name, kind in self.kinds.items():
            norm = normaliser(t, self.scheme, kind, boxes)
            self._errors[name].append(nme(pred, t, norm, visible))
        masks = _label_masks(labels, t.shape[0]) if labels is not None else {}
        self._labels += [[k for k, m in masks.items() if m[i]] for i in range(t.shape[0])]

    def errors(self) -> dict[str, np.ndarray]:
        """Per-face errors so far: ``{kind: float64 [N]}`` as fractions."""
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in self._errors.items()}

    def compute(self) -> dict[str, dict[str, Any]]:
        """``{kind: {"summary": summarise(...), "breakdown": breakdown(...)}}``.

        ``breakdown`` is empty when no labels were given. Raises ValueError before any update.
        """
        if not self._labels:
            raise ValueError("NMEAccumulator: no faces collected yet")
        return {
            kind: {
                "summary": summarise(e, self.thresholds),
                "breakdown": breakdown(e, self._labels, self.thresholds),
            }
            for kind, e in self.errors().items()
        }
