"""Pose-based data balancing: alignment, the pose component, bin factors, figure and CLI."""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from wingface.cli.main import main
from wingface.data.pdb import (
    align_shapes,
    pdb_factors,
    pdb_histogram,
    pdb_indices,
    pdb_report,
    plot_pose_component,
    pose_projection,
)
from wingface.data.readers.base import DatasetReader
from wingface.data.records import FaceRecord, SplitResult
from wingface.geometry import apply_affine, rotation_about
from wingface.schemes import get_scheme

SCHEME = get_scheme("300w-68")


def face_template() -> tuple[np.ndarray, np.ndarray]:
    """A 68-point face-like layout (x, y in about [-1, 1], y down) and each point's depth z."""
    t = np.linspace(np.pi, 0, 17)
    jaw = np.stack([np.cos(t), 0.1 + 0.9 * np.sin(t)], -1)
    brows = np.stack([np.r_[np.linspace(-0.8, -0.2, 5), np.linspace(0.2, 0.8, 5)], np.full(10, -0.5)], -1)
    bridge = np.stack([np.zeros(4), np.linspace(-0.3, 0.15, 4)], -1)
    nostrils = np.stack([np.linspace(-0.2, 0.2, 5), np.full(5, 0.3)], -1)
    a = np.linspace(np.pi, -np.pi, 7)[:-1]
    eye = np.stack([0.15 * np.cos(a), 0.06 * np.sin(a)], -1)
    eyes = np.concatenate([eye + [-0.45, -0.3], eye[[3, 2, 1, 0, 5, 4]] + [0.45, -0.3]])
    b = np.linspace(np.pi, -np.pi, 13)[:-1]
    outer = np.stack([0.4 * np.cos(b), 0.6 + 0.15 * np.sin(b)], -1)
    c = np.linspace(np.pi, -np.pi, 9)[:-1]
    inner = np.stack([0.25 * np.cos(c), 0.6 + 0.07 * np.sin(c)], -1)
    xy = np.concatenate([jaw, brows, bridge, nostrils, eyes, outer, inner])
    z = np.sqrt(np.clip(1 - xy[:, 0] ** 2, 0, 1))  # a cylinder: turning moves points along it
    z[27:36] += np.r_[np.linspace(0.1, 0.4, 4), np.full(5, 0.25)]  # the nose sticks out
    return xy, z


def posed_faces(yaw: np.ndarray, seed: int = 0) -> np.ndarray:
    """[N, 68, 2] faces turned by ``yaw`` radians, then randomly rotated, scaled and moved in the image."""
    rng = np.random.default_rng(seed)
    xy, z = face_template()
    x = xy[:, 0] * np.cos(yaw)[:, None] + z * np.sin(yaw)[:, None]
    faces = np.stack([x, np.broadcast_to(xy[:, 1], x.shape)], -1)
    faces = faces + rng.normal(0, 0.01, faces.shape)
    n = len(yaw)
    placement = rotation_about(np.zeros((n, 2)), rng.uniform(-0.4, 0.4, n), rng.uniform(40, 120, n))
    placement[:, :, 2] += rng.uniform(100, 300, (n, 2))
    return apply_affine(placement, faces)


def test_alignment_removes_similarity_transforms() -> None:
    shape = posed_faces(np.array([0.3]))[0]
    moved = apply_affine(rotation_about(np.array([10.0, 20.0]), 0.8, 2.5), shape) + [30.0, -15.0]
    aligned, mean = align_shapes(np.stack([shape, moved, posed_faces(np.array([-0.2]))[0]]))
    np.testing.assert_allclose(aligned[0], aligned[1], atol=1e-9)
    np.testing.assert_allclose(mean.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(np.sqrt((mean**2).sum(-1).mean()), 1.0)


def test_missing_points_are_ignored() -> None:
    shapes = posed_faces(np.array([0.0, 0.2, -0.3]))
    holed = shapes.copy()
    holed[1, 5] = np.nan
    aligned, _ = align_shapes(holed)
    assert np.all(np.isfinite(aligned))
    full, _ = align_shapes(shapes)
    np.testing.assert_allclose(aligned[0], full[0], atol=0.02)
    holed[:, 7] = np.nan
    with pytest.raises(ValueError, match=r"point\(s\) \[7\]"):
        align_shapes(holed)


def test_pose_component_tracks_yaw() -> None:
    rng = np.random.default_rng(1)
    yaw = np.r_[rng.normal(0, 0.15, 300), rng.uniform(-1.2, 1.2, 40)]
    analysis = pose_projection(posed_faces(yaw), SCHEME)
    assert analysis.index == 0
    assert abs(np.corrcoef(analysis.projections, np.sin(yaw))[0, 1]) > 0.95
    assert analysis.component.shape == (68, 2) and analysis.mean.shape == (68, 2)
    np.testing.assert_allclose(np.linalg.norm(analysis.component), 1.0)
    np.testing.assert_allclose(analysis.std, analysis.projections.std(ddof=1))


def test_histogram_and_matlab_rounded_factors() -> None:
    projections = np.r_[np.full(40, 0.1), np.full(16, -0.3), np.full(3, 0.9), [1.0]]
    counts, edges, bin_index = pdb_histogram(projections, bins=4)
    np.testing.assert_allclose(edges, [0, 0.25, 0.5, 0.75, 1.0])
    assert counts.tolist() == [40, 16, 0, 4]
    assert bin_index[-1] == 3  # the maximum falls in the last bin
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty bin must not divide by zero
        assert pdb_factors(counts).tolist() == [1, 3, 0, 10]  # 40/16 = 2.5 rounds up, as in MATLAB


def test_rare_poses_are_repeated_by_their_factor() -> None:
    rng = np.random.default_rng(2)
    yaw = np.r_[rng.normal(0, 0.1, 400), rng.uniform(-1.3, 1.3, 30)]
    report = pdb_report(posed_faces(yaw, seed=3), SCHEME, bins=9)
    expected = np.where(report.counts > 0, np.floor(report.counts.max() / np.maximum(report.counts, 1) + 0.5), 0)
    assert report.factors.tolist() == expected.astype(int).tolist()
    assert report.factors.max() > 1 and report.factors[np.argmax(report.counts)] == 1
    repeats = np.bincount(report.indices, minlength=len(yaw))
    assert repeats.tolist() == report.factors[report.bin_index].tolist()
    assert report.balanced.sum() == len(report.indices)
    # The most repeated faces are the turned ones.
    assert np.abs(yaw[repeats == repeats.max()]).min() > np.abs(yaw[repeats == 1]).mean()
    np.testing.assert_array_equal(pdb_indices(posed_faces(yaw, seed=3), SCHEME, bins=9), report.indices)


def test_bad_arguments_raise() -> None:
    shapes = posed_faces(np.zeros(5))
    with pytest.raises(ValueError, match="bins"):
        pdb_histogram(np.ones(3), bins=0)
    with pytest.raises(ValueError, match="component"):
        pose_projection(shapes, SCHEME, component=10)
    with pytest.raises(ValueError, match="scheme"):
        pose_projection(shapes[:, :19], SCHEME)


def test_plot_writes_an_image(tmp_path: Path) -> None:
    analysis = pose_projection(posed_faces(np.linspace(-1, 1, 50)), SCHEME)
    out = plot_pose_component(analysis, tmp_path / "figs" / "pdb.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["pdb.png"]


class FakeReader(DatasetReader):
    """A dataset reader whose ``train`` split is 30 synthetic faces of increasing yaw."""

    format_name = "fake"

    def __init__(self) -> None:
        super().__init__("somewhere", SCHEME)

    @classmethod
    def recognises(cls, root: Path) -> bool:
        return False

    def split_names(self) -> list[str]:
        return ["train", "test"]

    def _read_split(self, split: str) -> SplitResult:
        yaw = np.linspace(-1, 1, 30) ** 3
        return SplitResult([FaceRecord(Path(f"{i}.jpg"), p.astype(np.float32)) for i, p in enumerate(posed_faces(yaw))])


def test_cli_prints_histograms_and_saves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    fake = types.ModuleType("wingface.data.datasets")
    fake.open_dataset = lambda path: FakeReader()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wingface.data.datasets", fake)
    out = tmp_path / "pdb.png"
    assert main(["pdb", "somewhere", "--bins", "5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "PC 1" in text and "total" in text and out.is_file()
    assert main(["pdb", "somewhere", "--split", "trian", "--out", str(out)]) == 2
    assert "did you mean 'train'" in capsys.readouterr().err


def read_pts(path: Path) -> np.ndarray:
    """[68, 2] 0-based points of a 300-W .pts file (the format is 1-based)."""
    body = path.read_text().split("{")[1].split("}")[0]
    return np.array(body.split(), dtype=np.float64).reshape(-1, 2) - 1


def test_real_300w_pose_component_is_yaw(shared_300w: Path) -> None:
    files = sorted(shared_300w.glob("*/trainset/*.pts")) + sorted(shared_300w.glob("afw/*.pts"))
    shapes = np.stack([read_pts(f) for f in files])
    analysis = pose_projection(shapes, SCHEME)
    # Yaw proxy: where the nose tip sits between the two jaw ends (0.5 when frontal).
    nose = (shapes[:, 30, 0] - shapes[:, 0, 0]) / (shapes[:, 16, 0] - shapes[:, 0, 0])
    assert abs(np.corrcoef(analysis.projections, nose)[0, 1]) > 0.9
