"""Model size and cost: parameter count and FLOPs per face (FLOPs = 2 x multiply-adds)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .regressor import LandmarkRegressor

__all__ = ["count_parameters", "flops_per_face"]


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def flops_per_face(model: LandmarkRegressor) -> int:
    """Forward FLOPs for one ``spec.input_size`` crop, counted by ``FlopCounterMode``.

    Counts convolutions and matrix products (2 x multiply-adds); pooling, activations and
    normalisation are not counted, as is usual. Runs one forward pass in eval mode on the
    model's device and restores its training mode.
    """
    param = next(model.parameters())
    size = model.spec.input_size
    x = torch.zeros(1, 3, size, size, device=param.device, dtype=param.dtype)
    was_training = model.training
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
