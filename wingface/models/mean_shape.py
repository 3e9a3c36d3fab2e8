"""The mean-shape baseline: the training set's mean shape placed in the face box.

It ignores the pixels entirely, so it is the floor every trained model must beat. It is a
`LandmarkRegressor` like the others, so it saves, loads, evaluates and exports the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from .regressor import LandmarkRegressor
from ..spec import ModelSpec

__all__ = ["MeanShape", "mean_shape"]


class MeanShape(LandmarkRegressor):
    """Outputs its output-layer bias (set by `set_mean_shape`) for every input."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.trunk = nn.Identity()
        self.head = nn.Sequential(nn.Linear(1, 2 * spec.num_points))
        nn.init.zeros_(self.head[0].weight)
        nn.init.zeros_(self.head[0].bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] -> zeros [N, 1] (the baseline looks at no pixel)."""
        return x.new_zeros(x.shape[0], 1)

    @torch.no_grad()
    def set_mean_shape(self, points_px, weight_scale: float = 0.0) -> None:
        super().set_mean_shape(points_px, weight_scale=0.0)


def mean_shape(spec: ModelSpec) -> MeanShape:
    """Factory for the ``mean-shape`` architecture."""
    return MeanShape(spec)
