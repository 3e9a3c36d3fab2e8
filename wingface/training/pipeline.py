"""The training input pipeline: train/validation split, PDB sampling, batches of cached crops.

Everything here is index bookkeeping over an in-memory `FaceCache`; the pixel work (one
warp per batch plus photometric jitter) is `wingface.augmentation.BatchAugmenter`'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ..augmentation import BatchAugmenter
from ..geometry import ALIGNED_CROPS, CROP_MODES, Squares, crop_squares
from ..data.cache import FaceCache
from ..data.pdb import align_shapes, pdb_indices

log = logging.getLogger(__name__)


def split_train_val(num: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint sorted (train, val) index arrays; the same seed always gives the same split."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(num)
    n_val = int(round(num * val_fraction))
    if num - n_val < 1:
        raise ValueError(f"{num} faces leave nothing to train on with val_fraction {val_fraction}")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def subset(indices: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A sorted share of ``indices``; for one seed, smaller fractions are subsets of larger ones."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1], got {fraction}")
    keep = max(1, int(round(len(indices) * fraction)))
    return np.sort(indices[np.random.default_rng([seed, 1]).permutation(len(indices))[:keep]])


def reference_shape(points: np.ndarray) -> np.ndarray:
    """Mean shape [L, 2] of shapes [N, L, 2] after Procrustes alignment (PDB's `align_shapes`),
    so that rotated faces do not blur it; aligned crops use only its frame, not its scale."""
    return align_shapes(points)[0].mean(0)


def batch_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    """Seed of one batch's augmentation: resuming mid-epoch reproduces the same batches."""
    return int(np.random.SeedSequence([seed, epoch, step, rank]).generate_state(1)[0])


@dataclass
class Batch:
    """Model inputs float32 [N, 3, S, S] (0..255), targets in crop pixels [N, L, 2], visibility [N, L]."""

    images: torch.Tensor
    points: torch.Tensor
    visible: torch.Tensor


class TrainData:
    """Cached faces split into training and validation parts, sampled with optional PDB.

    Args:
        cache: the prepared faces.
        augmenter: produces model crops; its ``out_size``/``margin`` are the model's.
        crop: ``"box"`` (landmark-box squares), ``"aligned"`` (similarity-aligned squares) or
            ``"aligned-centred"`` (those centred on the shape's box; see `ModelSpec.crop`).
        reference: the mean shape [L, 2] that the aligned crops align to (the model's).
        val_fraction, split_seed: the fixed validation split.
        train_fraction: share of the training faces used (`subset`).
        pdb_bins: PDB bins, or None to sample the training faces uniformly.
        pdb_component: principal component for PDB (None: the scheme's).
    """

    def __init__(self, cache: FaceCache, augmenter: BatchAugmenter, *, crop: str = "box",
                 reference: np.ndarray | None = None, val_fraction: float = 0.1, split_seed: int = 0, train_fraction: float = 1.0,
                 pdb_bins: int | None = 9, pdb_component: int | None = None) -> None:
        if crop not in CROP_MODES:
            raise ValueError(f"model.crop must be one of {CROP_MODES}, got {crop!r}")
        if crop in ALIGNED_CROPS and reference is None:
            raise ValueError("aligned crops need a reference shape")
        self.cache = cache
        self.augmenter = augmenter
        self.crop = crop
        self.images = torch.from_numpy(np.ascontiguousarray(cache.images))
        self.points = torch.from_numpy(np.ascontiguousarray(cache.points, dtype=np.float32))
        self.visible = torch.from_numpy(np.ascontiguousarray(cache.visible))
        train_idx, self.val_idx = split_train_val(len(cache), val_fraction, split_seed)
        self.train_idx = subset(train_idx, train_fraction, split_seed)
        self.reference = None if reference is None else np.asarray(reference, dtype=np.float64)
        self.pool = self.train_idx
        if pdb_bins:
            self.pool = self.train_idx[pdb_indices(cache.points[self.train_idx], cache.scheme, bins=pdb_bins,
                                                   component=pdb_component)]
        log.info("training faces %d (%d samples per epoch with PDB), validation faces %d",
                 len(self.train_idx), len(self.pool), len(self.val_idx))

    def steps_per_epoch(self, batch_size: int, world_size: int = 1) -> int:
        return max(1, len(self.pool) // (batch_size * world_size))

    def epoch_indices(self, epoch: int, seed: int, batch_size: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
        """[steps, batch_size] face indices this rank trains on in ``epoch`` (a shuffled PDB pool share)."""
        order = self.pool[np.random.default_rng([seed, epoch]).permutation(len(self.pool))]
        steps = self.steps_per_epoch(batch_size, world_size)
        share = order[: steps * batch_size * world_size][rank::world_size]
        return share.reshape(steps, batch_size)

    def squares(self, points: np.ndarray) -> Squares:
        """Face squares of shapes [N, L, 2] in cache pixels, by this model's crop mode."""
        return crop_squares(points, self.crop, self.reference, self.augmenter.margin)

    def batch(self, indices: np.ndarray, *, train: bool, generator: torch.Generator | None = None) -> Batch:
        """Crops for the faces ``indices``; augmented when ``train``."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        points = self.points[idx]
        out = self.augmenter(self.images[idx], points, self.visible[idx], squares=self.squares(points.numpy()),
                             train=train, generator=generator)
        return Batch(out.images, out.points, out.visible if out.visible is not None else self.visible[idx])

    def mean_crop_shape(self) -> np.ndarray:
        """Mean training shape in model-crop pixels [L, 2] (initialises the output layer)."""
        chunks = [self.batch(self.train_idx[i:i + 256], train=False).points for i in range(0, len(self.train_idx), 256)]
        return torch.cat(chunks).mean(0).numpy()
