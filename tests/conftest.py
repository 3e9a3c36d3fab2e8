"""Shared fixtures: a tiny synthetic 300-W folder and the real 300-W subset (skipped when absent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wingface.data.cache import prepare_cache
from wingface.data.records import FaceRecord
from wingface.data.synthetic import synthetic_faces, write_synthetic_300w
from wingface.schemes import get_scheme

# The real data sits beside the repository (../shared/data), also in CI's fresh clone.
SHARED_300W = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "300w-subset"

# Faces in the synthetic folder, per split (shared among the official sub-folders).
SYNTHETIC_TRAIN = 12
SYNTHETIC_TEST = 5


@pytest.fixture(scope="session")
def synthetic_300w(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only synthetic 300-W tree: 12 train and 5 common-subset faces, 96 x 96 PNGs.

    Shared by the whole session: tests that damage files must use `synthetic_300w_copy`.
    """
    root = tmp_path_factory.mktemp("synthetic_300w")
    return write_synthetic_300w(root, n_train=SYNTHETIC_TRAIN, n_test=SYNTHETIC_TEST, seed=0, image_size=96)


@pytest.fixture
def synthetic_300w_copy(synthetic_300w: Path, tmp_path: Path) -> Path:
    """A private copy of `synthetic_300w` that a test may modify."""
    return Path(shutil.copytree(synthetic_300w, tmp_path / "300w"))


@pytest.fixture(scope="session")
def shared_300w() -> Path:
    """The real 300-W subset (2,012 train + 554 common faces); skips when the folder is absent."""
    if not SHARED_300W.is_dir():
        pytest.skip(f"real 300-W data not found at {SHARED_300W} (expected beside the repository)")
    return SHARED_300W


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared training cache of 60 synthetic faces (96-pixel crops), shared read-only."""
    faces = synthetic_faces(60, image_size=96, seed=0)
    records = [FaceRecord(Path(f"face{i}.png"), f.points, image=f.image) for i, f in enumerate(faces)]
    out = tmp_path_factory.mktemp("data") / "cache"
    prepare_cache(records, out, get_scheme("300w-68"), crop_size=96, progress=False)
    return out
