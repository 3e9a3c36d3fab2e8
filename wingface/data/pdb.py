"""Pose-based data balancing (PDB), as in the Wing loss paper's official code (pdb.m).

1. Procrustes-align every training shape to the mean shape (one pass, scale allowed).
2. PCA on the aligned shapes; the pose (yaw) component is ``scheme.pose_component``
   (PC 1 for 68/98-point schemes, PC 2 for AFLW-19).
3. Project each shape on it, take |projection| and histogram it into K = 9 equal-width
   bins on [0, max].
4. Repeat each bin's samples round(max_bin_count / bin_count) times (empty bins skipped).
   ``round`` is MATLAB's, halves away from zero (2.5 -> 3).

The trainer draws from the returned index list every epoch, so each copy of a rare pose
gets fresh augmentation. Shapes are [N, L, 2] in any pixel frame; NaN marks a missing
point, which gets no weight in the alignment and sits at the mean shape's position for
the PCA (so it adds no pose signal). Occluded but annotated points count like visible ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..geometry import apply_affine, fit_similarity
from ..schemes import LandmarkScheme

__all__ = [
    "PdbReport", "PoseAnalysis", "align_shapes", "pdb_factors", "pdb_histogram", "pdb_indices",
    "pdb_report", "plot_pose_component", "pose_projection", "project_on",
]

log = logging.getLogger(__name__)

DEFAULT_BINS = 9


@dataclass(frozen=True)
class PoseAnalysis:
    """The pose component of a set of shapes.

    Attributes:
        scheme: the landmark scheme of the shapes.
        index: 0-based principal component used (0 = PC 1).
        reference: [L, 2] the alignment reference (`align_shapes`' second return; unit RMS,
            centred on the origin); `project_on` aligns new shapes to it.
        mean: [L, 2] mean of the aligned shapes (the reference's frame).
        component: [L, 2] unit principal direction (sign fixed: largest entry positive).
        std: standard deviation of the projections along ``component``.
        explained: share of the aligned shapes' variance along ``component`` (0..1).
        projections: [N] signed projection of each aligned shape on ``component``.
    """

    scheme: LandmarkScheme
    index: int
    reference: np.ndarray
    mean: np.ndarray
    component: np.ndarray
    std: float
    explained: float
    projections: np.ndarray


@dataclass(frozen=True)
class PdbReport:
    """Before/after histograms of a PDB resampling.

    Attributes:
        analysis: the pose analysis the bins come from.
        edges: [K + 1] bin edges of |projection| on [0, max].
        bin_index: [N] bin of each sample.
        counts: [K] samples per bin before balancing.
        factors: [K] repetitions per sample of each bin (0 for empty bins).
        balanced: [K] samples per bin after balancing (counts * factors).
        indices: int64 [sum(balanced)] indices into the original samples, each repeated
            its bin's factor, in ascending order.
    """

    analysis: PoseAnalysis
    edges: np.ndarray
    bin_index: np.ndarray
    counts: np.ndarray
    factors: np.ndarray
    balanced: np.ndarray
    indices: np.ndarray


def align_shapes(shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Procrustes-align shapes to their mean in one pass.

    The reference is the mean of the shapes after centring each and scaling it to unit
    RMS distance from its centroid; each shape is then mapped onto the reference by its
    least-squares similarity (rotation, isotropic scale, shift; no reflection).

    Args:
        shapes: [N, L, 2] points; NaN marks a missing point (each shape needs two known).
    Returns:
        (aligned [N, L, 2] float64 with missing points set to the reference's,
        reference [L, 2] float64, centred with unit RMS).
    """
    pts = _check_shapes(shapes)
    known = np.all(np.isfinite(pts), axis=-1)
    seen = known.sum(axis=0)
    if np.any(seen == 0):
        raise ValueError(f"shapes: point(s) {np.flatnonzero(seen == 0).tolist()} are missing (NaN) in every shape")
    reference = np.nansum(_normalise(pts, known), axis=0) / seen[:, None]
    reference = _normalise(reference[None], np.ones((1, len(reference)), bool))[0]
    return _align_to(pts, reference), reference


def _align_to(pts: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Map each shape [N, L, 2] onto ``reference`` [L, 2] by its least-squares similarity fitted
    on its known points; missing (NaN) points take the reference's position."""
    known = np.all(np.isfinite(pts), axis=-1)
    to_reference = fit_similarity(np.where(known[..., None], pts, 0.0), reference, weights=known.astype(np.float64))
    return np.where(known[..., None], apply_affine(to_reference, np.nan_to_num(pts)), reference)


def pose_projection(shapes: np.ndarray, scheme: LandmarkScheme, component: int | None = None) -> PoseAnalysis:
    """Align ``shapes`` [N, L, 2], run PCA and project them on the pose component.

    ``component`` (0-based) defaults to ``scheme.pose_component``.
    """
    pts = _check_shapes(shapes)
    if pts.shape[1] != scheme.num_points:
        raise ValueError(f"shapes: {pts.shape[1]} points per shape, scheme {scheme.name!r} has {scheme.num_points}")
    if len(pts) < 2:
        raise ValueError(f"shapes: PCA needs at least two shapes, got {len(pts)}")
    index = scheme.pose_component if component is None else component
    rank = min(len(pts) - 1, 2 * scheme.num_points)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < rank:
        raise ValueError(f"component: expected an integer in 0..{rank - 1} for {len(pts)} shapes, got {index!r}")
    aligned, reference = align_shapes(pts)
    flat = aligned.reshape(len(pts), -1)
    mean = flat.mean(axis=0)
    _, singular, rows = np.linalg.svd(flat - mean, full_matrices=False)
    direction = rows[index] * np.sign(rows[index][np.argmax(np.abs(rows[index]))])
    variance = singular**2
    return PoseAnalysis(
        scheme=scheme,
        index=int(index),
        reference=reference,
        mean=mean.reshape(-1, 2),
        component=direction.reshape(-1, 2),
        std=float(singular[index] / np.sqrt(len(pts) - 1)),
        explained=float(variance[index] / max(variance.sum(), 1e-300)),
        projections=(flat - mean) @ direction,
    )


def project_on(analysis: PoseAnalysis, shapes: np.ndarray) -> np.ndarray:
    """Signed projections [N] of new shapes [N, L, 2] (any pixel frame, NaN = missing point) on
    ``analysis``'s pose component, in the units of ``analysis.projections`` (the reference's
    unit-RMS frame).

    Each shape is aligned to ``analysis.reference`` and centred on ``analysis.mean`` exactly as
    `pose_projection` treated its shapes, so the training shapes give back ``analysis.projections``.
    """
    pts = _check_shapes(shapes)
    if pts.shape[1] != analysis.scheme.num_points:
        raise ValueError(f"shapes: {pts.shape[1]} points per shape, scheme {analysis.scheme.name!r} "
                         f"has {analysis.scheme.num_points}")
    flat = _align_to(pts, analysis.reference).reshape(len(pts), -1)
    return (flat - analysis.mean.reshape(-1)) @ analysis.component.reshape(-1)


def pdb_histogram(projections: np.ndarray, bins: int = DEFAULT_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histogram of |projections| [N] in ``bins`` equal-width bins on [0, max].

    Bins are half-open [e_k, e_k+1) except the last, which includes the maximum.
    Returns (counts [K] int64, edges [K + 1] float64, bin_index [N] int64).
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins: expected a positive integer, got {bins!r}")
    size = np.abs(np.asarray(projections, dtype=np.float64))
    if size.ndim != 1 or size.size == 0 or not np.all(np.isfinite(size)):
        raise ValueError(f"projections: expected a non-empty finite [N] array, got shape {size.shape}")
    edges = np.linspace(0.0, size.max(), bins + 1)
    bin_index = np.searchsorted(edges[1:-1], size, side="right")
    return np.bincount(bin_index, minlength=bins), edges, bin_index


def pdb_factors(counts: np.ndarray) -> np.ndarray:
    """Repetitions per bin: round(max(counts) / count) with MATLAB rounding; 0 for empty bins."""
    c = np.asarray(counts, dtype=np.int64)
    ratio = np.divide(c.max(initial=0), c, out=np.zeros(c.shape), where=c > 0)
    return np.floor(ratio + 0.5).astype(np.int64)


def pdb_report(
    shapes: np.ndarray, scheme: LandmarkScheme, bins: int = DEFAULT_BINS, component: int | None = None
) -> PdbReport:
    """Run PDB on training shapes [N, L, 2]; returns the resampling and its histograms."""
    analysis = pose_projection(shapes, scheme, component)
    counts, edges, bin_index = pdb_histogram(analysis.projections, bins)
    factors = pdb_factors(counts)
    indices = np.repeat(np.arange(len(bin_index), dtype=np.int64), factors[bin_index])
    log.debug("PDB: %d samples -> %d (factors %s)", len(bin_index), len(indices), factors.tolist())
    return PdbReport(analysis, edges, bin_index, counts, factors, counts * factors, indices)


def pdb_indices(
    shapes: np.ndarray, scheme: LandmarkScheme, bins: int = DEFAULT_BINS, component: int | None = None
) -> np.ndarray:
    """int64 indices into ``shapes`` [N, L, 2], each repeated by its pose bin's PDB factor."""
    return pdb_report(shapes, scheme, bins, component).indices


def plot_pose_component(analysis: PoseAnalysis, path: str | Path, bins: int = DEFAULT_BINS) -> Path:
    """Save a figure of the pose component and of the PDB histograms (atomic write).

    Left: the mean shape moved along the component by -2, -1, 0, +1, +2 standard
    deviations (drawn with the scheme's point groups). Right: samples per |projection|
    bin before and after balancing. The format follows ``path``'s suffix (e.g. .png).
    """
    from matplotlib.figure import Figure  # optional heavy import, only when plotting

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    fig = Figure(figsize=(15, 3.4), layout="constrained")
    if fmt not in fig.canvas.get_supported_filetypes():
        raise ValueError(f"{path}: unsupported image format {fmt!r}")
    grid = fig.add_gridspec(1, 7)
    for col, k in enumerate((-2, -1, 0, 1, 2)):
        _draw_shape(fig.add_subplot(grid[0, col]), analysis, analysis.mean + k * analysis.std * analysis.component,
                    f"{k:+d} std" if k else "mean")
    _draw_histograms(fig.add_subplot(grid[0, 5:]), analysis, bins)
    fig.suptitle(f"{analysis.scheme.name}: PC {analysis.index + 1} "
                 f"({100 * analysis.explained:.1f}% of aligned shape variance)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=100)
    return path


def _draw_shape(ax, analysis: PoseAnalysis, shape: np.ndarray, title: str) -> None:
    for indices in analysis.scheme.groups.values():
        ax.plot(shape[list(indices), 0], shape[list(indices), 1], "-", lw=1, color="0.6")
    ax.plot(shape[:, 0], shape[:, 1], ".", ms=3, color="tab:blue")
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    ax.invert_yaxis()  # image coordinates: y points down
    ax.axis("off")


def _draw_histograms(ax, analysis: PoseAnalysis, bins: int) -> None:
    counts, edges, _ = pdb_histogram(analysis.projections, bins)
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    ax.bar(centres - width / 5, counts, width=width * 0.4, label=f"before ({counts.sum()})")
    balanced = counts * pdb_factors(counts)
    ax.bar(centres + width / 5, balanced, width=width * 0.4, label=f"after ({balanced.sum()})")
    ax.set_xlabel("|projection| on the pose component")
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)


def _normalise(points: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Centre each [N, L, 2] shape on its known points and scale it to unit RMS radius."""
    masked = np.where(known[..., None], points, np.nan)
    centred = masked - np.nanmean(masked, axis=1, keepdims=True)
    rms = np.sqrt(np.nanmean(np.sum(centred**2, axis=-1), axis=1))
    if np.any(~(rms > 0)):
        raise ValueError(f"shapes: shape(s) {np.flatnonzero(~(rms > 0)).tolist()} have no extent")
    return centred / rms[:, None, None]


def _check_shapes(shapes: np.ndarray) -> np.ndarray:
    pts = np.asarray(shapes, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[-1] != 2 or pts.shape[0] < 1:
        raise ValueError(f"shapes: expected [N, L, 2] with N >= 1, got shape {pts.shape}")
    too_few = np.flatnonzero(np.all(np.isfinite(pts), axis=-1).sum(axis=1) < 2)
    if too_few.size:
        raise ValueError(f"shapes: shape(s) {too_few[:10].tolist()} have fewer than two known points")
    return pts
