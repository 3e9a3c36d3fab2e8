"""Measuring a stage's residual errors as the next stage sees them (paper Sec. 5, two-stage).

Stage 2 crops the face in the frame of a similarity fit of stage 1's points to a reference
shape. Stage 1's errors move that frame: its centre (fraction of the side), its scale and
its angle. Stage 2 is trained with crop jitter of the measured size, not a guess.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..geometry import squares_from_alignment
from ..geometry import angle_difference
from ..models import LandmarkRegressor
from .pipeline import TrainData, batch_seed

MEASURE_EPOCH = 2**31 - 1  # a batch-seed "epoch" no training run reaches: measurement jitter of its own


@dataclass
class FrameResiduals:
    """Spread of the aligned frame from predicted vs true points, over ``faces`` faces.

    ``shift_std``: centre offset std per axis, fraction of the side; ``scale_std``: std of
    log(side ratio); ``rotation_std_deg``: angle std in degrees; ``*_p95``: 95th percentiles
    of the absolute values.
    """

    faces: int
    shift_std: float
    scale_std: float
    rotation_std_deg: float
    shift_p95: float
    scale_p95: float
    rotation_p95_deg: float

    def jitter_overrides(self, coverage: float = 2.0) -> dict[str, float]:
        """Stage-2 ``augment.*`` settings: uniform ranges of ``coverage`` standard deviations."""
        return {
            "augment.shift": round(coverage * self.shift_std, 4),
            "augment.scale": round(math.expm1(coverage * self.scale_std), 4),
            "augment.rotation_deg": round(coverage * self.rotation_std_deg, 2),
        }

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@torch.inference_mode()
def measure_frame_residuals(stage1: LandmarkRegressor, data: TrainData, reference: np.ndarray,
                            margin: float, *, train_jitter: bool = True, seed: int = 0) -> FrameResiduals:
    """Run ``stage1`` on the validation faces of ``data`` (crops jittered like its training when
    ``train_jitter``, so rotated and badly boxed faces are represented) and compare the aligned
    frames of its predictions with those of the true points."""
    idx = data.val_idx if len(data.val_idx) else data.train_idx
    stage1.eval()
    pred, true = [], []
    for step, start in enumerate(range(0, len(idx), 128)):
        gen = torch.Generator().manual_seed(batch_seed(seed, MEASURE_EPOCH, step, 0))
        batch = data.batch(idx[start:start + 128], train=train_jitter, generator=gen)
        pred.append(stage1.codec.decode(stage1(batch.images)).double().numpy())
        true.append(batch.points.double().numpy())
    p = squares_from_alignment(np.concatenate(pred), reference, margin)
    t = squares_from_alignment(np.concatenate(true), reference, margin)
    shift = (p.center - t.center) / t.side[:, None]
    scale = np.log(p.side / t.side)
    angle = np.degrees(angle_difference(p.angle, t.angle))
    return FrameResiduals(
        faces=len(scale), shift_std=float(shift.std()), scale_std=float(scale.std()),
        rotation_std_deg=float(angle.std()), shift_p95=float(np.percentile(np.abs(shift), 95)),
        scale_p95=float(np.percentile(np.abs(scale), 95)), rotation_p95_deg=float(np.percentile(np.abs(angle), 95)),
    )
