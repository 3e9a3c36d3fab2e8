"""The error head's loss: a Laplace negative log-likelihood of each point's distance error.

The head predicts ``log b`` per point; the observed distance ``d`` (input pixels, detached:
the points are trained by their own loss, never by this one) is scored as
``log b + d / b``, which is minimal at ``b = E[d]``. So ``b`` is the expected error of the
point in input pixels, and under the same model ``P(d < t) = 1 - exp(-t / b)``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def laplace_nll(log_scale: Tensor, distance: Tensor, visible: Tensor | None = None) -> Tensor:
    """Mean Laplace NLL over the visible points.

    Args:
        log_scale: [N, L] predicted log expected error (log input pixels).
        distance: [N, L] observed point-to-point errors in input pixels (detached here).
        visible: [N, L] bool, points to count; None counts all.
    Returns:
        A scalar; 0 (with a gradient path) when no point is visible.
    """
    log_scale = log_scale.float()
    nll = log_scale + distance.detach().float() * torch.exp(-log_scale)
    if visible is None:
        return nll.mean()
    mask = visible.to(nll.dtype)
    return (nll * mask).sum() / mask.sum().clamp(min=1.0)
